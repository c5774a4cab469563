//! Embedded Data Integrity proofs of the `eddsa-rdfc-2022` cryptosuite (W3C vc-di-eddsa, the
//! suite of 1EdTech's conformance tests).
//!
//! The signed bytes are `SHA-256(canonical proof options) || SHA-256(canonical credential)`, where
//! the credential is taken without `proof`, the proof options are the proof without `proofValue`
//! under the credential's `@context`, and "canonical" is RDFC-1.0 N-Quads ([`super::jsonld`]).
//! So a signature covers what the credential *means* under its contexts, not its JSON spelling.

use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::jsonld::canonical_nquads;
use super::{DataIntegrityKey, ProofUsed, VerifiedCredential, VerifyError, claims};

/// The multicodec prefix of an Ed25519 public key (0xed, as an unsigned varint), as in `z6Mk…`.
const ED25519_MULTICODEC: [u8; 2] = [0xed, 0x01];

/// Verifies every embedded proof of a credential (a proof set: each over the credential without
/// any proof), each an `eddsa-rdfc-2022` `DataIntegrityProof` for `assertionMethod` by a key of the
/// issuer, then the validity window. The key is the one the `verificationMethod` Multikey encodes:
/// the result names it, for the caller to compare with the keys the issuer publishes.
pub fn verify_data_integrity(credential: &Value) -> Result<VerifiedCredential, VerifyError> {
    let object = credential
        .as_object()
        .ok_or(VerifyError::MissingField("proof"))?;
    let proofs: Vec<&Value> = match object.get("proof") {
        Some(Value::Array(proofs)) => proofs.iter().collect(),
        Some(proof @ Value::Object(_)) => vec![proof],
        _ => Vec::new(),
    };
    if proofs.is_empty() {
        return Err(VerifyError::NoProof);
    }
    let issuer_id = claims::issuer_id(credential)?;

    let mut unsecured = object.clone();
    unsecured.remove("proof");
    let context = unsecured.get("@context").cloned();
    let document_hash = Sha256::digest(canonical_nquads(&Value::Object(unsecured))?);

    let keys = proofs
        .into_iter()
        .map(|proof| verify_proof(proof, context.as_ref(), &document_hash, &issuer_id))
        .collect::<Result<Vec<_>, _>>()?;
    claims::check_validity_window(credential, chrono::Utc::now())?;
    Ok(VerifiedCredential {
        credential: credential.clone(),
        issuer_id,
        proof: ProofUsed::DataIntegrity { keys },
    })
}

fn verify_proof(
    proof: &Value,
    context: Option<&Value>,
    document_hash: &[u8],
    issuer_id: &str,
) -> Result<DataIntegrityKey, VerifyError> {
    let empty = Map::new();
    let proof = proof.as_object().unwrap_or(&empty);
    let text = |field: &str| proof.get(field).and_then(Value::as_str).unwrap_or_default();
    if text("type") != "DataIntegrityProof" || text("cryptosuite") != "eddsa-rdfc-2022" {
        return Err(VerifyError::UnsupportedProof {
            proof_type: text("type").to_owned(),
            cryptosuite: text("cryptosuite").to_owned(),
        });
    }
    if text("proofPurpose") != "assertionMethod" {
        return Err(VerifyError::WrongProofPurpose(
            text("proofPurpose").to_owned(),
        ));
    }
    let method = text("verificationMethod");
    let public_key = multikey(method, issuer_id)?;
    let signature = proof_value(text("proofValue"))?;

    let mut options = proof.clone();
    options.remove("proofValue");
    if let Some(context) = context {
        options.insert("@context".to_owned(), context.clone());
    }
    let mut signed = Sha256::digest(canonical_nquads(&Value::Object(options))?).to_vec();
    signed.extend_from_slice(document_hash);
    // Strict: no small-order keys, no malleable signatures; an honest signer never makes either.
    public_key
        .verify_strict(&signed, &signature)
        .map_err(|_| VerifyError::InvalidSignature)?;
    Ok(DataIntegrityKey {
        verification_method: method.to_owned(),
        public_key: public_key.to_bytes(),
    })
}

/// The Ed25519 key of a `verificationMethod` of the form `<issuer id>#z6Mk…` (a Multikey as the
/// fragment of the issuer's URL, as 1EdTech's examples and `did:key` both spell it). A method
/// under another URL is refused: it would let any key claim any issuer.
fn multikey(method: &str, issuer_id: &str) -> Result<VerifyingKey, VerifyError> {
    let bad = || VerifyError::BadVerificationMethod(method.to_owned());
    let (controller, fragment) = method.split_once('#').ok_or_else(bad)?;
    if controller != issuer_id {
        return Err(VerifyError::ForeignVerificationMethod {
            method: method.to_owned(),
            issuer: issuer_id.to_owned(),
        });
    }
    let bytes = base58btc(fragment).ok_or_else(bad)?;
    let key: [u8; 32] = bytes
        .strip_prefix(&ED25519_MULTICODEC)
        .and_then(|key| key.try_into().ok())
        .ok_or_else(bad)?;
    VerifyingKey::from_bytes(&key).map_err(|_| bad())
}

fn proof_value(value: &str) -> Result<Signature, VerifyError> {
    let bytes = base58btc(value).ok_or(VerifyError::BadProofValue)?;
    Signature::from_slice(&bytes).map_err(|_| VerifyError::BadProofValue)
}

/// A multibase string in base58btc (prefix `z`), decoded.
fn base58btc(multibase: &str) -> Option<Vec<u8>> {
    bs58::decode(multibase.strip_prefix('z')?).into_vec().ok()
}

#[cfg(test)]
#[path = "data_integrity_tests.rs"]
mod tests;
