//! The limit on failed authentications per client address (`src/http/auth/limit.rs`), over real TCP
//! connections from distinct loopback addresses: `cim serve` as a child process with its settings
//! from the environment, and the router in process where a test needs a setting of its own.

use crate::support;

use cim::http::auth::{AuthLimitSettings, Role};
use cim::http::{AppState, router};
use reqwest::StatusCode;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use support::auth::{SECRET, dev_verifier, token};
use support::process::ServeProcess;

/// A token signed with another secret: refused as `token_signature`.
fn forged() -> String {
    cim::http::auth::dev_token(&cim::http::auth::DevToken {
        secret: "not-the-secret-of-the-server-0123456789",
        issuer: cim::http::auth::DEFAULT_ISSUER,
        audience: cim::http::auth::DEFAULT_AUDIENCE,
        role: Role::Student,
        subject: &uuid::Uuid::now_v7().to_string(),
        programs: vec![],
        now: chrono::Utc::now(),
        ttl: chrono::TimeDelta::minutes(10),
        profile: Default::default(),
    })
    .unwrap()
}

fn student() -> String {
    token(Role::Student, &uuid::Uuid::now_v7().to_string())
}

/// A client whose connections come from `address` (any 127.x.y.z reaches the loopback server).
fn client_from(address: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(address.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// `GET /programs/{id}` of a program that does not exist: any signed-in caller is told 404
/// `program_not_found`, everyone else 401 or 429. It needs no read model, so it works in process too.
async fn probe(
    client: &reqwest::Client,
    base: &str,
    bearer: Option<&str>,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut request = client.get(format!("{base}/programs/{}", uuid::Uuid::nil()));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    if let Some(forwarded_for) = forwarded_for {
        request = request.header("x-forwarded-for", forwarded_for);
    }
    request.send().await.unwrap()
}

/// Asserts that the caller was signed in.
async fn assert_let_in(response: reqwest::Response, what: &str) {
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "{what}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "program_not_found", "{what}");
}

/// Asserts the 429 problem and returns its `Retry-After` in seconds.
async fn assert_limited(response: reqwest::Response, what: &str) -> u64 {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{what}");
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "{what}"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "too_many_authentication_failures", "{what}");
    assert_eq!(body["status"], 429, "{what}");
    assert!(
        body["detail"].as_str().unwrap().contains("try again"),
        "{what}: {body}"
    );
    retry_after
}

/// The window of the first test: long enough that its checks while limited finish within it on a
/// slow, shared machine, short enough to wait for once.
const WINDOW: Duration = Duration::from_secs(6);

#[tokio::test]
async fn an_address_that_fails_too_often_is_refused_until_its_window_ends_and_no_one_else_is() {
    let db = support::fresh().await;
    let serve = ServeProcess::builder()
        .database(&db.url)
        .env("CIM_JWT_DEV_SECRET", SECRET)
        .env("CIM_AUTH_FAILURE_LIMIT", "5")
        .env(
            "CIM_AUTH_FAILURE_WINDOW_SECONDS",
            WINDOW.as_secs().to_string(),
        )
        .env("CIM_LOG", "info")
        .args(["--export-scheduler", "false"])
        .capture_logs()
        .start();
    let base = serve.base.clone();
    let attacker = client_from("127.0.0.3");
    let neighbour = client_from("127.0.0.2");
    let valid = student();

    // Requests without a token are refused but not counted: a web client that calls before its
    // user has signed in must not use up the budget of its address.
    for i in 0..12 {
        let anonymous = probe(&attacker, &base, None, None).await;
        assert_eq!(
            anonymous.status(),
            StatusCode::UNAUTHORIZED,
            "anonymous {i}"
        );
        let body: serde_json::Value = anonymous.json().await.unwrap();
        assert_eq!(body["code"], "token_missing");
    }
    assert_let_in(
        probe(&attacker, &base, Some(&valid), None).await,
        "after requests without a token",
    )
    .await;

    // Five failures are answered as usual, each with its own reason. A different X-Forwarded-For
    // on each changes nothing: no proxy is trusted, so the header is not believed. The window
    // starts when the server sees the first of them: between `first_sent` and `first_answered`.
    let first_sent = Instant::now();
    let mut first_answered = None;
    for i in 0..5 {
        let forwarded = format!("198.51.100.{i}");
        let refused = probe(&attacker, &base, Some(&forged()), Some(&forwarded)).await;
        first_answered.get_or_insert_with(Instant::now);
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "failure {i}");
    }
    let retry_after = assert_limited(
        probe(&attacker, &base, Some(&forged()), Some("198.51.100.99")).await,
        "the sixth bad token",
    )
    .await;
    assert!(
        (1..=WINDOW.as_secs()).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    // While limited, a valid token from that address is refused as well, without being checked.
    assert_limited(
        probe(&attacker, &base, Some(&valid), None).await,
        "a valid token from the limited address",
    )
    .await;
    // A request without credentials still gets its 401: there is nothing to check.
    assert_eq!(
        probe(&attacker, &base, None, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The window cannot have ended before `first_sent + WINDOW`: the refusals above were in it.
    assert!(
        first_sent.elapsed() < WINDOW,
        "the checks while limited took longer than the window ({:?}); the test proves nothing",
        first_sent.elapsed()
    );

    // Another address is not affected, and has a budget of its own.
    assert_let_in(
        probe(&neighbour, &base, Some(&valid), None).await,
        "another address",
    )
    .await;
    assert_eq!(
        probe(&neighbour, &base, Some(&forged()), None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // The metrics count failures and refusals, never an address.
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("cim_auth_rate_limited_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cim_auth_failures_total{code=\"token_signature\"} 6"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cim_auth_failures_total{code=\"token_missing\"} 13"),
        "{metrics}"
    );

    // Once the window that began with the first failure has passed, the address is let in again.
    let window_ends = first_answered.unwrap() + WINDOW + Duration::from_millis(200);
    tokio::time::sleep_until(window_ends.into()).await;
    assert_let_in(
        probe(&attacker, &base, Some(&valid), None).await,
        "after the window",
    )
    .await;

    // The log says that an address was limited, but not which.
    let logs = serve.logs();
    assert!(
        logs.contains("used up its budget of failed authentications"),
        "{logs}"
    );
    for address in ["127.0.0.3", "127.0.0.2", "198.51.100."] {
        assert!(!logs.contains(address), "the log names {address}:\n{logs}");
    }
    assert!(serve.terminate().success());
    db.drop().await;
}

#[tokio::test]
async fn zero_turns_the_limit_off() {
    let db = support::fresh().await;
    let serve = ServeProcess::builder()
        .database(&db.url)
        .env("CIM_JWT_DEV_SECRET", SECRET)
        .env("CIM_AUTH_FAILURE_LIMIT", "0")
        .args(["--export-scheduler", "false"])
        .start();
    let client = client_from("127.0.0.4");
    for i in 0..60 {
        let refused = probe(&client, &serve.base, Some(&forged()), None).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "failure {i}");
    }
    assert_let_in(
        probe(&client, &serve.base, Some(&student()), None).await,
        "with the limit off",
    )
    .await;
    assert!(serve.terminate().success());
    db.drop().await;
}

/// Serves the router in process, with or without connect info.
async fn serve_in_process(state: AppState, connect_info: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(state);
    tokio::spawn(async move {
        if connect_info {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap()
        } else {
            axum::serve(listener, app).await.unwrap()
        }
    });
    base
}

fn settings(max_failures: u32, trusted_proxies: &[&str]) -> AuthLimitSettings {
    AuthLimitSettings {
        max_failures,
        window: Duration::from_secs(60),
        trusted_proxies: trusted_proxies.iter().map(|p| p.parse().unwrap()).collect(),
        ..AuthLimitSettings::default()
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_the_client() {
    let db = support::fresh().await;
    let state = AppState::new(db.pool.clone())
        .with_verifier(dev_verifier())
        .with_auth_limit(settings(3, &["127.0.0.5"]));
    let base = serve_in_process(state, true).await;
    let proxy = client_from("127.0.0.5");
    // The proxy appends the address it saw; what the client wrote before it is not believed.
    let attacker = "203.0.113.1, 198.51.100.7";
    for _ in 0..3 {
        let refused = probe(&proxy, &base, Some(&forged()), Some(attacker)).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    }
    assert_limited(
        probe(
            &proxy,
            &base,
            Some(&student()),
            Some("1.2.3.4, 198.51.100.7"),
        )
        .await,
        "the forwarded attacker",
    )
    .await;
    // Others behind the same proxy are let in.
    assert_let_in(
        probe(&proxy, &base, Some(&student()), Some("203.0.113.1")).await,
        "another client behind the proxy",
    )
    .await;
    db.drop().await;
}

#[tokio::test]
async fn without_connect_info_every_client_shares_one_budget_rather_than_none() {
    let db = support::fresh().await;
    let state = AppState::new(db.pool.clone())
        .with_verifier(dev_verifier())
        .with_auth_limit(settings(2, &[]));
    let base = serve_in_process(state, false).await;
    let (one, other) = (client_from("127.0.0.6"), client_from("127.0.0.7"));
    for _ in 0..2 {
        let refused = probe(&one, &base, Some(&forged()), None).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    }
    assert_limited(
        probe(&other, &base, Some(&student()), None).await,
        "a client the server cannot tell apart",
    )
    .await;
    db.drop().await;
}
