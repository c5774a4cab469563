//! Errors as `application/problem+json` (RFC 9457), the only error shape the API answers with.
//!
//! Every problem carries a stable `code` (clients and tests match on it; messages may be reworded,
//! codes may not), a `detail` sentence written for the person reading it, and, when one field of the
//! request is at fault, its name in `field`. A 5xx is logged here with its whole cause chain and
//! shows the client nothing internal.
//!
//! Status rules (documented in the README's "Web API" section):
//! - 400: the request cannot be read (malformed JSON, bad path or query values, bad headers);
//! - 401: no valid bearer token; 403: a valid token whose role may not use this route or program;
//! - 404: no such route, or an object the caller may not know exists (another student's portfolio);
//! - 409: a lost race; 412: `If-Match` names an older version; 413: body over the limit;
//! - 415: not JSON; 422: well-formed but refused (wrong types, unknown fields, rule refusals);
//! - 429 with `Retry-After`: too many failed authentications from the caller's address;
//! - 500: ours; 503 with `Retry-After`: the database is away for a moment.

use crate::app::CommandError;
use crate::domain::DomainError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::borrow::Cow;

/// Seconds a client should wait before retrying while the database is away.
const RETRY_AFTER_S: &str = "2";

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One problem, ready to be answered.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub detail: String,
    pub field: Option<String>,
    /// Extension members (RFC 9457 §3.2) a client can act on, such as the `portfolio_id` that a
    /// `portfolio_exists` conflict names. Boxed for the same reason as `extra_header`.
    extensions: Option<Box<serde_json::Map<String, serde_json::Value>>>,
    /// `WWW-Authenticate` for 401s, `Retry-After` for 429s and 503s.
    /// Boxed: rare, and it would otherwise make every `Result<_, Problem>` large.
    extra_header: Option<Box<(header::HeaderName, HeaderValue)>>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    code: &'a str,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    extensions: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            detail: detail.into(),
            field: None,
            extensions: None,
            extra_header: None,
        }
    }

    /// Adds an extension member to the body (its name must not be one of the standard members).
    pub fn with_extension(mut self, name: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extensions
            .get_or_insert_with(Default::default)
            .insert(name.to_owned(), value.into());
        self
    }

    /// Names the request field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        let field = field.into();
        self.field = (!field.is_empty()).then_some(field);
        self
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn unprocessable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    /// 401, with the challenge that tells the client which scheme to use.
    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        let mut p = Self::new(StatusCode::UNAUTHORIZED, code, detail);
        let challenge = format!("Bearer error=\"invalid_token\", error_description=\"{code}\"");
        p.extra_header = HeaderValue::from_str(&challenge)
            .ok()
            .map(|v| Box::new((header::WWW_AUTHENTICATE, v)));
        p
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 429 for an address that failed authentication too often (see `auth::limit`), with
    /// `Retry-After` in whole seconds, rounded up so a client that waits that long is let in.
    pub fn too_many_authentication_failures(wait: std::time::Duration) -> Self {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let seconds = seconds.max(1);
        let mut p = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_authentication_failures",
            format!(
                "too many failed authentications came from your address; try again in {seconds} s"
            ),
        );
        p.extra_header = Some(Box::new((header::RETRY_AFTER, HeaderValue::from(seconds))));
        p
    }

    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }

    /// A failure that is ours, not the client's: logged with its cause chain, answered generically.
    /// When the cause is the database being away (restarting, stopped, out of connections), it is
    /// 503 `database_unavailable` with `Retry-After`, which clients and proxies retry.
    pub fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        if crate::db::unavailable_in(error) {
            tracing::warn!(error = %chain, "database unavailable");
            let mut p = Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the service cannot reach its database right now; try again in a few seconds (a command retried with the same Idempotency-Key takes effect at most once)",
            );
            p.extra_header = Some(Box::new((
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_S),
            )));
            return p;
        }
        tracing::error!(error = %chain, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "something went wrong on our side; it has been logged, please try again later",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = Body {
            kind: format!("urn:cim:problem:{}", self.code),
            title,
            status: self.status.as_u16(),
            code: &self.code,
            detail: &self.detail,
            field: self.field.as_deref(),
            extensions: self.extensions.as_deref(),
        };
        let json = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (self.status, json).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(extra) = self.extra_header {
            let (name, value) = *extra;
            headers.insert(name, value);
        }
        response
    }
}

impl From<DomainError> for Problem {
    fn from(e: DomainError) -> Self {
        let status = match e {
            // Unknown objects: the command names something that does not exist.
            DomainError::PortfolioNotOpened
            | DomainError::ProgramNotRegistered
            | DomainError::BatchNotCreated => StatusCode::NOT_FOUND,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        let code = match e {
            DomainError::PortfolioNotOpened => "portfolio_not_found",
            DomainError::ProgramNotRegistered => "program_not_found",
            _ => e.code(),
        };
        let problem = Self::new(status, code, e.to_string());
        match e.field() {
            Some(field) => problem.with_field(field),
            None => problem,
        }
    }
}

impl From<CommandError> for Problem {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Domain(e) => e.into(),
            CommandError::Conflict { .. } => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                "someone else changed this at the same moment; reload it and try again",
            ),
            e @ CommandError::VersionMismatch { .. } => Self::new(
                StatusCode::PRECONDITION_FAILED,
                "version_mismatch",
                e.to_string(),
            )
            .with_field("If-Match"),
            e @ CommandError::PortfolioExists { portfolio_id } => {
                Self::new(StatusCode::CONFLICT, "portfolio_exists", e.to_string())
                    .with_extension("portfolio_id", portfolio_id.to_string())
            }
            e @ CommandError::IdentityNumberTaken => {
                Self::new(StatusCode::CONFLICT, "identity_number_taken", e.to_string())
                    .with_field("identity_number")
            }
            e @ (CommandError::Store(_) | CommandError::Corrupt { .. }) => Self::internal(&e),
        }
    }
}

/// Middleware: a handler that panics answers a 500 problem (and the panic is logged) instead of
/// dropping the connection. Handlers are not meant to panic; this keeps a bug from looking like a
/// network failure to the client.
pub async fn catch_panic(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(next.run(request))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            tracing::error!(panic = %message, "request handler panicked");
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "something went wrong on our side; it has been logged, please try again later",
            )
            .into_response()
        }
    }
}

/// A 404 for paths no route matches.
pub async fn no_such_route() -> Problem {
    Problem::not_found("no_such_route", "there is no such resource")
}

/// A 405 for a known path asked with a method it does not support.
pub async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this resource does not support that method",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    async fn body(p: Problem) -> (StatusCode, serde_json::Value, Response) {
        let response = p.into_response();
        let status = response.status();
        let (parts, b) = response.into_parts();
        let bytes = to_bytes(b, 1 << 16).await.unwrap();
        let value = serde_json::from_slice(&bytes).unwrap();
        (
            status,
            value,
            Response::from_parts(parts, axum::body::Body::empty()),
        )
    }

    #[tokio::test]
    async fn a_rule_refusal_is_a_422_with_its_code_and_field() {
        let e = DomainError::ExtensionInPast {
            until: chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
            today: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        };
        let (status, json, response) = body(e.into()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(json["code"], "extension_in_past");
        assert_eq!(json["field"], "until");
        assert_eq!(json["status"], 422);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            HeaderValue::from_static(PROBLEM_JSON)
        );
    }

    #[tokio::test]
    async fn an_unknown_portfolio_is_a_404_and_a_conflict_says_what_to_do() {
        let (status, json, _) = body(DomainError::PortfolioNotOpened.into()).await;
        assert_eq!(
            (status, json["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("portfolio_not_found"))
        );
        let conflict = CommandError::Conflict {
            stream_id: "portfolio-x".into(),
        };
        let (status, json, _) = body(conflict.into()).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(json["detail"].as_str().unwrap().contains("reload"));
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_a_generic_500_problem() {
        async fn boom() -> &'static str {
            panic!("a bug with an internal detail")
        }
        let app = axum::Router::new()
            .route("/boom", axum::routing::get(boom))
            .layer(axum::middleware::from_fn(catch_panic));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let response = reqwest::get(format!("http://{addr}/boom")).await.unwrap();
        assert_eq!(response.status().as_u16(), 500);
        let json: serde_json::Value = response.json().await.unwrap();
        assert_eq!(json["code"], "internal_error");
        assert!(!json.to_string().contains("internal detail"));
    }

    #[tokio::test]
    async fn a_401_carries_the_bearer_challenge() {
        let (_, _, response) = body(Problem::unauthorized("token_missing", "no token")).await;
        let challenge = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        assert!(challenge.starts_with("Bearer"));
    }
}
