//! Console sessions: server-side, in PostgreSQL (`console_sessions`), behind one cookie.
//!
//! The cookie (`cim_session`, `HttpOnly; Secure; SameSite=Lax; Path=/`) holds 32 random bytes;
//! the table holds their SHA-256, so neither a copy of the table nor a log line signs anybody in.
//! A session ends at sign-out, after [`IDLE`] without a request, or [`LIFETIME`] after sign-in,
//! whichever comes first; an erased student's sessions are deleted with their data.
//!
//! Every form of a session carries its CSRF token (`csrf`); [`Session::check_csrf`] compares in
//! constant time. Sign-in forms, which have no session yet, use a double-submit cookie instead
//! ([`presession_token`]).

use super::Console;
use super::i18n::Lang;
use crate::http::auth::claims::Identity;
use crate::http::auth::{Authenticator, Caller};
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use sqlx::types::Json;

pub const SESSION_COOKIE: &str = "cim_session";
/// The cookie of a browser that has no session yet: the double-submit token of the sign-in forms.
pub const PRESESSION_COOKIE: &str = "cim_presession";
/// A session ends after this long without a request.
pub const IDLE: Duration = Duration::hours(2);
/// A session ends this long after sign-in, however busy.
pub const LIFETIME: Duration = Duration::hours(12);

/// A signed-in person, for one request.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who is asking, as the API would see them.
    pub caller: Caller,
    /// The token this session's forms carry.
    pub csrf: String,
    token_hash: Vec<u8>,
}

/// 32 random bytes, URL-safe base64: session secrets, CSRF tokens, OpenID Connect states.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand_bytes();
    URL_SAFE_NO_PAD.encode(bytes)
}

fn rand_bytes() -> [u8; 32] {
    // Two v4 UUIDs are 244 bits from the operating system's generator (uuid uses getrandom).
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    out[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    out
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Equal in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Starts a session for `identity`; returns the `Set-Cookie` value that carries it.
pub async fn start(pool: &PgPool, identity: &Identity) -> Result<HeaderValue, sqlx::Error> {
    let secret = random_token();
    let now = Utc::now();
    sqlx::query!(
        "INSERT INTO console_sessions (token_hash, subject, identity, csrf_token, idle_until, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        hash(&secret),
        identity.subject,
        Json(identity) as _,
        random_token(),
        now + IDLE,
        now + LIFETIME,
    )
    .execute(pool)
    .await?;
    // Old sessions are swept here rather than by a timer: sign-ins are rare and cheap to piggyback.
    sqlx::query!("DELETE FROM console_sessions WHERE expires_at < now() OR idle_until < now()")
        .execute(pool)
        .await?;
    Ok(cookie(SESSION_COOKIE, &secret, LIFETIME.num_seconds()))
}

/// A `Set-Cookie` value with the console's attributes; `max_age` 0 deletes the cookie.
pub fn cookie(name: &str, value: &str, max_age: i64) -> HeaderValue {
    let text = format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax");
    HeaderValue::from_str(&text).expect("cookie names and base64 values are header-safe")
}

/// The double-submit token of a browser without a session: the `cim_presession` cookie's value,
/// or a new one with the `Set-Cookie` that sets it.
pub fn presession_token(parts: &Parts) -> (String, Option<HeaderValue>) {
    match super::i18n::cookie(parts, PRESESSION_COOKIE).filter(|t| t.len() >= 32) {
        Some(token) => (token, None),
        None => {
            let token = random_token();
            let set = cookie(PRESESSION_COOKIE, &token, 3600);
            (token, Some(set))
        }
    }
}

impl Session {
    /// Whether a form's token is this session's.
    pub fn check_csrf(&self, sent: Option<&str>) -> bool {
        sent.is_some_and(|sent| same_token(sent, &self.csrf))
    }

    /// Ends this session (sign-out); the returned `Set-Cookie` removes the cookie.
    pub async fn end(self, pool: &PgPool) -> Result<HeaderValue, sqlx::Error> {
        sqlx::query!(
            "DELETE FROM console_sessions WHERE token_hash = $1",
            self.token_hash
        )
        .execute(pool)
        .await?;
        Ok(cookie(SESSION_COOKIE, "", 0))
    }

    /// The session whose secret is `secret`, if it is still alive; its idle time starts again.
    async fn find(
        pool: &PgPool,
        secret: &str,
    ) -> Result<Option<(Vec<u8>, Identity, String)>, sqlx::Error> {
        let token_hash = hash(secret);
        let row = sqlx::query!(
            r#"UPDATE console_sessions SET idle_until = LEAST($2, expires_at)
               WHERE token_hash = $1 AND idle_until > now() AND expires_at > now()
               RETURNING identity AS "identity: Json<Identity>", csrf_token"#,
            token_hash,
            Utc::now() + IDLE,
        )
        .fetch_optional(pool)
        .await?;
        Ok(row.map(|r| (token_hash, r.identity.0, r.csrf_token)))
    }
}

/// Not signed in (or no longer): to the sign-in page, which comes back here afterwards. Only a
/// page (GET) is remembered; a form posted from an expired session goes to the start page.
#[derive(Debug)]
pub struct SignInFirst {
    back: String,
}

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        let to = format!("/console/signin?next={}", super::paths::encode(&self.back));
        Redirect::to(&to).into_response()
    }
}

impl FromRequestParts<Console> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        let back = match (&parts.method, parts.extensions.get::<OriginalUri>()) {
            (&Method::GET, Some(uri)) => uri.0.to_string(),
            _ => "/console".to_owned(),
        };
        let signin = || SignInFirst { back: back.clone() }.into_response();
        let Some(secret) = super::i18n::cookie(parts, SESSION_COOKIE) else {
            return Err(signin());
        };
        let pool = &console.app.pool;
        let found = Session::find(pool, &secret)
            .await
            .map_err(|e| super::pages::failure(Lang::of(parts), &e))?;
        let Some((token_hash, identity, csrf)) = found else {
            let mut response = signin();
            response
                .headers_mut()
                .append(header::SET_COOKIE, cookie(SESSION_COOKIE, "", 0));
            return Err(response);
        };
        let caller = Authenticator::caller_of(pool, identity)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Session {
            caller,
            csrf,
            token_hash,
        })
    }
}
