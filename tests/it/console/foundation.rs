//! What every console page and form shares: a session to see anything, the CSRF token to change
//! anything, the security headers, the language, and signing in at the identity provider.

use crate::support::console::sign_in;
use crate::support::idp::{CLIENT_ID, Idp};
use crate::support::server::TestServer;
use axum::http::Method;
use cim::http::auth::Role;
use serde_json::json;

/// The console routes anyone may reach without a session.
const PUBLIC: [&str; 7] = [
    "/console",
    "/console/signin",
    "/console/signin/dev",
    "/console/signin/oidc",
    "/console/callback",
    "/console/language",
    "/console/assets/{name}",
];

/// A concrete path for a route template (any id will do: the session check comes first).
fn concrete(template: &str) -> String {
    let mut path = String::new();
    for part in template.split('/').filter(|p| !p.is_empty()) {
        path.push('/');
        if part.starts_with('{') {
            path.push_str("00000000-0000-7000-8000-000000000000");
        } else {
            path.push_str(part);
        }
    }
    path
}

fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn every_page_needs_a_session_and_every_form_its_token() {
    let server = TestServer::start().await;
    let http = plain_client();
    let admin = sign_in(&server.base, &server.db.pool, Role::Admin, "admin-1", None).await;
    for (method, template) in cim::console::route_list() {
        if PUBLIC.contains(&template) {
            continue;
        }
        let path = concrete(template);
        let url = format!("{}{path}", server.base);
        if method == Method::GET {
            let answer = http.get(&url).send().await.unwrap();
            assert_eq!(answer.status(), 303, "GET {template} without a session");
            let to = answer.headers()["location"].to_str().unwrap();
            assert!(
                to.starts_with("/console/signin?next="),
                "GET {template} went to {to}"
            );
        } else {
            // Signed in, but without the token: refused before anything is read or done.
            let refused = admin.post_raw(&path, &[("x", "1")]).await;
            assert_eq!(refused.status, 403, "POST {template} without _csrf");
            let wrong = admin.post_raw(&path, &[("_csrf", "not-the-token")]).await;
            assert_eq!(wrong.status, 403, "POST {template} with another token");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn a_form_from_another_site_is_refused_even_with_the_token() {
    let server = TestServer::start().await;
    let person = sign_in(&server.base, &server.db.pool, Role::Admin, "admin-1", None).await;
    let page = person.get("/console/signin").await;
    assert_eq!(page.status, 200);
    // The sign-out form's token, sent from another origin.
    let admin_page = person.get("/console/admin/programs").await;
    let token = admin_page.csrf();
    let answer = plain_client()
        .post(format!("{}/console/signout", server.base))
        .header("cookie", &person.cookie)
        .header("origin", "https://evil.example")
        .form(&[("_csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 403);
    // From our own origin it signs out, and the session is gone.
    let out = person.post("/console/signout", &token, &[]).await;
    assert_eq!(out.status, 303);
    let after = person.get("/console/admin/programs").await;
    assert_eq!(after.status, 303, "the session ended with sign-out");
    server.stop().await;
}

#[tokio::test]
async fn pages_have_the_console_policy_and_speak_the_chosen_language() {
    let server = TestServer::start().await;
    let http = plain_client();
    let page = http
        .get(format!("{}/console/signin", server.base))
        .header("accept-language", "en-GB,en;q=0.9")
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    assert!(html.contains("<html lang=\"en\">"), "Accept-Language: en");
    assert!(html.contains("Development sign-in"));
    // No inline script or style anywhere on the page.
    assert!(!html.contains("<script>") && !html.contains("style="));
    // The switch remembers Swedish, which then wins over the header.
    let switched = http
        .get(format!(
            "{}/console/language?to=sv&back=/console/signin",
            server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(switched.headers()["location"], "/console/signin");
    let cookie = switched.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("cim_lang=sv;") && cookie.contains("SameSite=Lax"));
    let swedish = http
        .get(format!("{}/console/signin", server.base))
        .header("accept-language", "en")
        .header("cookie", "cim_lang=sv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        swedish.contains("<html lang=\"sv\">") && swedish.contains("Inloggning för utveckling")
    );
    // The switch never sends anyone off the console.
    let away = http
        .get(format!(
            "{}/console/language?to=en&back=https://evil.example/",
            server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(away.headers()["location"], "/console");
    server.stop().await;
}

#[tokio::test]
async fn the_development_sign_in_needs_the_browsers_own_token() {
    let server = TestServer::start().await;
    let http = plain_client();
    let page = http
        .get(format!("{}/console/signin", server.base))
        .send()
        .await
        .unwrap();
    let presession = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert!(presession.starts_with("cim_presession="));
    let token = presession.trim_start_matches("cim_presession=").to_owned();
    let form = [
        ("_csrf", token.as_str()),
        ("role", "admin"),
        ("subject", "admin-9"),
        ("next", "/console/admin/health"),
    ];
    // Another browser's token (login CSRF) is refused.
    let forged = http
        .post(format!("{}/console/signin/dev", server.base))
        .header(
            "cookie",
            "cim_presession=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let signed = http
        .post(format!("{}/console/signin/dev", server.base))
        .header("cookie", &presession)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    assert_eq!(signed.headers()["location"], "/console/admin/health");
    let cookie = signed.headers()["set-cookie"].to_str().unwrap();
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    // Only a hash of the cookie's secret is stored.
    let secret = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("cim_session=")
        .to_owned();
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM console_sessions WHERE encode(token_hash, 'escape') LIKE '%' || $1 || '%'",
    )
    .bind(&secret)
    .fetch_one(&server.db.pool)
    .await
    .unwrap();
    assert_eq!(stored, 0);
    // A subject the API would refuse (a student whose id is not a UID) starts no session.
    let bad = [
        ("_csrf", token.as_str()),
        ("role", "student"),
        ("subject", "not-a-uid"),
    ];
    let refused = http
        .post(format!("{}/console/signin/dev", server.base))
        .header("cookie", &presession)
        .form(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    server.stop().await;
}

#[tokio::test]
async fn signing_in_at_the_identity_provider_uses_pkce_and_a_state_once() {
    let server = TestServer::start().await;
    let idp = Idp::start(json!({"sub": "coord-anna", "groups": ["cim-coordinator"],
                                "given_name": "Anna", "family_name": "Lind"}))
    .await;
    let provider = cim::console::oidc::Provider::discover(
        cim::console::oidc::OidcSettings {
            issuer: idp.issuer.clone(),
            client_id: CLIENT_ID.into(),
            client_secret: None,
            redirect_url: format!("{}/console/callback", server.base),
            scopes: vec!["profile".into()],
        },
        cim::http::auth::claims::ClaimMapping::default(),
    )
    .await
    .unwrap();
    let pool = &server.db.pool;
    let browser = "browser-one-pre-session-token-0123456789";
    let to = provider
        .begin(pool, "/console/programs", browser)
        .await
        .unwrap();
    assert!(to.starts_with(&idp.issuer) && to.contains("code_challenge_method=S256"));
    // The browser's round trip at the provider.
    let at_idp = plain_client().get(&to).send().await.unwrap();
    let back = url::Url::parse(at_idp.headers()["location"].to_str().unwrap()).unwrap();
    let query: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
    // The callback link in another browser (login CSRF: an attacker's link) finishes nothing...
    let elsewhere = provider
        .finish(
            pool,
            &query["state"],
            &query["code"],
            "another-browser-token-0123456789",
        )
        .await;
    assert!(matches!(
        elsewhere,
        Err(cim::console::oidc::SignInError::UnknownState)
    ));
    // ...and leaves the sign-in to the browser that started it.
    let (identity, next) = provider
        .finish(pool, &query["state"], &query["code"], browser)
        .await
        .unwrap();
    assert_eq!(identity.subject, "coord-anna");
    assert_eq!(identity.role, Role::Coordinator);
    assert_eq!(identity.profile.given_name.as_deref(), Some("Anna"));
    assert_eq!(next, "/console/programs");
    assert_eq!(idp.challenges().len(), 1);
    // The same state again (a replayed callback) finishes nothing.
    let replay = provider
        .finish(pool, &query["state"], &query["code"], browser)
        .await;
    assert!(matches!(
        replay,
        Err(cim::console::oidc::SignInError::UnknownState)
    ));
    server.stop().await;
}

#[tokio::test]
async fn erasing_a_student_signs_them_out() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let (_, uid, _) =
        crate::support::http::open_portfolio(&http, &server.base, server.programs[0]).await;
    let student = sign_in(&server.base, &server.db.pool, Role::Student, &uid, None).await;
    let sessions = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM console_sessions WHERE subject = $1")
            .bind(&uid)
            .fetch_one(&server.db.pool)
            .await
            .unwrap()
    };
    assert_eq!(sessions().await, 1);
    let admin = crate::support::auth::token(Role::Admin, "admin-1");
    let erased = crate::support::http::post(
        &http,
        &server.base,
        &format!("/students/{uid}/erasure"),
        &admin,
        &json!({"reason": "GDPR request 2026-17"}),
    )
    .await;
    assert!(erased.status.is_success(), "{}", erased.body);
    assert_eq!(sessions().await, 0, "the erased student's session is gone");
    let page = student.get("/console/me").await;
    assert_eq!(page.status, 303, "the erased student is signed out");
    server.stop().await;
}
