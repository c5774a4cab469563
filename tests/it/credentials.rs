//! Open Badges credentials (`src/credential/`, `docs/credentials.md`): a certified student
//! downloads an OpenBadgeCredential (VC-JWT, EdDSA) with every field Open Badges 3.0 requires; an
//! independent implementation (Python's `cryptography`) verifies its signature with the key the
//! service publishes; our verifier says valid, then revoked once the certificate is revoked (and the
//! published status list has the bit set); the registrar sees the issue; after an erasure the
//! credential cannot be downloaded again but stays verifiable, and nothing personal is published.
//! The printable certificate is read back with poppler's `pdftotext`.

use crate::support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use cim::http::auth::Role;
use serde_json::{Value, json};
use support::auth::token;
use support::flow::{self, Api, Caller};
use support::server::{COORDINATORS, TestServer};

fn part(jwt: &str, i: usize) -> Value {
    let segment = jwt.split('.').nth(i).unwrap();
    serde_json::from_slice(&B64URL.decode(segment).unwrap()).unwrap()
}

async fn get_json(http: &reqwest::Client, url: String) -> Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

async fn verify(http: &reqwest::Client, base: &str, jwt: &str) -> Value {
    http.post(format!("{base}/verify"))
        .json(&json!({ "credential": jwt }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Verifies the JWS with Python's `cryptography` (an implementation that shares nothing with ours)
/// against the published JWK; returns what the script printed.
fn python_verifies(jwt: &str, jwk: &Value) -> String {
    let script = r#"
import base64, json, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
def b64(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
jwt, jwk = sys.argv[1], json.loads(sys.argv[2])
header, payload, signature = jwt.split(".")
assert json.loads(b64(header))["alg"] == "EdDSA"
Ed25519PublicKey.from_public_bytes(b64(jwk["x"])).verify(b64(signature), (header + "." + payload).encode())
print("signature valid")
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, jwt, &jwk.to_string()])
        .output()
        .expect("python3 runs (with the cryptography package: pip install cryptography)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn a_certified_student_carries_a_credential_that_verifies_until_revoked() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let base = server.base.clone();
    let api = Api::new(vec![base.clone()]);
    let coordinator = Caller::coordinator(COORDINATORS[0]);
    let certificate = flow::certify(&api, server.programs[0], &coordinator, 1)
        .await
        .unwrap();
    let portfolio: String = sqlx::query_scalar(
        "SELECT payload->>'portfolio_id' FROM events WHERE event_type = 'CertificateApproved'",
    )
    .fetch_one(&server.db.pool)
    .await
    .unwrap();
    let uid: String = sqlx::query_scalar("SELECT student_uid::text FROM rm_portfolios")
        .fetch_one(&server.db.pool)
        .await
        .unwrap();
    let student = Caller::student(&uid);

    // The student downloads it; a second download is the same credential, issued once.
    let url = format!("{base}/portfolios/{portfolio}/credential");
    let download = || http.get(&url).bearer_auth(&student.token).send();
    let first = download().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["content-type"], "application/vc+jwt");
    let jwt = first.text().await.unwrap();
    assert_eq!(download().await.unwrap().text().await.unwrap(), jwt);

    // Every field Open Badges 3.0 requires, and the VC-JWT claims that must agree with them.
    let header = part(&jwt, 0);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "JWT");
    let c = part(&jwt, 1);
    assert_eq!(
        c["@context"],
        json!([
            "https://www.w3.org/ns/credentials/v2",
            "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
        ])
    );
    assert_eq!(
        c["type"],
        json!(["VerifiableCredential", "OpenBadgeCredential"])
    );
    assert!(
        c["id"]
            .as_str()
            .unwrap()
            .starts_with("https://cim.uni.example/credentials/")
    );
    assert_eq!(c["issuer"]["id"], "https://cim.uni.example/issuer");
    assert_eq!(c["issuer"]["type"], json!(["Profile"]));
    assert_eq!(c["issuer"]["name"], "Example University");
    // The approval's date is Stockholm's (an hour or two ahead of UTC, so the dates differ late in
    // the UTC evening).
    let today = cim::domain::stockholm_date(chrono::Utc::now()).to_string();
    assert!(
        c["validFrom"].as_str().unwrap().starts_with(&today),
        "{}",
        c["validFrom"]
    );
    let subject = &c["credentialSubject"];
    assert_eq!(subject["type"], json!(["AchievementSubject"]));
    assert!(subject["id"].as_str().unwrap().starts_with("urn:uuid:"));
    let achievement = &subject["achievement"];
    assert_eq!(achievement["type"], json!(["Achievement"]));
    assert_eq!(achievement["name"], "Certificate of International Merits");
    assert!(
        achievement["id"]
            .as_str()
            .unwrap()
            .starts_with("https://cim.uni.example/achievements/cim/")
    );
    assert!(
        achievement["criteria"]["narrative"]
            .as_str()
            .unwrap()
            .contains("900-1100 words")
    );
    assert!(!achievement["description"].as_str().unwrap().is_empty());
    assert_eq!(
        c["evidence"].as_array().unwrap().len(),
        4,
        "three activities and the final reflection"
    );
    assert_eq!(c["credentialStatus"]["type"], "BitstringStatusListEntry");
    assert_eq!(c["iss"], c["issuer"]["id"]);
    assert_eq!(c["jti"], c["id"]);
    assert_eq!(c["sub"], subject["id"]);
    let name = subject["identifier"][1]["identityHash"].as_str().unwrap();
    assert_eq!(name, "Tolvan Tolvansson");

    // An independent implementation verifies the signature with the published key.
    let keys: Value = get_json(&http, format!("{base}/issuer/keys")).await;
    let jwk = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the header's key is published")
        .clone();
    assert_eq!(python_verifies(&jwt, &jwk).trim(), "signature valid");

    // Ours says valid; an altered credential is not authentic.
    let verdict = verify(&http, &base, &jwt).await;
    assert_eq!(verdict["status"], "valid", "{verdict}");
    let mut forged = c.clone();
    forged["credentialSubject"]["achievement"]["name"] = json!("Certificate of Everything");
    let parts: Vec<&str> = jwt.split('.').collect();
    let altered = format!(
        "{}.{}.{}",
        parts[0],
        B64URL.encode(forged.to_string()),
        parts[2]
    );
    let verdict = verify(&http, &base, &altered).await;
    assert_eq!(
        (verdict["status"].as_str(), verdict["reason"].as_str()),
        (Some("not_authentic"), Some("bad_signature"))
    );
    assert_ne!(python_verifies(&altered, &jwk).trim(), "signature valid");

    // The registrar sees the issue.
    let issued: Value = http
        .get(format!("{base}/certificates/{certificate}/credential"))
        .bearer_auth(token(Role::Registrar, "registrar-1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let credential_id = issued["credential_id"].as_str().unwrap().to_owned();
    assert!(c["id"].as_str().unwrap().ends_with(&credential_id));

    // The printable certificate, in English: its text read back by poppler names the student, the
    // program's activities and the verification link the QR code carries.
    let printed = http
        .get(format!(
            "{base}/portfolios/{portfolio}/certificate.pdf?lang=en"
        ))
        .bearer_auth(&student.token)
        .send()
        .await
        .unwrap();
    assert_eq!(printed.status(), 200);
    assert_eq!(printed.headers()["content-type"], "application/pdf");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("certificate.pdf");
    std::fs::write(&file, printed.bytes().await.unwrap()).unwrap();
    let text = std::process::Command::new("pdftotext")
        .args([file.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext runs (poppler-utils)");
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(text.contains("Tolvan Tolvansson"), "{text}");
    assert!(
        text.contains("Certificate of International Merits"),
        "{text}"
    );
    // The link may be wrapped across lines on the page.
    let joined: String = text.split_whitespace().collect();
    assert!(
        joined.contains(&format!(
            "https://cim.uni.example/credentials/{credential_id}"
        )),
        "{text}"
    );

    // Revoked: the verifier says so, the published list has the bit, the public page too.
    let revoke = http
        .post(format!("{base}/portfolios/{portfolio}/revocation"))
        .bearer_auth(&coordinator.token)
        .json(&json!({"reason": "The approval was made on a wrong basis."}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 200, "{}", revoke.text().await.unwrap());
    support::eventually("the revocation reaches the verifier", async || {
        verify(&http, &base, &jwt).await["status"] == "revoked"
    })
    .await;
    let list = http
        .get(format!("{base}/credentials/status/1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let list_claims = part(&list, 1);
    assert_eq!(list_claims["type"][1], "BitstringStatusListCredential");
    let index: usize = c["credentialStatus"]["statusListIndex"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let encoded = list_claims["credentialSubject"]["encodedList"]
        .as_str()
        .unwrap();
    assert_eq!(
        cim::credential::status::bit_is_set(encoded, index),
        Some(true)
    );
    assert_eq!(python_verifies(&list, &jwk).trim(), "signature valid");
    let page: Value = get_json(&http, format!("{base}/credentials/{credential_id}")).await;
    assert_eq!(page["status"], "revoked");
    let html = http
        .get(format!("{base}/credentials/{credential_id}"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Återkallat") && html.contains("Revoked"),
        "{html}"
    );

    // Erased: no new download, the held credential still verifies, and nothing public names them.
    let erased = http
        .post(format!("{base}/students/{uid}/erasure"))
        .bearer_auth(token(Role::Admin, "admin-1"))
        .json(&json!({"reason": "case 2026-201"}))
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), 200);
    let gone = download().await.unwrap();
    assert!(
        matches!(gone.status().as_u16(), 409 | 410),
        "{}",
        gone.status()
    );
    assert_eq!(verify(&http, &base, &jwt).await["status"], "revoked");
    let public = format!("{page}{}", verify(&http, &base, &jwt).await);
    for personal in ["Tolvan", "tolvan@", uid.as_str()] {
        assert!(!public.contains(personal), "{personal} in {public}");
    }
    server.stop().await;
}
