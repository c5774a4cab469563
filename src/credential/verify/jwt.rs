//! VC-JWT: the credential as the payload of a compact JWS (OB 3.0, "JSON Web Token Proof Format").
//!
//! The signature is checked by `jsonwebtoken`; the OB rules on top of it are ours: `iss`, `jti`,
//! `nbf` (and `sub`, `exp` when given) must say what the credential says, so that a relying party
//! reading only the claims and one reading only the credential see the same thing.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header, errors::ErrorKind};
use serde_json::{Map, Value};

use super::{ProofUsed, VerifiedCredential, VerifyError, claims};

/// The JOSE algorithms accepted: OB 3.0 requires `RS256` of every verifier; `EdDSA` and `ES256`
/// are what the issuer keys of issue #22 may be (Ed25519, P-256). No HMAC, and never `none`.
const ACCEPTED: [Algorithm; 3] = [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256];

/// Where the key that checks the signature comes from.
#[derive(Clone)]
pub enum KeySource {
    /// A key the caller trusts for this issuer (its published key). The header's `jwk`, if any,
    /// is ignored.
    Trusted(DecodingKey),
    /// The public key in the JOSE header's `jwk`. The signer chose it: the result says which key
    /// it was ([`ProofUsed::VcJwt`]), and only a comparison with the issuer's keys makes it trusted.
    /// For checking self-contained examples, as 1EdTech's validator does.
    HeaderJwk,
}

impl std::fmt::Debug for KeySource {
    // `DecodingKey` has no `Debug`; which kind of source it is is what a log needs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Trusted(_) => f.write_str("KeySource::Trusted(..)"),
            KeySource::HeaderJwk => f.write_str("KeySource::HeaderJwk"),
        }
    }
}

/// Verifies a VC-JWT (compact JWS) and the OB 3.0 rules tying its claims to the credential, then
/// the credential's validity window. Accepts the VC 1.1 form, the credential in a `vc` claim, whose
/// missing `id`, `issuer`, `issuanceDate`, subject `id` and `expirationDate` the claims supply.
pub fn verify_jwt(jws: &str, keys: &KeySource) -> Result<VerifiedCredential, VerifyError> {
    let jws = jws.trim();
    let header =
        decode_header(jws).map_err(|error| VerifyError::MalformedJwt(error.to_string()))?;
    if !ACCEPTED.contains(&header.alg) {
        return Err(VerifyError::AlgorithmNotAccepted(header.alg));
    }
    if let Some(typ) = header.typ.as_deref().filter(|typ| *typ != "JWT") {
        return Err(VerifyError::WrongJwtType(typ.to_owned()));
    }
    let header_key;
    let (key, header_jwk) = match keys {
        KeySource::Trusted(key) => (key, None),
        KeySource::HeaderJwk => {
            let jwk = header.jwk.ok_or(VerifyError::MissingHeaderJwk)?;
            header_key = DecodingKey::from_jwk(&jwk)
                .map_err(|error| VerifyError::UnusableKey(error.to_string()))?;
            (&header_key, Some(Box::new(jwk)))
        }
    };

    let payload = decode::<Map<String, Value>>(jws, key, &signature_only(header.alg))
        .map_err(|error| match error.kind() {
            ErrorKind::InvalidSignature => VerifyError::InvalidSignature,
            ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidKeyFormat
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_) => VerifyError::UnusableKey(error.to_string()),
            _ => VerifyError::MalformedJwt(error.to_string()),
        })?
        .claims;

    let credential = credential_of(&payload)?;
    check_claims(&payload, &credential)?;
    claims::check_validity_window(&credential, Utc::now())?;
    Ok(VerifiedCredential {
        issuer_id: claims::issuer_id(&credential)?,
        credential,
        proof: ProofUsed::VcJwt {
            algorithm: header.alg,
            header_jwk,
        },
    })
}

/// `jsonwebtoken` checks the signature only: the registered claims are checked against the
/// credential below (its own `exp`/`nbf` checks have a leeway and know nothing of `validFrom`),
/// and `aud`, when present, names the holder, which a public verifier has no value to compare with.
fn signature_only(alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation
}

/// The credential the JWT carries: the payload itself (VC 2.0), or its `vc` claim (VC 1.1) with
/// the fields the VC 1.1 JWT encoding moves into the claims put back.
fn credential_of(payload: &Map<String, Value>) -> Result<Value, VerifyError> {
    let Some(vc) = payload.get("vc") else {
        let mut credential = payload.clone();
        for claim in ["iss", "jti", "nbf", "sub", "exp", "iat", "aud"] {
            credential.remove(claim);
        }
        return Ok(Value::Object(credential));
    };
    let mut credential = vc
        .as_object()
        .cloned()
        .ok_or(VerifyError::MissingField("vc"))?;
    let mut restore = |field: &str, value: Option<Value>| {
        if let Some(value) = value.filter(|_| !credential.contains_key(field)) {
            credential.insert(field.to_owned(), value);
        }
    };
    restore("id", payload.get("jti").cloned());
    restore("issuer", payload.get("iss").cloned());
    restore("issuanceDate", seconds_claim(payload, "nbf").map(rfc3339));
    restore("expirationDate", seconds_claim(payload, "exp").map(rfc3339));
    if let (Some(sub), Some(Value::Object(subject))) =
        (payload.get("sub"), credential.get_mut("credentialSubject"))
    {
        subject.entry("id").or_insert_with(|| sub.clone());
    }
    Ok(Value::Object(credential))
}

/// The OB 3.0 claim rules: `iss` = issuer id, `jti` = `id`, `nbf` = `validFrom` are required;
/// `sub` = `credentialSubject.id` when the JWT has `sub` (1EdTech's own example omits it), and
/// `exp` = `validUntil` when either is given.
fn check_claims(payload: &Map<String, Value>, credential: &Value) -> Result<(), VerifyError> {
    let iss = string_claim(payload, "iss")?.ok_or(VerifyError::MissingClaim("iss"))?;
    same("iss", iss, "issuer.id", &claims::issuer_id(credential)?)?;

    let jti = string_claim(payload, "jti")?.ok_or(VerifyError::MissingClaim("jti"))?;
    let id = credential.get("id").and_then(Value::as_str);
    same("jti", jti, "id", id.ok_or(VerifyError::MissingField("id"))?)?;

    let nbf = seconds_claim(payload, "nbf").ok_or(VerifyError::MissingClaim("nbf"))?;
    let (from_field, from) = claims::valid_from(credential)?;
    same_time("nbf", nbf, from_field, from)?;

    if let Some(sub) = string_claim(payload, "sub")? {
        let subject_id = credential
            .pointer("/credentialSubject/id")
            .and_then(Value::as_str);
        same(
            "sub",
            sub,
            "credentialSubject.id",
            subject_id.unwrap_or("absent"),
        )?;
    }

    match (
        seconds_claim(payload, "exp"),
        claims::valid_until(credential)?,
    ) {
        (None, None) => {}
        (Some(exp), Some((until_field, until))) => same_time("exp", exp, until_field, until)?,
        (Some(exp), None) => {
            return Err(VerifyError::ClaimMismatch {
                claim: "exp",
                claim_value: exp.to_string(),
                field: "validUntil",
                field_value: "absent".to_owned(),
            });
        }
        (None, Some(_)) => return Err(VerifyError::MissingClaim("exp")),
    }
    Ok(())
}

fn string_claim<'p>(
    payload: &'p Map<String, Value>,
    claim: &'static str,
) -> Result<Option<&'p str>, VerifyError> {
    match payload.get(claim) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(VerifyError::ClaimMismatch {
            claim,
            claim_value: other.to_string(),
            field: "a string",
            field_value: "-".to_owned(),
        }),
    }
}

/// A NumericDate claim, in whole seconds (RFC 7519 allows fractions; the credential's dates
/// are compared at whole seconds too).
fn seconds_claim(payload: &Map<String, Value>, claim: &str) -> Option<i64> {
    payload
        .get(claim)
        .and_then(|value| value.as_i64().or_else(|| value.as_f64().map(|f| f as i64)))
}

fn rfc3339(seconds: i64) -> Value {
    DateTime::from_timestamp(seconds, 0)
        .map(|date| Value::String(date.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
        .unwrap_or(Value::Null)
}

fn same(
    claim: &'static str,
    value: &str,
    field: &'static str,
    expected: &str,
) -> Result<(), VerifyError> {
    if value == expected {
        return Ok(());
    }
    Err(VerifyError::ClaimMismatch {
        claim,
        claim_value: value.to_owned(),
        field,
        field_value: expected.to_owned(),
    })
}

fn same_time(
    claim: &'static str,
    seconds: i64,
    field: &'static str,
    expected: DateTime<Utc>,
) -> Result<(), VerifyError> {
    if seconds == expected.timestamp() {
        return Ok(());
    }
    Err(VerifyError::ClaimMismatch {
        claim,
        claim_value: seconds.to_string(),
        field,
        field_value: expected.to_rfc3339(),
    })
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
