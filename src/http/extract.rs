//! Extractors that answer bad input with a [`Problem`] naming the field at fault, instead of axum's
//! plain-text rejections, and the [`Caller`] of a request.
//!
//! Request bodies are DTOs with `#[serde(deny_unknown_fields)]`, so a misspelt field is refused
//! rather than silently ignored. The command metadata's extractor stays with its rules in
//! `command`; the extractor of a whole command request is `pipeline::CommandRequest`.

use super::auth::{Authenticator, Caller, Role, SignedIn};
use super::command::BodyDigest;
use super::problem::Problem;
use super::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

/// Largest JSON body accepted. Reflections are at most 100 000 characters, far below this.
pub const JSON_BODY_LIMIT: usize = 256 * 1024;

/// The authenticated caller (401 without a valid token, 429 for an address that failed too often;
/// see `auth`). Here rather than in `auth` because it reads the application state, which is built
/// from `auth`.
impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        // A request the console sends from this process for a signed-in person.
        if let Some(SignedIn(caller)) = parts.extensions.get::<SignedIn>() {
            return Ok(caller.clone());
        }
        let caller = Authenticator {
            verifier: &state.verifier,
            limiter: &state.auth_limit,
            pool: &state.pool,
            metrics: &state.metrics,
        }
        .caller(parts)
        .await?;
        // A staff member's address for their messages comes from their token (`notify`).
        if caller.role != Role::Student
            && let Some(email) = &caller.profile.email
        {
            state
                .staff_addresses
                .remember(&state.pool, &caller.subject, email)
                .await;
        }
        Ok(caller)
    }
}

/// A JSON request body.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the request body must be JSON, sent with Content-Type: application/json",
            ));
        }
        // A command with an Idempotency-Key binds the key to these bytes (see `http::command`).
        let digest = req.extensions().get::<BodyDigest>().cloned();
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("the request body is larger than {JSON_BODY_LIMIT} bytes"),
                )
            } else {
                Problem::bad_request("body_unreadable", "the request body could not be read")
            }
        })?;
        if let Some(digest) = digest {
            digest.record(&bytes);
        }
        parse_json(&bytes).map(ApiJson)
    }
}

fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Deserialises a body, telling syntax errors (400) from well-formed JSON of the wrong shape (422).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let malformed = |message: String| {
        Problem::bad_request(
            "malformed_json",
            format!("the request body is not valid JSON: {message}"),
        )
    };
    // Syntax first, so that malformed JSON is a 400 even when the fields read before the error
    // would already have been refused for their shape.
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map_err(|e| malformed(e.to_string()))?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let inner = e.inner();
        let message = inner.to_string();
        if inner.is_syntax() || inner.is_eof() {
            return malformed(message);
        }
        let field = field_at_fault(&e.path().to_string(), &message);
        let code = if message.starts_with("unknown field") {
            "unknown_field"
        } else if message.starts_with("missing field") {
            "missing_field"
        } else {
            "invalid_field"
        };
        // serde's message ends with "at line 1 column 42", useless to a form; drop it.
        let detail = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m)
            .to_owned();
        Problem::unprocessable(code, detail).with_field(field)
    })?;
    // Trailing garbage after the value is malformed JSON too.
    de.end().map_err(|e| malformed(e.to_string()))?;
    Ok(value)
}

/// The dotted path to the bad value; for unknown and missing fields serde names the field only in
/// its message (between backticks), so it is appended to the path of the enclosing object.
fn field_at_fault(path: &str, message: &str) -> String {
    let path = if path == "." { "" } else { path };
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    match named {
        // serde_path_to_error already ends the path with an unknown key; do not repeat it.
        Some(name) if path == name || path.ends_with(&format!(".{name}")) => path.to_owned(),
        Some(name) if path.is_empty() => name.to_owned(),
        Some(name) => format!("{path}.{name}"),
        None => path.to_owned(),
    }
}

/// Path parameters; a value of the wrong shape (not a UUID, say) is a 400 naming the parameter.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(path_problem(rejection)),
        }
    }
}

fn path_problem(rejection: PathRejection) -> Problem {
    use axum::extract::path::ErrorKind;
    match rejection {
        PathRejection::FailedToDeserializePathParams(e) => {
            let problem = |key: &str| {
                Problem::bad_request(
                    "invalid_path_parameter",
                    format!("the path parameter {key} is not valid here"),
                )
                .with_field(key)
            };
            match e.kind() {
                ErrorKind::ParseErrorAtKey { key, .. }
                | ErrorKind::InvalidUtf8InPathParam { key }
                | ErrorKind::DeserializeError { key, .. } => problem(key),
                _ => Problem::bad_request("invalid_path_parameter", e.body_text()),
            }
        }
        other => Problem::internal(&other),
    }
}

/// A query string; a missing or malformed value is a 400.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(Problem::bad_request(
                "invalid_query",
                e.body_text()
                    .trim_start_matches("Failed to deserialize query string: ")
                    .to_owned(),
            )),
            Err(other) => Err(Problem::bad_request("invalid_query", other.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        inner: Inner,
    }

    fn refuse(json: &str) -> Problem {
        parse_json::<Outer>(json.as_bytes()).unwrap_err()
    }

    #[test]
    fn syntax_errors_are_400_and_shape_errors_422_naming_the_field() {
        let p = refuse("{\"name\": ");
        assert_eq!(
            (p.status, p.code.as_ref()),
            (StatusCode::BAD_REQUEST, "malformed_json")
        );
        let p = refuse(r#"{"name": "a", "inner": {"n": "x"}}"#);
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            (p.code.as_ref(), p.field.as_deref()),
            ("invalid_field", Some("inner.n"))
        );
        let p = refuse(r#"{"name": "a", "inner": {"n": 1, "m": 2}}"#);
        assert_eq!(
            (p.code.as_ref(), p.field.as_deref()),
            ("unknown_field", Some("inner.m"))
        );
        let p = refuse(r#"{"name": "a"}"#);
        assert_eq!(
            (p.code.as_ref(), p.field.as_deref()),
            ("missing_field", Some("inner"))
        );
        let p = refuse(r#"{"name": "a", "inner": {"n": 1}} x"#);
        assert_eq!(p.code, "malformed_json");
        assert!(
            !refuse(r#"{"name": 1, "inner": {"n": 1}}"#)
                .detail
                .contains("line")
        );
    }
}
