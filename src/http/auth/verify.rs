//! Checking bearer tokens: signature against the configured keys, then issuer, audience, expiry and
//! not-before.
//!
//! Accepted algorithms are HS256 (a shared development secret) and RS256/ES256 (public keys from a
//! JWKS file, or from the JWKS URL an OpenID Connect provider publishes, see [`super::jwks`]). Anything else, `alg: none` included, is
//! refused before a key is even looked at: the algorithm is decided by our keys, never by the token.

use super::jwks::{JwksTiming, RemoteJwks};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::de::DeserializeOwned;
use std::fmt;
use std::path::{Path, PathBuf};

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_S: u64 = 30;

/// Where the verification keys come from, and what the tokens must say about their issuer and
/// audience.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// HS256 secret for development tokens (`cim token`). Never set it in production.
    pub dev_secret: Option<String>,
    /// A JWKS document with the identity provider's public keys (RS256/ES256).
    pub jwks_file: Option<PathBuf>,
    /// The identity provider's JWKS URL (its `jwks_uri`), fetched and refreshed while serving.
    pub jwks_url: Option<url::Url>,
    pub jwks_timing: JwksTiming,
    pub issuer: String,
    pub audience: String,
    /// How the verified claims map to a caller.
    pub claims: super::claims::ClaimMapping,
}

/// Why the configured keys cannot be used; the server refuses to start rather than refuse every
/// request.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the JWKS file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the JWKS file {path} is not a JSON Web Key Set")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("the JWKS file {path} holds no RS256 or ES256 (P-256) signing key")]
    NoUsableKey { path: PathBuf },
    #[error("cannot fetch the JWKS from {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("the development secret is shorter than 32 bytes")]
    WeakSecret,
}

/// Why a token was refused. Each has a stable code for the 401 problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token is signed with an algorithm this server does not accept")]
    Algorithm,
    #[error("the token's signature does not match any of this server's keys")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by someone this server does not trust")]
    Issuer,
    #[error("the token is meant for another audience")]
    Audience,
    #[error("the token lacks a required claim or has one of the wrong type")]
    Claims,
}

impl TokenError {
    pub fn code(self) -> &'static str {
        match self {
            TokenError::Malformed => "token_malformed",
            TokenError::Algorithm => "token_algorithm",
            TokenError::Signature => "token_signature",
            TokenError::Expired => "token_expired",
            TokenError::NotYetValid => "token_not_yet_valid",
            TokenError::Issuer => "token_issuer",
            TokenError::Audience => "token_audience",
            TokenError::Claims => "token_claims",
        }
    }
}

/// One key a signature may be checked with.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// The configured keys and expectations. Without any key every token is refused.
pub struct Verifier {
    /// The development secret and the keys of a JWKS file: fixed for the life of the process.
    keys: Vec<VerifyingKey>,
    /// The identity provider's JWKS URL, when configured.
    remote: Option<RemoteJwks>,
    issuer: String,
    audience: String,
    claims: super::claims::ClaimMapping,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|k| {
                format!(
                    "{:?}{}",
                    k.algorithm,
                    k.kid
                        .as_deref()
                        .map(|k| format!(" {k}"))
                        .unwrap_or_default()
                )
            })
            .collect();
        f.debug_struct("Verifier")
            .field("keys", &keys)
            .field("remote", &self.remote)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

/// The shortest development secret accepted: HS256 with fewer bits is guessable.
pub const MIN_SECRET_LEN: usize = 32;

impl Verifier {
    /// A verifier that refuses everything (no keys configured).
    pub fn refuse_all() -> Self {
        Self {
            keys: Vec::new(),
            remote: None,
            issuer: String::new(),
            audience: String::new(),
            claims: super::claims::ClaimMapping::default(),
        }
    }

    /// How verified claims map to a caller.
    pub fn claims(&self) -> &super::claims::ClaimMapping {
        &self.claims
    }

    pub fn from_settings(settings: &AuthSettings) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        if let Some(secret) = settings.dev_secret.as_deref().filter(|s| !s.is_empty()) {
            if secret.len() < MIN_SECRET_LEN {
                return Err(KeyError::WeakSecret);
            }
            keys.push(VerifyingKey {
                kid: None,
                algorithm: Algorithm::HS256,
                key: DecodingKey::from_secret(secret.as_bytes()),
            });
        }
        if let Some(path) = &settings.jwks_file {
            keys.extend(load_jwks(path)?);
        }
        let remote = settings
            .jwks_url
            .clone()
            .map(|url| RemoteJwks::new(url, settings.jwks_timing))
            .transpose()?;
        Ok(Self {
            keys,
            remote,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            claims: settings.claims.clone(),
        })
    }

    /// Whether any key is configured (a JWKS URL counts before its first fetch).
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty() || self.remote.is_some()
    }

    /// Fetches the JWKS URL's keys, when one is configured (at start-up; afterwards the keys are
    /// refreshed as tokens arrive).
    pub async fn fetch_remote_keys(&self) -> Result<Option<usize>, KeyError> {
        match &self.remote {
            Some(remote) => remote.fetch_now().await.map(Some),
            None => Ok(None),
        }
    }

    /// `Err` with the reason while a configured JWKS URL has never been fetched: no token of the
    /// identity provider can be checked yet (readiness).
    pub fn readiness(&self) -> Result<(), String> {
        match &self.remote {
            Some(remote) if !remote.has_fetched() => {
                Err("the identity provider's JWKS has not been fetched yet".into())
            }
            _ => Ok(()),
        }
    }

    /// The claims of a token that passes every check. With a JWKS URL, a stale key set is
    /// refreshed first, and a token naming an unknown key id makes the set be fetched again (a key
    /// rotation) before the token is refused.
    pub async fn verify<C: DeserializeOwned>(&self, token: &str) -> Result<C, TokenError> {
        let header = read_header(token)?;
        let Some(remote) = &self.remote else {
            return self.verify_with(&self.keys, &[], token, &header);
        };
        remote.refresh_if_stale().await;
        let fetched = remote.keys();
        let result = self.verify_with(&self.keys, &fetched, token, &header);
        let unknown_kid = header.kid.as_ref().is_some_and(|kid| {
            !self
                .keys
                .iter()
                .chain(fetched.iter())
                .any(|k| k.kid.as_ref() == Some(kid))
        });
        match result {
            Err(TokenError::Signature)
                if unknown_kid
                    && header.alg != Algorithm::HS256
                    && remote.refresh_for_unknown_key().await =>
            {
                self.verify_with(&self.keys, &remote.keys(), token, &header)
            }
            other => other,
        }
    }

    fn verify_with<C: DeserializeOwned>(
        &self,
        fixed: &[VerifyingKey],
        fetched: &[VerifyingKey],
        token: &str,
        header: &jsonwebtoken::Header,
    ) -> Result<C, TokenError> {
        let candidates = fixed.iter().chain(fetched).filter(|k| {
            k.algorithm == header.alg
                && match (&header.kid, &k.kid) {
                    (Some(wanted), Some(have)) => wanted == have,
                    _ => true,
                }
        });
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_S;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let mut last = TokenError::Signature;
        for candidate in candidates {
            match jsonwebtoken::decode::<C>(token, &candidate.key, &validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => {
                    last = classify(e.kind());
                    // Only a signature mismatch makes another key worth trying.
                    if last != TokenError::Signature {
                        return Err(last);
                    }
                }
            }
        }
        Err(last)
    }
}

/// The token's header, refused unless it names an algorithm we accept.
fn read_header(token: &str) -> Result<jsonwebtoken::Header, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
        // An unknown `alg` (including "none") fails to parse as an Algorithm.
        ErrorKind::Json(_) if token_names_alg_none(token) => TokenError::Algorithm,
        _ => TokenError::Malformed,
    })?;
    if !matches!(
        header.alg,
        Algorithm::HS256 | Algorithm::RS256 | Algorithm::ES256
    ) {
        return Err(TokenError::Algorithm);
    }
    Ok(header)
}

fn classify(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature => TokenError::Signature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidIssuer => TokenError::Issuer,
        ErrorKind::InvalidAudience => TokenError::Audience,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => TokenError::Algorithm,
        ErrorKind::MissingRequiredClaim(_)
        | ErrorKind::InvalidClaimFormat(_)
        | ErrorKind::Json(_) => TokenError::Claims,
        _ => TokenError::Malformed,
    }
}

/// Whether the (unverified) header says `"alg": "none"`, so that the refusal names the reason.
fn token_names_alg_none(token: &str) -> bool {
    token.split('.').next().is_some_and(header_is_alg_none)
}

fn header_is_alg_none(encoded: &str) -> bool {
    decode_b64url(encoded)
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|v| {
            v.get("alg")
                .and_then(|a| a.as_str())
                .map(|a| a.eq_ignore_ascii_case("none"))
        })
        .unwrap_or(false)
}

/// Base64url without padding, as JWTs use it (no extra dependency for a 20-line decoder).
fn decode_b64url(input: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    for chunk in input.trim_end_matches('=').as_bytes().chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= value(*c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len().max(1)]);
    }
    Some(out)
}

fn load_jwks(path: &Path) -> Result<Vec<VerifyingKey>, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    let set: JwkSet = serde_json::from_str(&text).map_err(|source| KeyError::Parse {
        path: path.to_owned(),
        source,
    })?;
    let keys = keys_of(&set);
    if keys.is_empty() {
        return Err(KeyError::NoUsableKey {
            path: path.to_owned(),
        });
    }
    Ok(keys)
}

/// The RS256 and ES256 (P-256) signing keys of a key set; other keys are skipped.
pub(super) fn keys_of(set: &JwkSet) -> Vec<VerifyingKey> {
    set.keys
        .iter()
        .filter_map(|jwk| {
            let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
                (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
                (AlgorithmParameters::EllipticCurve(p), None | Some(KeyAlgorithm::ES256))
                    if p.curve == EllipticCurve::P256 =>
                {
                    Algorithm::ES256
                }
                _ => return None,
            };
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some(VerifyingKey {
                kid: jwk.common.key_id.clone(),
                algorithm,
                key,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_decodes_jwt_headers() {
        assert_eq!(
            decode_b64url("eyJhbGciOiJub25lIn0").unwrap(),
            br#"{"alg":"none"}"#
        );
        assert!(header_is_alg_none("eyJhbGciOiJub25lIn0"));
        assert!(!header_is_alg_none("eyJhbGciOiJIUzI1NiJ9"));
        assert!(decode_b64url("a+b").is_none());
    }

    #[test]
    fn a_short_secret_is_refused_at_start_up() {
        let settings = AuthSettings {
            dev_secret: Some("short".into()),
            ..AuthSettings::default()
        };
        assert!(matches!(
            Verifier::from_settings(&settings),
            Err(KeyError::WeakSecret)
        ));
    }
}
