//! An OpenID Connect provider the tests start: discovery, an authorisation endpoint that signs in
//! whoever the test says is at the keyboard, a token endpoint that checks PKCE (S256) and the
//! redirect, and an RS256 key published as a JWKS. Real HTTP on a port of 127.0.0.1, so the
//! console's client (`openidconnect`) and the browser go through the whole flow.

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const CLIENT_ID: &str = "cim-console";

#[derive(Clone)]
pub struct Idp {
    pub issuer: String,
    inner: Arc<Inner>,
}

struct Inner {
    key: EncodingKey,
    jwk: Value,
    /// The claims of whoever signs in next (besides iss, aud, exp, iat, nonce).
    user: Mutex<Value>,
    /// Codes handed out and not yet redeemed: code → (challenge, redirect, nonce, claims).
    codes: Mutex<HashMap<String, (String, String, String, Value)>>,
    /// PKCE challenges the authorisation endpoint saw (the tests check one was sent).
    pub challenges: Mutex<Vec<String>>,
}

impl std::fmt::Debug for Idp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idp").field("issuer", &self.issuer).finish()
    }
}

impl Idp {
    /// Starts the provider with `user`'s claims as the person at the keyboard.
    pub async fn start(user: Value) -> Self {
        let rsa = Rsa::generate(2048).unwrap();
        let jwk = json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": "test-key-1",
            "n": URL_SAFE_NO_PAD.encode(rsa.n().to_vec()),
            "e": URL_SAFE_NO_PAD.encode(rsa.e().to_vec()),
        });
        let pem = PKey::from_rsa(rsa)
            .unwrap()
            .private_key_to_pem_pkcs8()
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let idp = Idp {
            issuer,
            inner: Arc::new(Inner {
                key: EncodingKey::from_rsa_pem(&pem).unwrap(),
                jwk,
                user: Mutex::new(user),
                codes: Mutex::default(),
                challenges: Mutex::default(),
            }),
        };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/jwks", get(jwks))
            .with_state(idp.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        idp
    }

    /// Whoever signs in next.
    pub fn set_user(&self, user: Value) {
        *self.inner.user.lock().unwrap() = user;
    }

    pub fn challenges(&self) -> Vec<String> {
        self.inner.challenges.lock().unwrap().clone()
    }
}

async fn discovery(State(idp): State<Idp>) -> Json<Value> {
    let i = &idp.issuer;
    Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "jwks_uri": format!("{i}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "profile", "email"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
        "code_challenge_methods_supported": ["S256"],
    }))
}

async fn jwks(State(idp): State<Idp>) -> Json<Value> {
    Json(json!({ "keys": [idp.inner.jwk] }))
}

#[derive(Debug, Deserialize)]
struct AuthorizeQuery {
    response_type: String,
    client_id: String,
    redirect_uri: String,
    state: String,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

async fn authorize(State(idp): State<Idp>, Query(q): Query<AuthorizeQuery>) -> Response {
    let pkce = q.code_challenge_method.as_deref() == Some("S256");
    let (Some(challenge), true, true, "code") = (
        q.code_challenge,
        pkce,
        q.client_id == CLIENT_ID,
        q.response_type.as_str(),
    ) else {
        return (
            StatusCode::BAD_REQUEST,
            "PKCE S256, our client and the code flow are required",
        )
            .into_response();
    };
    idp.inner.challenges.lock().unwrap().push(challenge.clone());
    let code = uuid::Uuid::new_v4().to_string();
    let user = idp.inner.user.lock().unwrap().clone();
    idp.inner.codes.lock().unwrap().insert(
        code.clone(),
        (
            challenge,
            q.redirect_uri.clone(),
            q.nonce.unwrap_or_default(),
            user,
        ),
    );
    let state = url::form_urlencoded::byte_serialize(q.state.as_bytes()).collect::<String>();
    Redirect::to(&format!("{}?code={code}&state={state}", q.redirect_uri)).into_response()
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    grant_type: String,
    code: String,
    redirect_uri: String,
    code_verifier: String,
}

async fn token(State(idp): State<Idp>, Form(form): Form<TokenForm>) -> Response {
    let refuse = |why: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": why})),
        )
            .into_response()
    };
    if form.grant_type != "authorization_code" {
        return refuse("grant");
    }
    // A code is redeemed once.
    let Some((challenge, redirect, nonce, user)) =
        idp.inner.codes.lock().unwrap().remove(&form.code)
    else {
        return refuse("unknown code");
    };
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(form.code_verifier.as_bytes()));
    if computed != challenge {
        return refuse("PKCE verifier does not match the challenge");
    }
    if redirect != form.redirect_uri {
        return refuse("redirect_uri differs");
    }
    let now = chrono::Utc::now().timestamp();
    let mut claims = user;
    let extra =
        json!({"iss": idp.issuer, "aud": CLIENT_ID, "exp": now + 300, "iat": now, "nonce": nonce});
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-key-1".into());
    let id_token = jsonwebtoken::encode(&header, &claims, &idp.inner.key).unwrap();
    Json(json!({
        "access_token": uuid::Uuid::new_v4().to_string(),
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
    .into_response()
}
