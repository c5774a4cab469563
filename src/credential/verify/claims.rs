//! The credential fields both proof formats read: who the issuer is, and when the credential is
//! valid. VC 2.0 names the window `validFrom`/`validUntil`; a VC 1.1 credential (the `vc` claim of
//! an older VC-JWT) names it `issuanceDate`/`expirationDate`, read as the same thing.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::VerifyError;

/// `issuer.id`, or `issuer` itself when the issuer is given as a bare URI.
pub(super) fn issuer_id(credential: &Value) -> Result<String, VerifyError> {
    match credential.get("issuer") {
        Some(Value::String(id)) => Ok(id.clone()),
        Some(Value::Object(profile)) => profile
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(VerifyError::MissingField("issuer.id")),
        _ => Err(VerifyError::MissingField("issuer")),
    }
}

/// The start of the validity window: `validFrom`, or a VC 1.1 `issuanceDate`, with its field name.
pub(super) fn valid_from(credential: &Value) -> Result<(&'static str, DateTime<Utc>), VerifyError> {
    date_field(credential, "validFrom")
        .or_else(|| date_field(credential, "issuanceDate"))
        .ok_or(VerifyError::MissingField("validFrom"))?
}

/// The end of the validity window, if the credential has one: `validUntil` or `expirationDate`.
pub(super) fn valid_until(
    credential: &Value,
) -> Result<Option<(&'static str, DateTime<Utc>)>, VerifyError> {
    date_field(credential, "validUntil")
        .or_else(|| date_field(credential, "expirationDate"))
        .transpose()
}

/// Refuses a credential that is not valid at `now` (no leeway: the dates are the issuer's words).
pub(super) fn check_validity_window(
    credential: &Value,
    now: DateTime<Utc>,
) -> Result<(), VerifyError> {
    let (_, from) = valid_from(credential)?;
    if now < from {
        return Err(VerifyError::NotYetValid(from.to_rfc3339()));
    }
    if let Some((_, until)) = valid_until(credential)?
        && now >= until
    {
        return Err(VerifyError::Expired(until.to_rfc3339()));
    }
    Ok(())
}

/// `Some` when the field is present: its name and its parsed value, or why it does not parse.
fn date_field(
    credential: &Value,
    field: &'static str,
) -> Option<Result<(&'static str, DateTime<Utc>), VerifyError>> {
    let value = credential.get(field)?;
    let parsed = value
        .as_str()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|date| (field, date.with_timezone(&Utc)))
        .ok_or_else(|| VerifyError::BadDate {
            field,
            value: value.to_string(),
        });
    Some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn issuer_is_a_uri_or_a_profile_with_an_id() {
        assert_eq!(
            issuer_id(&json!({"issuer": "https://u.example/i"})).unwrap(),
            "https://u.example/i"
        );
        assert_eq!(
            issuer_id(&json!({"issuer": {"id": "https://u.example/i", "type": ["Profile"]}}))
                .unwrap(),
            "https://u.example/i"
        );
        assert!(matches!(
            issuer_id(&json!({"issuer": {"name": "No id"}})),
            Err(VerifyError::MissingField("issuer.id"))
        ));
    }

    #[test]
    fn the_window_is_checked_at_both_ends() {
        let now = DateTime::parse_from_rfc3339("2025-06-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let open = json!({"validFrom": "2025-01-01T00:00:00Z"});
        assert!(check_validity_window(&open, now).is_ok());
        let future = json!({"validFrom": "2025-07-01T00:00:00+02:00"});
        assert!(matches!(
            check_validity_window(&future, now),
            Err(VerifyError::NotYetValid(_))
        ));
        let ended =
            json!({"validFrom": "2024-01-01T00:00:00Z", "validUntil": "2025-06-01T00:00:00Z"});
        assert!(matches!(
            check_validity_window(&ended, now),
            Err(VerifyError::Expired(_))
        ));
        let vc11 = json!({"issuanceDate": "2024-01-01T00:00:00Z", "expirationDate": "2030-01-01T00:00:00Z"});
        assert!(check_validity_window(&vc11, now).is_ok());
        let garbled = json!({"validFrom": "yesterday"});
        assert!(matches!(
            check_validity_window(&garbled, now),
            Err(VerifyError::BadDate { .. })
        ));
    }
}
