//! E-mail addresses.
//!
//! Deliberately a plausibility check, not RFC 5322: the only real proof that an address works is a
//! delivered message, and a strict parser refuses addresses people actually use. What it does guarantee is
//! what the rest of the system relies on: one `@`, something on both sides, a dotted domain, nothing that
//! splits a CSV cell or a mail header.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest address accepted (the practical limit of SMTP's forward path).
pub const MAX_EMAIL_LEN: usize = 254;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("the e-mail address is empty")]
    Empty,
    #[error("the e-mail address is {len} characters long; at most 254 are accepted")]
    TooLong { len: usize },
    #[error("the e-mail address contains whitespace or a control character")]
    Whitespace,
    #[error("the e-mail address must contain exactly one '@', found {found}")]
    AtSign { found: usize },
    #[error("the e-mail address has nothing before the '@'")]
    EmptyLocalPart,
    #[error("the part after the '@' must be a domain name such as ki.se")]
    InvalidDomain,
}

impl EmailError {
    pub fn code(&self) -> &'static str {
        match self {
            EmailError::Empty => "email_empty",
            EmailError::TooLong { .. } => "email_too_long",
            EmailError::Whitespace => "email_whitespace",
            EmailError::AtSign { .. } => "email_at_sign",
            EmailError::EmptyLocalPart => "email_empty_local_part",
            EmailError::InvalidDomain => "email_invalid_domain",
        }
    }
}

/// `Debug` is redacted: commands and states are debug-printed in logs and test output, addresses must
/// not be.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email(<redacted>)")
    }
}

impl Email {
    /// Surrounding whitespace is trimmed (pasted addresses often carry it); the domain is lower-cased
    /// because domains are case-insensitive, the local part is kept as typed because it need not be.
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        let len = trimmed.chars().count();
        if len > MAX_EMAIL_LEN {
            return Err(EmailError::TooLong { len });
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError::Whitespace);
        }
        let found = trimmed.matches('@').count();
        if found != 1 {
            return Err(EmailError::AtSign { found });
        }
        let (local, domain) = trimmed
            .split_once('@')
            .ok_or(EmailError::AtSign { found })?;
        if local.is_empty() {
            return Err(EmailError::EmptyLocalPart);
        }
        let labels_ok = domain.contains('.') && domain.split('.').all(|label| !label.is_empty());
        if !labels_ok {
            return Err(EmailError::InvalidDomain);
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = EmailError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_and_lowercases_the_domain() {
        assert_eq!(
            Email::parse("  Anna.Berg@Stud.KI.se ").unwrap().as_str(),
            "Anna.Berg@stud.ki.se"
        );
        assert!(Email::parse("a+cim@example.co.uk").is_ok());
    }

    #[test]
    fn refuses_implausible_addresses() {
        assert_eq!(Email::parse(""), Err(EmailError::Empty));
        assert_eq!(
            Email::parse("anna.ki.se"),
            Err(EmailError::AtSign { found: 0 })
        );
        assert_eq!(
            Email::parse("a@b@ki.se"),
            Err(EmailError::AtSign { found: 2 })
        );
        assert_eq!(Email::parse("@ki.se"), Err(EmailError::EmptyLocalPart));
        assert_eq!(
            Email::parse("anna@localhost"),
            Err(EmailError::InvalidDomain)
        );
        assert_eq!(Email::parse("anna@ki..se"), Err(EmailError::InvalidDomain));
        assert_eq!(Email::parse("anna@.se"), Err(EmailError::InvalidDomain));
        assert_eq!(Email::parse("an na@ki.se"), Err(EmailError::Whitespace));
    }

    #[test]
    fn refuses_addresses_longer_than_254_characters() {
        let ok = format!("{}@ki.se", "a".repeat(248));
        assert!(Email::parse(&ok).is_ok());
        let long = format!("{}@ki.se", "a".repeat(249));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong { len: 255 }));
    }

    #[test]
    fn debug_output_does_not_leak_the_address() {
        assert_eq!(
            format!("{:?}", Email::parse("a@ki.se").unwrap()),
            "Email(<redacted>)"
        );
    }

    #[test]
    fn deserialisation_validates() {
        assert!(serde_json::from_str::<Email>("\"a@ki.se\"").is_ok());
        assert!(serde_json::from_str::<Email>("\"nope\"").is_err());
    }
}
