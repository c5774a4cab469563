//! Offline verification of Open Badges 3.0 credentials, in both proof formats OB 3.0 allows:
//!
//! - **VC-JWT** ([`verify_jwt`]): a compact JWS whose payload is the credential, `EdDSA`, `ES256` or
//!   `RS256`, with the OB rules that tie the JWT claims to the credential's fields;
//! - **Data Integrity** ([`verify_data_integrity`]): an embedded `DataIntegrityProof` of the
//!   `eddsa-rdfc-2022` cryptosuite, checked over the RDF canonical form of the credential, with the
//!   JSON-LD contexts compiled in (`../contexts/`) and no other context accepted.
//!
//! Both answer a [`VerifiedCredential`] that says which key signed. A proof only shows that the
//! holder of that key signed: whether the key is the issuer's is the caller's question (compare
//! [`ProofUsed`] with the keys the issuer publishes), except with [`KeySource::Trusted`], where the
//! caller named the key beforehand.
//!
//! Both also check the credential's validity window (`validFrom`, `validUntil`) against the clock.
//! Revocation (`credentialStatus`) is not checked here.

mod claims;
mod data_integrity;
mod jsonld;
mod jwt;
mod svg;

pub use data_integrity::verify_data_integrity;
pub use jwt::{KeySource, verify_jwt};
pub use svg::{BakedCredential, credential_from_svg};

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::Jwk;
use serde_json::Value;

/// A credential whose proof verified and whose validity window includes now.
#[derive(Debug, Clone)]
pub struct VerifiedCredential {
    /// The credential itself (for a VC-JWT, the payload; under VC 1.1, its `vc` claim).
    pub credential: Value,
    /// `issuer.id` (or `issuer` when it is a bare URI), the party the credential claims as issuer.
    pub issuer_id: String,
    /// How it was signed, and with which key: what the caller compares with the issuer's keys.
    pub proof: ProofUsed,
}

/// The proof that verified, and the key it was verified with.
#[derive(Debug, Clone)]
pub enum ProofUsed {
    /// A VC-JWT.
    VcJwt {
        /// The JOSE `alg` of the signature.
        algorithm: Algorithm,
        /// The key from the JOSE header, when [`KeySource::HeaderJwk`] took it from there: the
        /// signer chose it, so it proves nothing until compared with the issuer's keys. `None`
        /// when the caller supplied the key.
        header_jwk: Option<Box<Jwk>>,
    },
    /// One or more embedded `eddsa-rdfc-2022` Data Integrity proofs, all verified.
    DataIntegrity {
        /// Each proof's `verificationMethod` and the Ed25519 public key it names, in proof order.
        keys: Vec<DataIntegrityKey>,
    },
}

/// The key of one verified Data Integrity proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataIntegrityKey {
    /// The proof's `verificationMethod` (a URL whose fragment is the Multikey, e.g. `…#z6Mk…`).
    pub verification_method: String,
    /// The raw Ed25519 public key the Multikey encodes.
    pub public_key: [u8; 32],
}

/// Why a credential did not verify. Every variant is the credential's fault (a client error):
/// verification does no I/O, so none is the server's.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("not a compact JWS (header.payload.signature): {0}")]
    MalformedJwt(String),
    #[error("JWS algorithm {0:?} is not accepted (EdDSA, ES256, RS256 are)")]
    AlgorithmNotAccepted(Algorithm),
    #[error("JOSE header `typ` is {0:?}; OB 3.0 allows only \"JWT\"")]
    WrongJwtType(String),
    #[error("the JOSE header carries no `jwk` to verify with")]
    MissingHeaderJwk,
    #[error("the verification key is unusable: {0}")]
    UnusableKey(String),
    #[error("the signature does not verify")]
    InvalidSignature,
    #[error("the credential is not a JSON object with the field {0}")]
    MissingField(&'static str),
    #[error("the JWT has no `{0}` claim, which OB 3.0 requires")]
    MissingClaim(&'static str),
    #[error("JWT claim `{claim}` is {claim_value} but the credential's `{field}` is {field_value}")]
    ClaimMismatch {
        claim: &'static str,
        claim_value: String,
        field: &'static str,
        field_value: String,
    },
    #[error("`{field}` is not a date-time with time zone: {value}")]
    BadDate { field: &'static str, value: String },
    #[error("the credential is valid only from {0}")]
    NotYetValid(String),
    #[error("the credential expired at {0}")]
    Expired(String),
    #[error("the credential has no embedded `proof`")]
    NoProof,
    #[error(
        "proof type {proof_type:?} with cryptosuite {cryptosuite:?} is not supported (DataIntegrityProof eddsa-rdfc-2022 is)"
    )]
    UnsupportedProof {
        proof_type: String,
        cryptosuite: String,
    },
    #[error("proof purpose {0:?} is not assertionMethod")]
    WrongProofPurpose(String),
    #[error("`verificationMethod` {0:?} is not an Ed25519 Multikey (…#z6Mk…)")]
    BadVerificationMethod(String),
    #[error("`verificationMethod` {method:?} is not the issuer's ({issuer:?})")]
    ForeignVerificationMethod { method: String, issuer: String },
    #[error("`proofValue` is not a base58btc multibase Ed25519 signature (z…)")]
    BadProofValue,
    #[error("JSON-LD context {0:?} is not one of the contexts compiled in; nothing is fetched")]
    ContextNotLocal(String),
    #[error("JSON-LD processing failed: {0}")]
    JsonLd(String),
    #[error("RDF canonicalization failed: {0}")]
    Canonicalization(String),
}

/// One of 1EdTech's signed examples, from `shared/` beside the checkout (`shared/formats/openbadges/`).
#[cfg(test)]
fn example(file: &str) -> String {
    let path = format!(
        "{}/../shared/formats/openbadges/examples/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}
