//! Tokens of an identity provider whose keys are published at a JWKS URL: a real HTTP server that the
//! test starts plays the provider, rotates its keys and goes down; the verifier is the production one.

use crate::support;
use crate::support::server::serve;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::Utc;
use cim::http::AppState;
use cim::http::auth::{AuthSettings, DEFAULT_AUDIENCE, JwksTiming, TokenError, Verifier};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ISSUER: &str = "https://idp.example.se";

/// A signing key of the provider: its private half and its published JWK.
struct ProviderKey {
    private: EncodingKey,
    public: Jwk,
}

impl ProviderKey {
    /// A fresh P-256 key with key id `kid`.
    fn new(kid: &str) -> Self {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        // PKCS#8, the form `EncodingKey::from_ec_pem` reads.
        let pem = PKey::from_ec_key(EcKey::generate(&group).unwrap())
            .unwrap()
            .private_key_to_pem_pkcs8()
            .unwrap();
        let private = EncodingKey::from_ec_pem(&pem).unwrap();
        let mut public = Jwk::from_encoding_key(&private, Algorithm::ES256).unwrap();
        public.common.key_id = Some(kid.to_owned());
        Self { private, public }
    }

    fn kid(&self) -> String {
        self.public.common.key_id.clone().unwrap()
    }

    /// An admin token signed with this key, naming it in `kid`.
    fn token(&self) -> String {
        let now = Utc::now().timestamp();
        let claims = json!({"sub": "admin-7", "groups": ["cim-admin"], "iss": ISSUER,
                            "aud": DEFAULT_AUDIENCE, "exp": now + 300, "nbf": now, "iat": now});
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid());
        jsonwebtoken::encode(&header, &claims, &self.private).unwrap()
    }
}

/// The provider's JWKS endpoint: what it publishes, whether it is up, how often it was asked.
#[derive(Clone, Default)]
struct Provider {
    published: Arc<Mutex<Vec<Jwk>>>,
    down: Arc<AtomicBool>,
    fetches: Arc<AtomicUsize>,
}

impl Provider {
    fn publish(&self, keys: &[&ProviderKey]) {
        *self.published.lock().unwrap() = keys.iter().map(|k| k.public.clone()).collect();
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

async fn jwks(State(provider): State<Provider>) -> axum::response::Response {
    provider.fetches.fetch_add(1, Ordering::SeqCst);
    if provider.down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response();
    }
    let set = JwkSet {
        keys: provider.published.lock().unwrap().clone(),
    };
    (
        [(header::CONTENT_TYPE, "application/jwk-set+json")],
        serde_json::to_string(&set).unwrap(),
    )
        .into_response()
}

/// Serves the provider on a free port; answers its JWKS URL.
async fn start_provider(provider: Provider) -> url::Url {
    let app = Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .with_state(provider);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/.well-known/jwks.json")
        .parse()
        .unwrap()
}

fn verifier(url: url::Url, timing: JwksTiming) -> Verifier {
    Verifier::from_settings(&AuthSettings {
        jwks_url: Some(url),
        jwks_timing: timing,
        issuer: ISSUER.into(),
        audience: DEFAULT_AUDIENCE.into(),
        ..AuthSettings::default()
    })
    .unwrap()
}

async fn check(verifier: &Verifier, token: &str) -> Result<String, TokenError> {
    verifier
        .verify::<serde_json::Value>(token)
        .await
        .and_then(|c| verifier.claims().identity(&c))
        .map(|identity| identity.subject)
}

#[tokio::test]
async fn a_rotated_key_is_fetched_when_a_token_names_it_and_an_outage_keeps_the_last_keys() {
    let provider = Provider::default();
    let url = start_provider(provider.clone()).await;
    let (first, second) = (ProviderKey::new("2026-a"), ProviderKey::new("2026-b"));
    provider.publish(&[&first]);
    let timing = JwksTiming {
        refresh_every: Duration::from_secs(3600),
        cool_down: Duration::ZERO,
    };
    let verifier = verifier(url, timing);
    assert_eq!(verifier.fetch_remote_keys().await.unwrap(), Some(1));
    assert_eq!(check(&verifier, &first.token()).await.unwrap(), "admin-7");
    assert_eq!(provider.fetches(), 1, "a known key needs no fetch");

    // The provider rotates: the first token naming the new key makes the set be fetched again.
    provider.publish(&[&second]);
    assert_eq!(check(&verifier, &second.token()).await.unwrap(), "admin-7");
    assert_eq!(provider.fetches(), 2);
    // The retired key is gone with the old set.
    assert_eq!(
        check(&verifier, &first.token()).await,
        Err(TokenError::Signature)
    );

    // The provider goes down: tokens of the keys we have still pass, unknown ones are refused.
    provider.down.store(true, Ordering::SeqCst);
    assert_eq!(check(&verifier, &second.token()).await.unwrap(), "admin-7");
    let third = ProviderKey::new("2026-c");
    assert_eq!(
        check(&verifier, &third.token()).await,
        Err(TokenError::Signature)
    );
    assert_eq!(check(&verifier, &second.token()).await.unwrap(), "admin-7");
}

#[tokio::test]
async fn made_up_key_ids_cannot_make_the_server_hammer_the_provider() {
    let provider = Provider::default();
    let url = start_provider(provider.clone()).await;
    let key = ProviderKey::new("only");
    provider.publish(&[&key]);
    let timing = JwksTiming {
        refresh_every: Duration::from_secs(3600),
        cool_down: Duration::from_secs(3600),
    };
    let verifier = verifier(url, timing);
    verifier.fetch_remote_keys().await.unwrap();
    for i in 0..20 {
        let stranger = ProviderKey::new(&format!("forged-{i}"));
        assert_eq!(
            check(&verifier, &stranger.token()).await,
            Err(TokenError::Signature)
        );
    }
    assert_eq!(
        provider.fetches(),
        1,
        "within the cool-down nothing is fetched"
    );
    assert_eq!(check(&verifier, &key.token()).await.unwrap(), "admin-7");
}

#[tokio::test]
async fn keys_older_than_the_refresh_interval_are_fetched_again() {
    let provider = Provider::default();
    let url = start_provider(provider.clone()).await;
    let key = ProviderKey::new("k1");
    provider.publish(&[&key]);
    let timing = JwksTiming {
        refresh_every: Duration::from_millis(200),
        cool_down: Duration::from_secs(3600),
    };
    let verifier = verifier(url, timing);
    verifier.fetch_remote_keys().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The provider dropped the key without a rotation we could see from a key id: only the
    // scheduled refresh finds out (the cool-down holds back a fetch for the unknown key id).
    provider.publish(&[&ProviderKey::new("k2")]);
    assert_eq!(
        check(&verifier, &key.token()).await,
        Err(TokenError::Signature)
    );
    assert_eq!(provider.fetches(), 2);
}

#[tokio::test]
async fn the_server_is_not_ready_until_the_provider_keys_arrive() {
    let db = support::fresh().await;
    let provider = Provider::default();
    provider.down.store(true, Ordering::SeqCst);
    let url = start_provider(provider.clone()).await;
    let key = ProviderKey::new("late");
    provider.publish(&[&key]);
    let timing = JwksTiming {
        refresh_every: Duration::from_secs(3600),
        cool_down: Duration::ZERO,
    };
    let verifier = verifier(url, timing);
    assert!(matches!(
        verifier.fetch_remote_keys().await,
        Err(cim::http::auth::KeyError::Fetch { .. })
    ));
    let state = AppState::new(db.pool.clone()).with_verifier(verifier);
    let base = serve(state).await;
    let http = reqwest::Client::new();

    let readyz = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(readyz.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = readyz.json().await.unwrap();
    assert!(
        body["checks"]["token_keys"]
            .as_str()
            .unwrap()
            .contains("JWKS"),
        "{body}"
    );
    let refused = http
        .get(format!("{base}/programs/{}", uuid::Uuid::now_v7()))
        .bearer_auth(key.token())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    // The provider comes back: the next token fetches the keys, and the server is ready.
    provider.down.store(false, Ordering::SeqCst);
    // Signed in now: the program does not exist (404), which only a verified caller is told.
    let served = http
        .get(format!("{base}/programs/{}", uuid::Uuid::now_v7()))
        .bearer_auth(key.token())
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), StatusCode::NOT_FOUND);
    let readyz = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(readyz.status(), StatusCode::OK);
    db.drop().await;
}
