//! What a command request carries besides its body, and how a command's answer is shaped. The
//! steps a command runs are `pipeline`'s; this module sits below it and below `extract`, whose
//! body extractor records the digest a key is bound to ([`BodyDigest`]).
//!
//! - **Request id.** The id [`super::headers::request_id`] gave the request is recorded as the
//!   events' correlation id, so a log line, a response and an event can be matched.
//! - **Idempotency.** `Idempotency-Key` (any string up to 200 characters) becomes the command id as a
//!   UUID v5 of (key, caller, method and path): one client's key cannot collide with another's, and
//!   the same key on another resource is another command. The event store keeps one outcome per
//!   command id, so a retry answers with the first outcome. Without a key, every request is a new
//!   command. Ids a command mints (a portfolio's, an activity's, a certificate's) are derived from
//!   the command id, so a retry names the same object.
//! - **A key is bound to its request.** As the IETF Idempotency-Key draft asks, the first request
//!   body read under a key is remembered (`idempotency_keys`, a SHA-256 salted with the command id,
//!   so the row reveals nothing of the body without the key); the same key with a different body is
//!   refused with 422 `idempotency_key_reused` before anything is decided, instead of silently
//!   answering with the first request's outcome. A command without a body has nothing to differ in
//!   and is not bound.
//! - **Optimistic concurrency.** Reads and command answers carry `ETag: "<stream version>"`; a
//!   command with `If-Match` is refused with 412 when the stream has moved on (unless it is the retry
//!   of a command that already took effect). The command handler checks it against the very state
//!   the command is decided on and appends expecting that version, so no change can slip in between.

use super::auth::Caller;
use super::headers::RequestId;
use super::problem::Problem;
use crate::app::CommandContext;
use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::sync::{Arc, OnceLock};
use uuid::Uuid;

pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 200;

/// Namespace of command ids derived from idempotency keys; fixed forever.
const COMMAND_NAMESPACE: Uuid = Uuid::from_u128(0x2b7e_51c4_93a0_4f6e_8d15_7a9c_3e60_b1d2);

/// The SHA-256 of a command's request body, filled in by the body extractor (`extract::ApiJson`,
/// above this module) when it reads the body of a request with an `Idempotency-Key`. Shared
/// through the request's extensions because the body is read after the headers, by another
/// extractor; empty when no body was read.
#[derive(Debug, Clone, Default)]
pub struct BodyDigest(Arc<OnceLock<[u8; 32]>>);

impl BodyDigest {
    /// Records the bytes of the body (the first read counts; a body is read once).
    pub fn record(&self, body: &[u8]) {
        let _ = self.0.set(Sha256::digest(body).into());
    }

    fn get(&self) -> Option<[u8; 32]> {
        self.0.get().copied()
    }
}

/// The request metadata of a command (see the module docs).
#[derive(Debug, Clone)]
pub struct CommandMeta {
    pub correlation_id: Uuid,
    /// The client's key, `None` when the request has none.
    idempotency_key: Option<String>,
    /// The body the key is bound to, once read.
    body: BodyDigest,
    /// `METHOD path`, part of the derived command id.
    target: String,
    /// The stream version named by `If-Match` (`None` when absent or `*`).
    pub if_match: Option<i32>,
}

impl<S: Send + Sync> FromRequestParts<S> for CommandMeta {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let correlation_id = parts
            .extensions
            .get::<RequestId>()
            .map_or_else(Uuid::now_v7, |r| r.0);
        let idempotency_key = match parts.headers.get(&IDEMPOTENCY_KEY) {
            None => None,
            Some(v) => {
                let key = v
                    .to_str()
                    .ok()
                    .map(str::trim)
                    .filter(|k| !k.is_empty() && k.chars().count() <= MAX_IDEMPOTENCY_KEY_LEN);
                match key {
                    Some(k) => Some(k.to_owned()),
                    None => {
                        return Err(Problem::bad_request(
                            "invalid_idempotency_key",
                            format!(
                                "the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
                            ),
                        )
                        .with_field("Idempotency-Key"));
                    }
                }
            }
        };
        let if_match = match parts.headers.get(header::IF_MATCH) {
            None => None,
            Some(v) => parse_if_match(v).ok_or_else(|| {
                Problem::bad_request(
                    "invalid_if_match",
                    "If-Match must be the ETag of the resource, e.g. \"3\"",
                )
                .with_field("If-Match")
            })?,
        };
        let body = BodyDigest::default();
        if idempotency_key.is_some() {
            parts.extensions.insert(body.clone());
        }
        Ok(Self {
            correlation_id,
            idempotency_key,
            body,
            target: format!("{} {}", parts.method, parts.uri.path()),
            if_match,
        })
    }
}

/// `"3"`, `W/"3"` → `Some(Some(3))`; `*` → `Some(None)`; anything else → `None`.
fn parse_if_match(value: &HeaderValue) -> Option<Option<i32>> {
    let text = value.to_str().ok()?.trim();
    if text == "*" {
        return Some(None);
    }
    let text = text.strip_prefix("W/").unwrap_or(text);
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    inner.parse::<i32>().ok().filter(|v| *v >= 0).map(Some)
}

impl CommandMeta {
    /// The command context for `caller`, after binding the idempotency key to the request body
    /// (422 `idempotency_key_reused` when the key was first used with another body). Called once the
    /// caller may run the command and the body was read, so that neither a refused caller nor a
    /// body never read binds a key.
    pub async fn context(&self, pool: &PgPool, caller: &Caller) -> Result<CommandContext, Problem> {
        let ctx = self.derive_context(caller);
        if let (Some(_), Some(body)) = (&self.idempotency_key, self.body.get()) {
            bind_key(pool, ctx.command_id, &request_digest(ctx.command_id, &body)).await?;
        }
        Ok(ctx)
    }

    /// The command id is derived from the idempotency key, or fresh when there is none.
    fn derive_context(&self, caller: &Caller) -> CommandContext {
        let command_id = match &self.idempotency_key {
            Some(key) => derive_command_id(key, &caller.subject, &self.target),
            None => Uuid::now_v7(),
        };
        CommandContext {
            actor_id: caller.subject.clone(),
            role: caller.role.actor_role(),
            correlation_id: self.correlation_id,
            command_id,
            now: Utc::now(),
        }
    }
}

/// The command id of a request with `Idempotency-Key: key` from the caller `subject` to
/// `method path` (the path without the query). Public so that a client which keeps its keys (and the
/// tests of process faults) can find its commands in the log, as `events.command_id`.
pub fn command_id_for_key(key: &str, subject: &str, method: &str, path: &str) -> Uuid {
    derive_command_id(key, subject, &format!("{method} {path}"))
}

fn derive_command_id(key: &str, subject: &str, target: &str) -> Uuid {
    // Lengths first, so that ("ab", "c") and ("a", "bc") differ.
    let name = format!(
        "{}:{key}{}:{subject}{}:{target}",
        key.len(),
        subject.len(),
        target.len(),
    );
    Uuid::new_v5(&COMMAND_NAMESPACE, name.as_bytes())
}

/// What is stored for a key: the body's digest salted with the command id (which already stands
/// for key, caller, method and path), so equal bodies under different keys store different values.
fn request_digest(command_id: Uuid, body: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(command_id.as_bytes());
    hasher.update(body);
    hasher.finalize().into()
}

/// Binds `command_id` to `digest` the first time, and refuses another digest afterwards.
async fn bind_key(pool: &PgPool, command_id: Uuid, digest: &[u8; 32]) -> Result<(), Problem> {
    // Two statements on purpose: when two first uses race, the INSERT of the second waits for the
    // first to commit and then does nothing, and only a statement started after that sees the
    // winner's row (one statement's snapshot would not).
    sqlx::query!(
        "INSERT INTO idempotency_keys (command_id, request_sha256) VALUES ($1, $2)
         ON CONFLICT (command_id) DO NOTHING",
        command_id,
        digest.as_slice(),
    )
    .execute(pool)
    .await
    .map_err(|e| Problem::internal(&e))?;
    let stored = sqlx::query_scalar!(
        "SELECT request_sha256 FROM idempotency_keys WHERE command_id = $1",
        command_id
    )
    .fetch_one(pool)
    .await
    .map_err(|e| Problem::internal(&e))?;
    if stored.as_slice() == digest.as_slice() {
        Ok(())
    } else {
        Err(key_reused())
    }
}

fn key_reused() -> Problem {
    Problem::unprocessable(
        "idempotency_key_reused",
        "this Idempotency-Key was already used for a request with a different body;          send the first body again to get its answer, or use a new key for a new request",
    )
    .with_field("Idempotency-Key")
}

/// An id a command mints, derived from the command id so that a retry names the same object.
pub fn minted_id(ctx: &CommandContext, what: &str) -> Uuid {
    Uuid::new_v5(&ctx.command_id, what.as_bytes())
}

/// A JSON answer with the stream version as its ETag.
#[derive(Debug)]
pub struct Versioned<T> {
    pub status: StatusCode,
    pub version: i32,
    pub body: T,
}

impl<T> Versioned<T> {
    pub fn ok(version: i32, body: T) -> Self {
        Self {
            status: StatusCode::OK,
            version,
            body,
        }
    }

    pub fn created(version: i32, body: T) -> Self {
        Self {
            status: StatusCode::CREATED,
            version,
            body,
        }
    }
}

impl<T: Serialize> IntoResponse for Versioned<T> {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", self.version)) {
            response.headers_mut().insert(header::ETAG, etag);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::auth::Role;

    #[test]
    fn if_match_accepts_strong_weak_and_star() {
        let parse = |s: &'static str| parse_if_match(&HeaderValue::from_static(s));
        assert_eq!(parse("\"3\""), Some(Some(3)));
        assert_eq!(parse("W/\"12\""), Some(Some(12)));
        assert_eq!(parse("*"), Some(None));
        assert_eq!(parse("3"), None);
        assert_eq!(parse("\"-1\""), None);
    }

    #[test]
    fn the_same_key_from_another_caller_or_route_is_another_command() {
        let meta = |target: &str| CommandMeta {
            correlation_id: Uuid::now_v7(),
            idempotency_key: Some("k-1".into()),
            body: BodyDigest::default(),
            target: target.into(),
            if_match: None,
        };
        let caller = |sub: &str| Caller {
            subject: sub.into(),
            role: Role::Coordinator,
            programs: Default::default(),
            profile: Default::default(),
        };
        let a = meta("POST /x").derive_context(&caller("anna")).command_id;
        assert_eq!(
            a,
            meta("POST /x").derive_context(&caller("anna")).command_id
        );
        assert_ne!(
            a,
            meta("POST /x").derive_context(&caller("bert")).command_id
        );
        assert_ne!(
            a,
            meta("POST /y").derive_context(&caller("anna")).command_id
        );
        assert_eq!(a, command_id_for_key("k-1", "anna", "POST", "/x"));
        // Fixed forever: keys stored by clients must keep naming the same commands.
        assert_eq!(
            a.to_string(),
            Uuid::new_v5(&COMMAND_NAMESPACE, b"3:k-14:anna7:POST /x").to_string()
        );
    }

    #[test]
    fn the_stored_digest_depends_on_the_command_and_the_body() {
        let body = |b: &[u8]| -> [u8; 32] { Sha256::digest(b).into() };
        let (one, two) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(
            request_digest(one, &body(b"{}")),
            request_digest(one, &body(b"{}"))
        );
        assert_ne!(
            request_digest(one, &body(b"{}")),
            request_digest(one, &body(b"{ }"))
        );
        assert_ne!(
            request_digest(one, &body(b"{}")),
            request_digest(two, &body(b"{}"))
        );
        let digest = BodyDigest::default();
        assert_eq!(digest.get(), None);
        digest.clone().record(b"{}");
        assert_eq!(digest.get(), Some(body(b"{}")));
    }
}
