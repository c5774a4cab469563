use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, encode};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use serde_json::{Value, json};

use super::super::{BakedCredential, ProofUsed, VerifyError, credential_from_svg, example};
use super::{KeySource, verify_jwt};

/// The VC-JWT baked into 1EdTech's `simple-jwt.svg`.
fn example_jwt() -> String {
    let svg = example("simple-jwt.svg");
    match credential_from_svg(&svg) {
        Some(BakedCredential::Jwt(jwt)) => jwt.to_owned(),
        other => panic!("expected a JWT in the badge, got {other:?}"),
    }
}

#[test]
fn one_edtech_baked_jwt_example_verifies_with_its_header_key() {
    let verified =
        verify_jwt(&example_jwt(), &KeySource::HeaderJwk).expect("simple-jwt.svg verifies");
    assert_eq!(verified.issuer_id, "https://1edtech.edu/issuers/565049");
    assert_eq!(verified.credential["name"], "Teamwork Badge");
    assert!(
        verified.credential.get("iss").is_none(),
        "claims are not credential fields"
    );
    let ProofUsed::VcJwt {
        algorithm,
        header_jwk,
    } = verified.proof
    else {
        panic!("a VC-JWT proof");
    };
    assert_eq!(algorithm, Algorithm::RS256);
    assert!(
        header_jwk.is_some(),
        "the key came from the header, and the result says so"
    );
}

#[test]
fn the_example_verifies_with_that_key_supplied_as_trusted() {
    let jwt = example_jwt();
    let jwk = jsonwebtoken::decode_header(&jwt).unwrap().jwk.unwrap();
    let trusted = KeySource::Trusted(DecodingKey::from_jwk(&jwk).unwrap());
    let verified = verify_jwt(&jwt, &trusted).unwrap();
    assert!(matches!(
        verified.proof,
        ProofUsed::VcJwt {
            header_jwk: None,
            ..
        }
    ));
}

#[test]
fn a_changed_payload_or_signature_fails() {
    let jwt = example_jwt();
    let parts: Vec<&str> = jwt.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["credentialSubject"]["achievement"]["name"] = json!("Leadership");
    let forged_payload = URL_SAFE_NO_PAD.encode(payload.to_string());
    let forged = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
    assert!(matches!(
        verify_jwt(&forged, &KeySource::HeaderJwk),
        Err(VerifyError::InvalidSignature)
    ));

    let signature = parts[2];
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let forged = format!("{}.{}.{flipped}{}", parts[0], parts[1], &signature[1..]);
    assert!(matches!(
        verify_jwt(&forged, &KeySource::HeaderJwk),
        Err(VerifyError::InvalidSignature)
    ));
}

#[test]
fn a_trusted_key_that_did_not_sign_fails() {
    let (_, other) = es256_keys();
    assert!(matches!(
        verify_jwt(&example_jwt(), &KeySource::Trusted(other)),
        Err(VerifyError::UnusableKey(_) | VerifyError::InvalidSignature)
    ));
}

/// A P-256 key pair made for the test: the claim rules need JWTs we sign ourselves.
fn es256_keys() -> (EncodingKey, DecodingKey) {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let private = key.private_key_to_pem_pkcs8().unwrap();
    let public = key.public_key_to_pem().unwrap();
    (
        EncodingKey::from_ec_pem(&private).unwrap(),
        DecodingKey::from_ec_pem(&public).unwrap(),
    )
}

/// 1EdTech's credential (without its proof) with the claims OB 3.0 asks for.
fn ob3_payload() -> Value {
    let mut payload: Value = serde_json::from_str(&example("simple.json")).unwrap();
    let object = payload.as_object_mut().unwrap();
    object.remove("proof");
    object.insert("iss".into(), json!("https://example.com/issuers/876543"));
    object.insert("jti".into(), json!("http://example.com/credentials/3527"));
    object.insert("nbf".into(), json!(1_262_304_000));
    object.insert(
        "sub".into(),
        json!("did:example:ebfeb1f712ebc6f1c276e12ec21"),
    );
    payload
}

fn signed(payload: &Value) -> (String, KeySource) {
    let (encoding, decoding) = es256_keys();
    let jwt = encode(&Header::new(Algorithm::ES256), payload, &encoding).unwrap();
    (jwt, KeySource::Trusted(decoding))
}

#[test]
fn a_jwt_whose_claims_match_the_credential_verifies() {
    let (jwt, keys) = signed(&ob3_payload());
    let verified = verify_jwt(&jwt, &keys).unwrap();
    assert_eq!(verified.issuer_id, "https://example.com/issuers/876543");
}

#[test]
fn each_claim_must_say_what_the_credential_says() {
    for (claim, value) in [
        ("jti", json!("http://example.com/credentials/other")),
        ("iss", json!("https://attacker.example/issuer")),
        ("nbf", json!(1_262_304_001)),
        ("sub", json!("did:example:someone-else")),
        ("exp", json!(4_102_444_800_i64)),
    ] {
        let mut payload = ob3_payload();
        payload[claim] = value;
        let (jwt, keys) = signed(&payload);
        match verify_jwt(&jwt, &keys) {
            Err(VerifyError::ClaimMismatch { claim: found, .. }) => assert_eq!(found, claim),
            other => panic!("{claim}: expected a mismatch, got {other:?}"),
        }
    }
    let mut payload = ob3_payload();
    payload.as_object_mut().unwrap().remove("jti");
    let (jwt, keys) = signed(&payload);
    assert!(matches!(
        verify_jwt(&jwt, &keys),
        Err(VerifyError::MissingClaim("jti"))
    ));
}

#[test]
fn validity_is_read_from_the_credential() {
    let mut payload = ob3_payload();
    payload["validUntil"] = json!("2011-01-01T00:00:00Z");
    payload["exp"] = json!(1_293_840_000);
    let (jwt, keys) = signed(&payload);
    assert!(matches!(
        verify_jwt(&jwt, &keys),
        Err(VerifyError::Expired(_))
    ));
}

#[test]
fn the_vc_1_1_form_with_the_credential_in_a_vc_claim_is_accepted() {
    let mut vc = ob3_payload();
    for claim in ["iss", "jti", "nbf", "sub", "id", "validFrom"] {
        vc.as_object_mut().unwrap().remove(claim);
    }
    let payload = json!({
        "iss": "https://example.com/issuers/876543",
        "jti": "http://example.com/credentials/3527",
        "nbf": 1_262_304_000,
        "sub": "did:example:ebfeb1f712ebc6f1c276e12ec21",
        "vc": vc,
    });
    let (jwt, keys) = signed(&payload);
    let verified = verify_jwt(&jwt, &keys).unwrap();
    assert_eq!(
        verified.credential["id"],
        "http://example.com/credentials/3527"
    );
    assert_eq!(verified.credential["issuanceDate"], "2010-01-01T00:00:00Z");
}

#[test]
fn only_the_accepted_algorithms_pass() {
    let hs256 = encode(
        &Header::new(Algorithm::HS256),
        &ob3_payload(),
        &EncodingKey::from_secret(b"shared secret"),
    )
    .unwrap();
    let keys = KeySource::Trusted(DecodingKey::from_secret(b"shared secret"));
    assert!(matches!(
        verify_jwt(&hs256, &keys),
        Err(VerifyError::AlgorithmNotAccepted(Algorithm::HS256))
    ));
    assert!(matches!(
        verify_jwt("not a jwt", &KeySource::HeaderJwk),
        Err(VerifyError::MalformedJwt(_))
    ));
}
