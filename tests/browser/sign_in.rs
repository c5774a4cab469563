//! Signing in with the university's identity provider, in the browser.

use crate::driver::Browser;
use crate::support::idp::{CLIENT_ID, Idp};
use crate::support::server::TestServer;
use fantoccini::Locator;
use serde_json::json;

/// Serves the console of `server`'s state with `idp` as its identity provider; the base URL.
pub async fn console_with_idp(server: &TestServer, idp: &Idp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let provider = cim::console::oidc::Provider::discover(
        cim::console::oidc::OidcSettings {
            issuer: idp.issuer.clone(),
            client_id: CLIENT_ID.into(),
            client_secret: None,
            redirect_url: format!("{base}/console/callback"),
            scopes: vec!["profile".into(), "email".into()],
        },
        cim::http::auth::claims::ClaimMapping::default(),
    )
    .await
    .unwrap();
    let settings = cim::console::ConsoleSettings {
        oidc: Some((std::sync::Arc::new(provider), "Test University".into())),
        dev_signin: false,
    };
    let app = cim::console::router(server.state.clone(), settings);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test]
async fn a_coordinator_signs_in_at_the_identity_provider() {
    let server = TestServer::start().await;
    let idp = Idp::start(json!({"sub": "coord-anna", "groups": ["cim-coordinator"],
                                "given_name": "Anna", "family_name": "Lind"}))
    .await;
    let base = console_with_idp(&server, &idp).await;
    let browser = Browser::start(1280, 900).await;
    let c = &browser.client;
    c.goto(&format!("{base}/console/programs")).await.unwrap();
    // Not signed in: the sign-in page, offering the provider and no development sign-in.
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/console/signin")
    );
    let source = c.source().await.unwrap();
    assert!(
        !source.contains("dev-heading"),
        "no development sign-in without the secret"
    );
    assert!(
        browser.axe_violations().await.is_empty(),
        "{:?}",
        browser.axe_violations().await
    );
    c.find(Locator::Css("a.button[href^='/console/signin/oidc']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Through the provider and back to the page asked for, signed in with a cookie.
    let landed = c.current_url().await.unwrap();
    assert_eq!(landed.path(), "/console/programs", "landed at {landed}");
    let header = c
        .find(Locator::Css("header .who"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(header.contains("Anna Lind"), "{header}");
    assert_eq!(
        idp.challenges().len(),
        1,
        "the browser's sign-in sent a PKCE challenge"
    );
    // Signing out ends it.
    c.find(Locator::Css("form.signout button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.goto(&format!("{base}/console/programs")).await.unwrap();
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/console/signin")
    );
    browser.close().await;
    server.stop().await;
}
