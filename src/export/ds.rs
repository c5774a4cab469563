//! The Diploma Supplement section 6.1 ("Additional information") text, in English.
//!
//! In Sweden the DS is issued in English, Ladok fills most of it and the university adds local texts: the
//! CIM is one such text. The wording is a template (`exports/templates/ds-6.1.txt`) so that the
//! registrar's office can change it in review without touching code; the code only fills placeholders.
//! Dates are written out ("20 January 2026") as in the rest of an English DS, where a numeric date could be
//! read either way round. A revoked certificate has no DS text ([`ExportError::Revoked`]).

use chrono::NaiveDate;

use super::certificate::{ExportCertificate, ExportError, ExportSettings};

const TEMPLATE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/exports/templates/ds-6.1.txt"
));

/// The placeholders the template may use; README of `exports/` lists what each holds.
pub const PLACEHOLDERS: &[&str] = &[
    "merit_name",
    "program_name",
    "program_code",
    "issuer_name",
    "decided_on",
    "activity_count",
    "activities",
    "holder_name",
    "certificate_id",
];

/// The 6.1 text of a certificate that stands, as one paragraph without a trailing newline.
pub fn section_6_1(
    certificate: &ExportCertificate,
    settings: &ExportSettings,
) -> Result<String, ExportError> {
    let holder = certificate.standing_holder()?;
    let activities = certificate.activities();
    let listed: Vec<String> = activities
        .iter()
        .map(|a| {
            if a.started_on == a.ended_on {
                format!("{}, {}", a.name, long_date(a.started_on))
            } else {
                format!(
                    "{}, {} to {}",
                    a.name,
                    long_date(a.started_on),
                    long_date(a.ended_on)
                )
            }
        })
        .collect();
    let values = [
        (
            "merit_name",
            settings.merit_names(certificate.program_code()).en,
        ),
        ("program_name", certificate.program_name().to_owned()),
        ("program_code", certificate.program_code().to_string()),
        ("issuer_name", settings.issuer.name.clone()),
        ("decided_on", long_date(certificate.decided_on())),
        ("activity_count", count_word(activities.len())),
        ("activities", english_list(&listed)),
        (
            "holder_name",
            format!("{} {}", holder.given_names, holder.family_name),
        ),
        ("certificate_id", certificate.certificate_id().to_string()),
    ];
    fill(TEMPLATE.trim_end(), &values)
}

/// Replaces every `{name}` with its value. Unknown names are an error rather than left in place, so a
/// typo in the template fails the tests instead of reaching a diploma.
pub fn fill(template: &str, values: &[(&str, String)]) -> Result<String, ExportError> {
    let mut out = String::with_capacity(template.len() * 2);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| ExportError::UnknownPlaceholder {
                placeholder: after.to_owned(),
            })?;
        let name = &after[..close];
        let value = values.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            ExportError::UnknownPlaceholder {
                placeholder: name.to_owned(),
            }
        })?;
        out.push_str(&value.1);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// "20 January 2026": the form the DS template's own examples use.
pub fn long_date(date: NaiveDate) -> String {
    date.format("%-d %B %Y").to_string()
}

/// "three" for 3: the template reads as prose ("took part in three international activities").
fn count_word(n: usize) -> String {
    const WORDS: [&str; 11] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ];
    WORDS
        .get(n)
        .map_or_else(|| n.to_string(), |w| (*w).to_owned())
}

/// "A", "A and B", "A; B; and C": semicolons because each item ("name, date to date") has a comma.
fn english_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [a, b] => format!("{a} and {b}"),
        [init @ .., last] => format!("{}; and {last}", init.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::certificate::tests::{approved, revocation};
    use super::*;

    #[test]
    fn the_template_uses_only_known_placeholders_and_names_every_fact() {
        let c = ExportCertificate::new(&approved(), None).unwrap();
        let text = section_6_1(&c, &ExportSettings::default()).unwrap();
        assert!(!text.contains('{') && !text.contains('}'), "{text}");
        for expected in [
            "Certificate of International Merits",
            "Dental Program (dental)",
            "Karolinska Institutet",
            "20 January 2026",
            "three international activities",
            "Language café <B2> & \"more\", 3 February 2025 to 30 May 2025",
            "Student representative, 1 September 2025 to 15 December 2025",
            "and TEDx, 2 November 2025",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from {text}");
        }
        assert!(!text.ends_with('\n'));
    }

    #[test]
    fn fill_refuses_unknown_and_unclosed_placeholders() {
        let v = [("a", "1".to_owned())];
        assert_eq!(fill("x{a}y{a}", &v).unwrap(), "x1y1");
        assert!(matches!(
            fill("{b}", &v),
            Err(ExportError::UnknownPlaceholder { placeholder }) if placeholder == "b"
        ));
        assert!(fill("{a", &v).is_err());
        // Values are inserted once, never re-expanded.
        assert_eq!(fill("{a}", &[("a", "{a}".to_owned())]).unwrap(), "{a}");
    }

    #[test]
    fn lists_and_counts_read_as_english() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(english_list(&s(&["A"])), "A");
        assert_eq!(english_list(&s(&["A", "B"])), "A and B");
        assert_eq!(english_list(&s(&["A", "B", "C"])), "A; B; and C");
        assert_eq!(count_word(3), "three");
        assert_eq!(count_word(12), "12");
        assert_eq!(
            long_date(NaiveDate::from_ymd_opt(2026, 1, 5).unwrap()),
            "5 January 2026"
        );
    }

    #[test]
    fn a_revoked_certificate_has_no_ds_text() {
        let a = approved();
        let c = ExportCertificate::new(&a, Some(&revocation(&a))).unwrap();
        assert!(matches!(
            section_6_1(&c, &ExportSettings::default()),
            Err(ExportError::Revoked { .. })
        ));
    }
}
