//! Free text typed by people: names, descriptions, feedback, reasons.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a piece of text was refused. The input itself is never quoted: it may be personal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{field} is empty")]
    Empty { field: &'static str },
    #[error("{field} is {len} characters long; at most {max} are accepted")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{field} contains a control character")]
    ControlCharacter { field: &'static str },
    #[error("{field} contains the character {found:?}, which is not accepted here")]
    ForbiddenCharacter { field: &'static str, found: char },
}

impl TextError {
    pub fn code(&self) -> &'static str {
        match self {
            TextError::Empty { .. } => "text_empty",
            TextError::TooLong { .. } => "text_too_long",
            TextError::ControlCharacter { .. } => "text_control_character",
            TextError::ForbiddenCharacter { .. } => "text_forbidden_character",
        }
    }

    pub fn field(&self) -> &'static str {
        match self {
            TextError::Empty { field }
            | TextError::TooLong { field, .. }
            | TextError::ControlCharacter { field }
            | TextError::ForbiddenCharacter { field, .. } => field,
        }
    }
}

/// Trimmed text with at least one character and no control characters other than newline and tab.
///
/// Control characters are refused because they break the CSV and XML exports and hide text in audit
/// views; newlines and tabs are kept because descriptions and feedback are written in paragraphs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct NonEmptyText(String);

impl NonEmptyText {
    /// `max_len` counts Unicode scalar values, so the limit means the same for "å" as for "a".
    pub fn parse(input: &str, field: &'static str, max_len: usize) -> Result<Self, TextError> {
        let trimmed = input.trim();
        check_text(trimmed, field, max_len, true)?;
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Deserialisation re-checks everything but the length: the limit belongs to the field, which serde does
/// not know, and stored text that was accepted under an older, larger limit must still load.
impl TryFrom<String> for NonEmptyText {
    type Error = TextError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value, "text", usize::MAX)
    }
}

impl From<NonEmptyText> for String {
    fn from(value: NonEmptyText) -> Self {
        value.0
    }
}

impl fmt::Display for NonEmptyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_text(
    trimmed: &str,
    field: &'static str,
    max_len: usize,
    allow_line_breaks: bool,
) -> Result<(), TextError> {
    if trimmed.is_empty() {
        return Err(TextError::Empty { field });
    }
    let len = trimmed.chars().count();
    if len > max_len {
        return Err(TextError::TooLong {
            field,
            len,
            max: max_len,
        });
    }
    let allowed_control = |c: char| allow_line_breaks && (c == '\n' || c == '\t');
    if trimmed
        .chars()
        .any(|c| c.is_control() && !allowed_control(c))
    {
        return Err(TextError::ControlCharacter { field });
    }
    Ok(())
}

/// Longest given-names or family-name part accepted; Ladok's own name fields are shorter than this.
pub const MAX_NAME_PART_LEN: usize = 100;

/// Characters that never occur in a person's name but do occur in markup and injection attempts.
const FORBIDDEN_IN_NAMES: &[char] = &['<', '>', '{', '}', '[', ']', '\\', '/', '@'];

/// A student's name split the way Ladok and the Diploma Supplement split it (given names, family name),
/// so exports never have to guess where one ends. `Debug` is redacted so names stay out of logs.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "RawPersonName")]
pub struct PersonName {
    given_names: String,
    family_name: String,
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonName(<redacted>)")
    }
}

#[derive(Deserialize)]
struct RawPersonName {
    given_names: String,
    family_name: String,
}

impl TryFrom<RawPersonName> for PersonName {
    type Error = TextError;

    fn try_from(raw: RawPersonName) -> Result<Self, Self::Error> {
        Self::parse(&raw.given_names, &raw.family_name)
    }
}

impl PersonName {
    pub fn parse(given_names: &str, family_name: &str) -> Result<Self, TextError> {
        Ok(Self {
            given_names: parse_name_part(given_names, "given_names")?,
            family_name: parse_name_part(family_name, "family_name")?,
        })
    }

    pub fn given_names(&self) -> &str {
        &self.given_names
    }

    pub fn family_name(&self) -> &str {
        &self.family_name
    }

    /// "Given Family", the order used in English documents such as the Diploma Supplement.
    pub fn full_name(&self) -> String {
        format!("{} {}", self.given_names, self.family_name)
    }
}

fn parse_name_part(input: &str, field: &'static str) -> Result<String, TextError> {
    let trimmed = input.trim();
    check_text(trimmed, field, MAX_NAME_PART_LEN, false)?;
    if let Some(found) = trimmed.chars().find(|c| FORBIDDEN_IN_NAMES.contains(c)) {
        return Err(TextError::ForbiddenCharacter { field, found });
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_empty_text_is_trimmed_and_keeps_paragraphs() {
        let t = NonEmptyText::parse("  line one\n\tline two  ", "description", 100).unwrap();
        assert_eq!(t.as_str(), "line one\n\tline two");
    }

    #[test]
    fn non_empty_text_refuses_blank_long_and_control() {
        assert_eq!(
            NonEmptyText::parse("   ", "description", 10),
            Err(TextError::Empty {
                field: "description"
            })
        );
        assert_eq!(
            NonEmptyText::parse("ååååå", "reason", 4),
            Err(TextError::TooLong {
                field: "reason",
                len: 5,
                max: 4
            })
        );
        assert_eq!(
            NonEmptyText::parse("bell\u{7}", "feedback", 100),
            Err(TextError::ControlCharacter { field: "feedback" })
        );
    }

    #[test]
    fn non_empty_text_length_counts_characters_not_bytes() {
        assert!(NonEmptyText::parse("ååå", "name", 3).is_ok());
    }

    #[test]
    fn person_names_accept_real_names() {
        let n = PersonName::parse(" Anna-Karin ", "O'Brien Åström").unwrap();
        assert_eq!(n.given_names(), "Anna-Karin");
        assert_eq!(n.family_name(), "O'Brien Åström");
        assert_eq!(n.full_name(), "Anna-Karin O'Brien Åström");
        assert!(PersonName::parse("李", "小龍").is_ok());
    }

    #[test]
    fn person_names_refuse_markup_newlines_and_empty_parts() {
        assert_eq!(
            PersonName::parse("<script>", "x"),
            Err(TextError::ForbiddenCharacter {
                field: "given_names",
                found: '<'
            })
        );
        assert_eq!(
            PersonName::parse("Anna", "A\nB"),
            Err(TextError::ControlCharacter {
                field: "family_name"
            })
        );
        assert_eq!(
            PersonName::parse("Anna", " "),
            Err(TextError::Empty {
                field: "family_name"
            })
        );
        assert!(PersonName::parse(&"a".repeat(101), "B").is_err());
    }

    #[test]
    fn person_name_debug_output_is_redacted() {
        let n = PersonName::parse("Anna", "Berg").unwrap();
        assert!(!format!("{n:?}").contains("Berg"));
    }

    #[test]
    fn person_name_deserialisation_validates() {
        let ok = r#"{"given_names":"Anna","family_name":"Berg"}"#;
        assert!(serde_json::from_str::<PersonName>(ok).is_ok());
        let bad = r#"{"given_names":"","family_name":"Berg"}"#;
        assert!(serde_json::from_str::<PersonName>(bad).is_err());
    }
}
