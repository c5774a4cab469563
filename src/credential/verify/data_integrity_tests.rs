use serde_json::{Value, json};

use super::super::{ProofUsed, VerifyError, example};
use super::verify_data_integrity;

fn simple() -> Value {
    serde_json::from_str(&example("simple.json")).unwrap()
}

#[test]
fn one_edtech_signed_example_verifies() {
    let verified = verify_data_integrity(&simple()).expect("1EdTech's simple.json verifies");
    assert_eq!(verified.issuer_id, "https://example.com/issuers/876543");
    let ProofUsed::DataIntegrity { keys } = verified.proof else {
        panic!("a Data Integrity proof");
    };
    assert_eq!(keys.len(), 1);
    assert_eq!(
        keys[0].verification_method,
        "https://example.com/issuers/876543#z6MkjZRZv3aez3r18pB1RBFJR1kwUVJ5jHt92JmQwXbd5hwi"
    );
}

#[test]
fn the_signature_covers_meaning_not_json_spelling() {
    // A one-element array and its element are the same JSON-LD: the canonical form, and so the
    // signature, does not change.
    let mut credential = simple();
    credential["issuer"]["type"] = json!("Profile");
    assert!(verify_data_integrity(&credential).is_ok());
}

#[test]
fn a_changed_achievement_name_fails() {
    let mut credential = simple();
    credential["credentialSubject"]["achievement"]["name"] = json!("Leadership");
    assert!(matches!(
        verify_data_integrity(&credential),
        Err(VerifyError::InvalidSignature)
    ));
}

#[test]
fn a_changed_proof_option_fails() {
    let mut credential = simple();
    credential["proof"][0]["created"] = json!("2010-01-02T19:23:24Z");
    assert!(matches!(
        verify_data_integrity(&credential),
        Err(VerifyError::InvalidSignature)
    ));
}

#[test]
fn one_character_of_the_proof_value_changed_fails() {
    let mut credential = simple();
    let value = credential["proof"][0]["proofValue"].as_str().unwrap();
    let changed = format!(
        "{}{}",
        &value[..10],
        if &value[10..11] == "A" { "B" } else { "A" }
    ) + &value[11..];
    credential["proof"][0]["proofValue"] = json!(changed);
    assert!(matches!(
        verify_data_integrity(&credential),
        Err(VerifyError::InvalidSignature)
    ));
    credential["proof"][0]["proofValue"] = json!("not multibase");
    assert!(matches!(
        verify_data_integrity(&credential),
        Err(VerifyError::BadProofValue)
    ));
}

#[test]
fn a_context_that_is_not_compiled_in_is_refused() {
    let mut credential = simple();
    credential["@context"].as_array_mut().unwrap().push(json!(
        "https://purl.imsglobal.org/spec/ob/v3p0/extensions.json"
    ));
    match verify_data_integrity(&credential) {
        Err(VerifyError::ContextNotLocal(url)) => assert!(url.ends_with("extensions.json")),
        other => panic!("expected ContextNotLocal, got {other:?}"),
    }
}

#[test]
fn a_key_outside_the_issuer_is_refused() {
    let mut credential = simple();
    credential["proof"][0]["verificationMethod"] =
        json!("https://attacker.example/keys#z6MkjZRZv3aez3r18pB1RBFJR1kwUVJ5jHt92JmQwXbd5hwi");
    assert!(matches!(
        verify_data_integrity(&credential),
        Err(VerifyError::ForeignVerificationMethod { .. })
    ));
    credential["proof"][0]["verificationMethod"] =
        json!("https://example.com/issuers/876543#key-1");
    assert!(matches!(
        verify_data_integrity(&credential),
        Err(VerifyError::BadVerificationMethod(_))
    ));
}

#[test]
fn only_eddsa_rdfc_2022_data_integrity_proofs_are_accepted() {
    let mut credential = simple();
    credential["proof"][0]["cryptosuite"] = json!("ecdsa-rdfc-2019");
    assert!(matches!(
        verify_data_integrity(&credential),
        Err(VerifyError::UnsupportedProof { .. })
    ));
    let mut credential = simple();
    credential["proof"][0]["proofPurpose"] = json!("authentication");
    assert!(matches!(
        verify_data_integrity(&credential),
        Err(VerifyError::WrongProofPurpose(_))
    ));
    let mut credential = simple();
    credential.as_object_mut().unwrap().remove("proof");
    assert!(matches!(
        verify_data_integrity(&credential),
        Err(VerifyError::NoProof)
    ));
}
