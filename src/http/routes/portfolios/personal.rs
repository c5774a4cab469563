//! Who the student opening a portfolio is, from the sources that know: the sign-in token (names and
//! e-mail, the OpenID Connect standard claims) and Ladok (the identity number of the token's Ladok
//! UID). The request body may still carry these fields, for old clients: a value that agrees is
//! accepted, one that contradicts a trusted source is refused, and one that no trusted source gives is
//! taken as typed (see `docs/identity.md`, "Personal details").
//!
//! Deciding is pure ([`resolve`]): the handler asks Ladok first and passes its answer in.

use crate::domain::DomainError;
use crate::domain::portfolio::IdentityCheck;
use crate::domain::values::{Email, IdentityNumber, PersonName};
use crate::http::auth::Profile;
use crate::http::problem::Problem;
use chrono::NaiveDate;

/// What Ladok said about the student's identity number.
#[derive(Debug)]
pub enum LadokAnswer {
    /// Ladok's record of the token's Ladok UID, with its identity number (12 digits) if it has one.
    Student(Option<String>),
    /// Ladok has no student with the token's Ladok UID.
    NoSuchStudent,
    /// Ladok is not configured, or could not be reached: the body's number is taken as typed.
    Unavailable,
}

/// The personal fields of the request body, as typed (all optional).
#[derive(Debug, Default)]
pub struct Typed<'a> {
    pub identity_number: Option<&'a str>,
    pub given_names: Option<&'a str>,
    pub family_name: Option<&'a str>,
    pub email: Option<&'a str>,
}

/// The student's details as they will be stored.
#[derive(Debug)]
pub struct Resolved {
    pub identity_number: IdentityNumber,
    /// What Ladok said of the number; `None` when Ladok could not be asked (checked later).
    pub identity_check: Option<IdentityCheck>,
    pub name: PersonName,
    pub email: Email,
}

/// Combines the trusted sources with what was typed. `today` resolves typed identity numbers.
pub fn resolve(
    typed: &Typed<'_>,
    profile: &Profile,
    ladok: LadokAnswer,
    today: NaiveDate,
) -> Result<Resolved, Problem> {
    let given = pick(
        "given_names",
        "sign-in",
        profile.given_name.as_deref(),
        typed.given_names,
    )?;
    let family = pick(
        "family_name",
        "sign-in",
        profile.family_name.as_deref(),
        typed.family_name,
    )?;
    // Names compare as the domain stores them (trimmed, white space collapsed): a typed part is
    // parsed as a name of its own and compared with the stored part.
    let name = PersonName::parse(given.value, family.value).map_err(DomainError::from)?;
    for (part, typed_value, stored) in [
        (&given, typed.given_names, name.given_names()),
        (&family, typed.family_name, name.family_name()),
    ] {
        if part.trusted
            && let Some(typed_value) = typed_value
            && PersonName::parse(typed_value, typed_value).is_ok_and(|n| n.given_names() != stored)
        {
            return Err(mismatch(part.field, "sign-in"));
        }
    }
    let email = pick("email", "sign-in", profile.email.as_deref(), typed.email)?;
    let stored_email = Email::parse(email.value).map_err(DomainError::from)?;
    if email.trusted
        && let Some(typed_email) = typed.email
        && Email::parse(typed_email).is_ok_and(|e| e != stored_email)
    {
        return Err(mismatch("email", "sign-in"));
    }
    let typed_number = typed
        .identity_number
        .map(|n| IdentityNumber::parse(n, today))
        .transpose()
        .map_err(DomainError::from)?;
    let identity_check = match ladok {
        LadokAnswer::Student(Some(_)) => Some(IdentityCheck::Confirmed),
        LadokAnswer::Student(None) => Some(IdentityCheck::NoNumberInLadok),
        LadokAnswer::NoSuchStudent | LadokAnswer::Unavailable => None,
    };
    let identity_number = match ladok {
        LadokAnswer::Student(Some(digits)) => {
            let from_ladok = IdentityNumber::from_normalized(&digits).map_err(|_| {
                Problem::unprocessable(
                    "ladok_identity_number_unusable",
                    "Ladok's record of you carries an identity number this service cannot read; contact the registrar's office",
                )
            })?;
            if typed_number.as_ref().is_some_and(|n| *n != from_ladok) {
                return Err(mismatch("identity_number", "Ladok"));
            }
            from_ladok
        }
        LadokAnswer::NoSuchStudent => {
            return Err(Problem::unprocessable(
                "student_not_in_ladok",
                "Ladok has no student with the Ladok UID you signed in with, so no portfolio can be opened; contact the registrar's office",
            ));
        }
        LadokAnswer::Student(None) | LadokAnswer::Unavailable => typed_number
            .ok_or_else(|| missing("identity_number", "Ladok cannot tell it right now"))?,
    };
    Ok(Resolved {
        identity_number,
        identity_check,
        name,
        email: stored_email,
    })
}

/// A field's value and whether it came from a trusted source.
struct Picked<'a> {
    field: &'static str,
    value: &'a str,
    trusted: bool,
}

fn pick<'a>(
    field: &'static str,
    source: &str,
    trusted: Option<&'a str>,
    typed: Option<&'a str>,
) -> Result<Picked<'a>, Problem> {
    match (trusted, typed) {
        (Some(value), _) => Ok(Picked {
            field,
            value,
            trusted: true,
        }),
        (None, Some(value)) => Ok(Picked {
            field,
            value,
            trusted: false,
        }),
        (None, None) => Err(missing(field, &format!("your {source} does not carry it"))),
    }
}

fn mismatch(field: &'static str, source: &str) -> Problem {
    Problem::unprocessable(
        "personal_details_mismatch",
        format!(
            "{} in the request differs from what {source} says about you; leave it out (it is taken from {source}), or have it corrected there",
            describe(field)
        ),
    )
    .with_field(field)
}

fn missing(field: &'static str, why: &str) -> Problem {
    Problem::unprocessable(
        "personal_details_missing",
        format!("{} is needed in the request: {why}", describe(field)),
    )
    .with_field(field)
}

fn describe(field: &str) -> &'static str {
    match field {
        "identity_number" => "the identity number",
        "given_names" => "the given names",
        "family_name" => "the family name",
        _ => "the e-mail address",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 5, 1).unwrap()
    }

    fn profile() -> Profile {
        Profile {
            given_name: Some("Tolvan".into()),
            family_name: Some("Tolvansson".into()),
            email: Some("tolvan@student.example.se".into()),
        }
    }

    fn typed_all() -> Typed<'static> {
        Typed {
            identity_number: Some("121212+1212"),
            given_names: Some("  Tolvan "),
            family_name: Some("Tolvansson"),
            email: Some("tolvan@STUDENT.example.se"),
        }
    }

    #[test]
    fn the_token_and_ladok_give_everything_and_agreeing_fields_are_accepted() {
        for typed in [Typed::default(), typed_all()] {
            let r = resolve(
                &typed,
                &profile(),
                LadokAnswer::Student(Some("191212121212".into())),
                today(),
            )
            .unwrap();
            assert_eq!(r.identity_number.as_str(), "191212121212");
            assert_eq!(r.name.given_names(), "Tolvan");
            assert_eq!(r.email.as_str(), "tolvan@student.example.se");
        }
    }

    #[test]
    fn a_field_that_contradicts_a_trusted_source_is_refused_with_its_name() {
        let cases: [(Typed<'static>, &str); 4] = [
            (
                Typed {
                    identity_number: Some("811218-9876"),
                    ..Typed::default()
                },
                "identity_number",
            ),
            (
                Typed {
                    given_names: Some("Elva"),
                    ..Typed::default()
                },
                "given_names",
            ),
            (
                Typed {
                    family_name: Some("Elvasson"),
                    ..Typed::default()
                },
                "family_name",
            ),
            (
                Typed {
                    email: Some("someone.else@example.se"),
                    ..Typed::default()
                },
                "email",
            ),
        ];
        for (typed, field) in cases {
            let p = resolve(
                &typed,
                &profile(),
                LadokAnswer::Student(Some("191212121212".into())),
                today(),
            )
            .unwrap_err();
            assert_eq!(p.code, "personal_details_mismatch", "{field}");
            assert_eq!(p.field.as_deref(), Some(field));
            assert!(!p.detail.contains("Elva") && !p.detail.contains("9876"));
        }
    }

    #[test]
    fn without_trusted_sources_the_typed_values_are_taken_and_needed() {
        let r = resolve(
            &typed_all(),
            &Profile::default(),
            LadokAnswer::Unavailable,
            today(),
        )
        .unwrap();
        assert_eq!(r.identity_number.as_str(), "191212121212");
        let p = resolve(
            &Typed::default(),
            &profile(),
            LadokAnswer::Unavailable,
            today(),
        )
        .unwrap_err();
        assert_eq!(
            (p.code.as_ref(), p.field.as_deref()),
            ("personal_details_missing", Some("identity_number"))
        );
        let p = resolve(
            &Typed::default(),
            &Profile::default(),
            LadokAnswer::Student(Some("191212121212".into())),
            today(),
        )
        .unwrap_err();
        assert_eq!(p.field.as_deref(), Some("given_names"));
    }

    #[test]
    fn a_uid_ladok_does_not_know_opens_nothing() {
        let p = resolve(
            &typed_all(),
            &profile(),
            LadokAnswer::NoSuchStudent,
            today(),
        )
        .unwrap_err();
        assert_eq!(p.code, "student_not_in_ladok");
    }
}
