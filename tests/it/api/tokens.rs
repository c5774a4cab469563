//! Bad tokens, tokens of an identity provider, revoked access and `cim token`.

use super::*;

#[tokio::test]
async fn bad_tokens_are_401_with_a_bearer_challenge() {
    let app = spawn_app().await;
    let (p, student) = app.open(app.a).await;
    let uid = {
        let v = app.get(&format!("/portfolios/{p}"), &student).await;
        v.body["view"]["student_uid"].as_str().unwrap().to_owned()
    };
    let now = Utc::now().timestamp();
    let claims = |iss: &str, aud: &str, exp: i64, nbf: i64| json!({"sub": uid, "groups": ["cim-student"], "iss": iss, "aud": aud, "exp": exp, "nbf": nbf, "iat": now});
    let sign = |claims: Value, secret: &str| {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let good = claims(DEFAULT_ISSUER, DEFAULT_AUDIENCE, now + 600, now);
    let payload = sign(good.clone(), SECRET)
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    let cases = [
        (
            "expired",
            sign(
                claims(DEFAULT_ISSUER, DEFAULT_AUDIENCE, now - 600, now - 1200),
                SECRET,
            ),
            "token_expired",
        ),
        (
            "not yet valid",
            sign(
                claims(DEFAULT_ISSUER, DEFAULT_AUDIENCE, now + 1200, now + 600),
                SECRET,
            ),
            "token_not_yet_valid",
        ),
        (
            "wrong issuer",
            sign(claims("evil", DEFAULT_AUDIENCE, now + 600, now), SECRET),
            "token_issuer",
        ),
        (
            "wrong audience",
            sign(claims(DEFAULT_ISSUER, "other", now + 600, now), SECRET),
            "token_audience",
        ),
        (
            "bad signature",
            sign(good.clone(), "not-the-secret-but-long-enough-0123456789"),
            "token_signature",
        ),
        (
            "alg none",
            format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}."),
            "token_algorithm",
        ),
        ("garbage", "abc.def".to_owned(), "token_malformed"),
    ];
    // The well-signed token works, so each refusal below is about the one thing changed.
    assert_eq!(
        app.get(&format!("/portfolios/{p}"), &sign(good, SECRET))
            .await
            .status,
        StatusCode::OK
    );
    for (what, bad, code) in cases {
        let answer = app.get(&format!("/portfolios/{p}"), &bad).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(answer.code(), code, "{what}");
        assert!(answer.is_problem(), "{what}");
        let challenge = answer.headers["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{what}");
    }
    let missing = app
        .send(app.http.get(format!("{}/portfolios/{p}", app.base)))
        .await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::UNAUTHORIZED, "token_missing")
    );
    assert!(missing.headers.contains_key("www-authenticate"));
    app.db.drop().await;
}

/// A throwaway P-256 key made for this test only, and its public half as an identity provider
/// would publish it.
const ES256_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgH6c9b8vE/iIoyTFy
L9Z0z9SSV2ChK90K6Zf0ywRgTpuhRANCAATbQJOEo/OWIH3V3bupv2I9O1l0sVvC
cOSPkRHtsUr7x3OBZhHY14no1Vd2Y5OOzenPIXl7d8gU6kdRbOcCQvN/
-----END PRIVATE KEY-----
";

const ES256_JWKS: &str = r#"{"keys": [{"kty": "EC", "crv": "P-256", "kid": "test-es256", "alg": "ES256", "use": "sig",
  "x": "20CThKPzliB91d27qb9iPTtZdLFbwnDkj5ER7bFK-8c", "y": "c4FmEdjXiejVV3Zjk47N6c8heXt3yBTqR1Fs5wJC838"}]}"#;

#[tokio::test]
async fn unassigning_a_coordinator_revokes_their_access_at_once_with_a_still_valid_token() {
    let app = spawn_app().await;
    let anna = token(Role::Coordinator, ANNA);
    let admin = token(Role::Admin, "admin-1");
    let (p, _) = app.open(app.a).await;
    let portfolio = format!("/portfolios/{p}");
    let catalog = |program: ProgramId| format!("/programs/{program}/catalog");
    let item = |id: &str| json!({"item": id, "name": "A new activity"});
    assert_eq!(app.get(&portfolio, &anna).await.status, StatusCode::OK);
    app.ok(&catalog(app.a), &anna, item("before-unassign"))
        .await;

    let unassign = format!("/programs/{}/coordinators/unassign", app.a);
    app.ok(&unassign, &admin, json!({"staff": ANNA})).await;
    // The same token, still valid: the program's stream no longer assigns her.
    assert_eq!(
        app.get(&portfolio, &anna).await.status,
        StatusCode::NOT_FOUND
    );
    let refused = app
        .post(&catalog(app.a), &anna, item("after-unassign"))
        .await;
    assert_eq!(
        (refused.status, refused.is_problem()),
        (StatusCode::FORBIDDEN, true)
    );

    // Assigned again, the same token works again; a token whose program groups name another
    // program gives nothing here (and nothing there: that stream does not assign her).
    app.ok(
        &format!("/programs/{}/coordinators", app.a),
        &admin,
        json!({"staff": ANNA}),
    )
    .await;
    assert_eq!(app.get(&portfolio, &anna).await.status, StatusCode::OK);
    let program_b = app.get(&format!("/programs/{}", app.b), &admin).await;
    let claims_b = cim::http::auth::dev_token(&cim::http::auth::DevToken {
        secret: support::auth::SECRET,
        issuer: cim::http::auth::DEFAULT_ISSUER,
        audience: cim::http::auth::DEFAULT_AUDIENCE,
        role: Role::Coordinator,
        subject: ANNA,
        programs: vec![program_b.body["code"].as_str().unwrap().to_owned()],
        now: chrono::Utc::now(),
        ttl: chrono::TimeDelta::minutes(10),
        profile: Default::default(),
    })
    .unwrap();
    assert_eq!(
        app.get(&portfolio, &claims_b).await.status,
        StatusCode::NOT_FOUND
    );
    let other = app.post(&catalog(app.b), &claims_b, item("not-hers")).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn tokens_of_an_identity_provider_are_checked_against_its_jwks() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, ES256_JWKS).unwrap();
    let verifier = Verifier::from_settings(&AuthSettings {
        jwks_file: Some(jwks),
        issuer: "https://idp.example.se".into(),
        audience: DEFAULT_AUDIENCE.into(),
        ..AuthSettings::default()
    })
    .unwrap();
    let app = spawn_app_with(verifier).await;
    let now = Utc::now().timestamp();
    let claims = json!({"sub": "admin-7", "groups": ["cim-admin"], "iss": "https://idp.example.se",
                        "aud": DEFAULT_AUDIENCE, "exp": now + 300, "nbf": now, "iat": now});
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("test-es256".into());
    let key = EncodingKey::from_ec_pem(ES256_PRIVATE_PEM.as_bytes()).unwrap();
    let es256 = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    let path = format!("/programs/{}", app.a);
    assert_eq!(app.get(&path, &es256).await.status, StatusCode::OK);
    // An HS256 token (here signed with the public JWKS as the "secret", the classic algorithm
    // confusion) is refused: this server has no HS256 key.
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(ES256_JWKS.as_bytes()),
    )
    .unwrap();
    let answer = app.get(&path, &confused).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    // A development token is refused too: no development secret is configured.
    let answer = app.get(&path, &token(Role::Admin, "admin-1")).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    app.db.drop().await;
}

#[test]
fn cim_token_signs_with_the_dev_secret_and_refuses_without_one() {
    let run = |secret: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cim"));
        command
            .args(["token", "--role", "coordinator", "--subject", ANNA])
            .args(["--program", "dental"])
            .env_remove("CIM_JWT_DEV_SECRET")
            .env_remove("CIM_JWT_ISSUER")
            .env_remove("CIM_JWT_AUDIENCE");
        if let Some(secret) = secret {
            command.env("CIM_JWT_DEV_SECRET", secret);
        }
        command.output().unwrap()
    };
    let refused = run(None);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("CIM_JWT_DEV_SECRET"), "{message}");
    assert!(refused.stdout.is_empty());

    let signed = run(Some(SECRET));
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let token = String::from_utf8(signed.stdout).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let verifier = dev_verifier();
    let claims: Value = runtime.block_on(verifier.verify(token.trim())).unwrap();
    // The shape an identity provider issues: `sub` and group names, read through the mapping.
    assert_eq!(
        claims["groups"],
        json!(["cim-coordinator", "cim-program-dental"])
    );
    let identity = verifier.claims().identity(&claims).unwrap();
    assert_eq!(
        (identity.role, identity.subject.as_str()),
        (Role::Coordinator, ANNA)
    );
    assert_eq!(
        identity.program_codes,
        Some(BTreeSet::from(["dental".to_owned()]))
    );
}
