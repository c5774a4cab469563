//! The university as the issuer of Open Badges credentials: its profile, its signing key and the
//! public keys a verifier checks signatures with.
//!
//! **The key.** Ed25519, derived from the master key (`MasterKey::derive`), so it is never stored
//! and every instance of the service signs with the same key without sharing a file. Its public
//! half is recorded in `issuer_keys` the first time it signs; the published key set lists every
//! key ever used, so credentials signed before a master-key rotation stay verifiable.
//!
//! **The proof format: VC-JWT with EdDSA** (Open Badges 3.0, "JSON Web Token Proof Format"). The
//! `jsonwebtoken` crate the API already uses for bearer tokens signs and verifies it, and it needs
//! no JSON-LD processing at issue time; an embedded `eddsa-rdfc-2022` proof would need RDF
//! canonicalisation of every credential we issue.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::crypto::MasterKey;

/// Who issues, as configured (`CIM_PUBLIC_URL`, `CIM_ISSUER_NAME`, `CIM_ISSUER_URL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerConfig {
    /// Where this service is reached from outside, without a trailing slash: credential ids, the
    /// issuer profile, the key set and the status list are URLs under it.
    pub public_url: String,
    /// The university's name, e.g. "Karolinska Institutet".
    pub name: String,
    /// The university's web site.
    pub url: Option<String>,
}

impl IssuerConfig {
    pub fn issuer_id(&self) -> String {
        format!("{}/issuer", self.public_url)
    }

    pub fn keys_url(&self) -> String {
        format!("{}/issuer/keys", self.public_url)
    }

    /// The issuer's `Profile`, as every credential embeds it and `GET /issuer` shows it.
    pub fn profile(&self) -> Value {
        let mut profile = json!({
            "@context": [
                "https://www.w3.org/ns/credentials/v2",
                "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
            ],
            "id": self.issuer_id(),
            "type": ["Profile"],
            "name": self.name,
        });
        if let Some(url) = &self.url {
            profile["url"] = json!(url);
        }
        profile
    }
}

/// The signing key of this service, derived from the master key.
pub struct IssuerKey {
    signing: SigningKey,
    /// `{issuer id}#key-{first 16 hex digits of the public key's SHA-256}`.
    pub kid: String,
}

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The fixed start of a PKCS #8 document holding an Ed25519 private key (RFC 8410), followed by
/// the 32-byte seed: what `jsonwebtoken` takes an EdDSA key as.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

impl IssuerKey {
    pub fn derive(master: &MasterKey, config: &IssuerConfig) -> Self {
        let seed = master.derive("credential issuer ed25519 v1");
        let signing = SigningKey::from_bytes(&seed);
        let public = signing.verifying_key().to_bytes();
        let fingerprint = hex::encode(&Sha256::digest(public)[..8]);
        Self {
            signing,
            kid: format!("{}#key-{fingerprint}", config.issuer_id()),
        }
    }

    /// The public key as a JWK (RFC 8037), with its `kid`.
    pub fn public_jwk(&self) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": B64URL.encode(self.signing.verifying_key().to_bytes()),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        })
    }

    /// Signs `claims` as a compact JWS: header `alg` EdDSA, `kid`, `typ` JWT, nothing else (as
    /// Open Badges 3.0 asks).
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, jsonwebtoken::errors::Error> {
        let mut der = Vec::with_capacity(48);
        der.extend_from_slice(&PKCS8_ED25519_PREFIX);
        der.extend_from_slice(&self.signing.to_bytes());
        let key = EncodingKey::from_ed_der(&der);
        der.iter_mut().for_each(|b| *b = 0);
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".to_owned());
        jsonwebtoken::encode(&header, claims, &key)
    }

    /// Records the public key (once), so the key set keeps it after a master-key rotation.
    pub async fn publish(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "INSERT INTO issuer_keys (kid, public_jwk) VALUES ($1, $2) ON CONFLICT (kid) DO NOTHING",
            self.kid,
            self.public_jwk(),
        )
        .execute(pool)
        .await?;
        Ok(())
    }
}

/// Every key this service has signed credentials with, as a JWK set (`GET /issuer/keys`).
pub async fn key_set(pool: &PgPool) -> Result<Value, sqlx::Error> {
    let keys: Vec<Value> =
        sqlx::query_scalar!("SELECT public_jwk FROM issuer_keys ORDER BY created_at")
            .fetch_all(pool)
            .await?;
    Ok(json!({ "keys": keys }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> IssuerConfig {
        IssuerConfig {
            public_url: "https://cim.uni.example".into(),
            name: "Example University".into(),
            url: None,
        }
    }

    #[test]
    fn the_key_is_derived_from_the_master_key_and_signs_what_its_jwk_verifies() {
        let master = MasterKey::generate();
        let key = IssuerKey::derive(&master, &config());
        assert_eq!(key.kid, IssuerKey::derive(&master, &config()).kid);
        assert_ne!(
            key.kid,
            IssuerKey::derive(&MasterKey::generate(), &config()).kid
        );
        let jws = key
            .sign(&json!({"iss": "https://cim.uni.example/issuer"}))
            .unwrap();
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.public_jwk()).unwrap();
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<Value>(&jws, &decoding, &validation).unwrap();
        assert_eq!(data.header.kid.as_deref(), Some(key.kid.as_str()));
        assert_eq!(data.header.typ.as_deref(), Some("JWT"));
    }
}
