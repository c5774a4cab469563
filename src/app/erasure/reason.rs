//! The reason of an erasure must not name the person erased.
//!
//! The reason is stored in `PersonalDataErased` outside `personal` (it must stay readable after the
//! key is gone, so that the audit shows why), and is therefore kept for good. A reason that carried
//! the student's identity number, name or e-mail would put back in plaintext exactly what the erasure
//! removes, so it is refused before anything is changed.

use crate::domain::portfolio::StudentDetails;

/// Name parts shorter than this are initials; they are too common to say who is meant.
const MIN_NAME_PART_CHARS: usize = 2;

/// Which kind of personal value of the student the reason holds (never the value itself: the
/// answer and the logs must not repeat it either).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    IdentityNumber,
    Name,
    Email,
}

impl Named {
    pub fn what(self) -> &'static str {
        match self {
            Named::IdentityNumber => "identity number",
            Named::Name => "name",
            Named::Email => "e-mail address",
        }
    }
}

/// What of `student` the `reason` holds, if anything: the identity number in any form people write
/// it (12 or 10 digits, with or without a separator, typographic dashes and spaces included), a
/// given or family name as a whole word in any letter case, or the e-mail address in any case.
pub fn names_the_student(reason: &str, student: &StudentDetails) -> Option<Named> {
    // Every written form of `YYYYMMDDNNNC` contains `YYMMDDNNNC` once its separators are dropped.
    let ten = &student.identity_number.as_str()[2..];
    if digit_runs(reason).iter().any(|run| run.contains(ten)) {
        return Some(Named::IdentityNumber);
    }
    let lower = reason.to_lowercase();
    if lower.contains(&student.email.as_str().to_lowercase()) {
        return Some(Named::Email);
    }
    let name = &student.name;
    let parts = [name.given_names(), name.family_name()]
        .into_iter()
        .flat_map(|part| part.split(|c: char| c.is_whitespace() || c == '-'))
        .filter(|part| part.chars().count() >= MIN_NAME_PART_CHARS);
    for part in parts {
        if contains_word(&lower, &part.to_lowercase()) {
            return Some(Named::Name);
        }
    }
    None
}

/// The digits of every stretch of `text` made of digits and the characters people put between
/// them in an identity number (`-`, `+`, spaces, en dash, minus sign).
fn digit_runs(text: &str) -> Vec<String> {
    let mut runs = vec![String::new()];
    for c in text.chars() {
        if c.is_ascii_digit() {
            runs.last_mut().unwrap().push(c);
        } else if !matches!(c, '-' | '+' | ' ' | '\u{2013}' | '\u{2212}') {
            runs.push(String::new());
        }
    }
    runs.retain(|r| !r.is_empty());
    runs
}

/// Whether `word` occurs in `text` with no letter or digit directly before or after it.
fn contains_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        let joined = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
        !joined(before) && !joined(after)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::values::{Email, IdentityNumber, PersonName};

    fn student() -> StudentDetails {
        StudentDetails {
            identity_number: IdentityNumber::with_check_digit("19950101123").unwrap(),
            name: PersonName::parse("Anna Maria", "Lind-Berg").unwrap(),
            email: Email::parse("anna.lind@student.example.se").unwrap(),
        }
    }

    #[test]
    fn every_written_form_of_the_identity_number_is_found() {
        let s = student();
        let twelve = s.identity_number.as_str().to_owned();
        let forms = [
            twelve.clone(),
            format!("{}-{}", &twelve[..8], &twelve[8..]),
            twelve[2..].to_owned(),
            format!("{}-{}", &twelve[2..8], &twelve[8..]),
            format!("{}+{}", &twelve[2..8], &twelve[8..]),
            format!("{}\u{2013}{}", &twelve[2..8], &twelve[8..]),
            format!("{} {}", &twelve[2..8], &twelve[8..]),
        ];
        for form in forms {
            let reason = format!("case 2026-17 ({form})");
            assert_eq!(
                names_the_student(&reason, &s),
                Some(Named::IdentityNumber),
                "{form}"
            );
        }
    }

    #[test]
    fn names_and_email_are_found_in_any_case_and_a_case_reference_passes() {
        let s = student();
        for (reason, want) in [
            ("asked by anna in person", Some(Named::Name)),
            ("request from MARIA", Some(Named::Name)),
            ("family berg asked", Some(Named::Name)),
            ("Lind-Berg asked", Some(Named::Name)),
            ("mail from Anna.Lind@Student.Example.se", Some(Named::Email)),
            ("GDPR request 2026-17", None),
            // Part of a longer word, or another number with the same digits nearby, is not them.
            ("Annanas 2026-117", None),
            ("case 19950101-12", None),
        ] {
            assert_eq!(names_the_student(reason, &s), want, "{reason}");
        }
    }
}
