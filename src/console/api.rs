//! The console's writes go through the API, in this process: a form becomes the JSON request a
//! client of the API would send, with the signed-in person attached as [`SignedIn`]
//! (`http::auth`), and is answered by the same router, so the console checks, decides and records
//! exactly what the API does (roles, visibility, validation, idempotency, `If-Match`) and nothing
//! can be done on a page that the API would refuse. Reads that want the API's own view use
//! [`Console::api_get`] the same way; pages that list or aggregate read the read models directly.

use super::Console;
use super::session::Session;
use crate::http::auth::SignedIn;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tower::ServiceExt;

/// What the API refused, as its problem document said it.
#[derive(Debug, Clone)]
pub struct ApiRefusal {
    pub status: StatusCode,
    /// The problem's stable code (`reflection_too_short`, `version_mismatch`, …).
    pub code: String,
    /// The API's sentence (English): shown when the console has no text of its own for the code.
    pub detail: String,
}

impl ApiRefusal {
    fn from_answer(status: StatusCode, body: &[u8]) -> Self {
        let problem: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let text = |name: &str| problem.get(name).and_then(Value::as_str).map(str::to_owned);
        ApiRefusal {
            status,
            code: text("code").unwrap_or_else(|| "unexpected_answer".to_owned()),
            detail: text("detail").unwrap_or_else(|| status.to_string()),
        }
    }
}

/// Up to this many bytes of an API answer are read (the largest views are a few hundred KB).
const ANSWER_LIMIT: usize = 16 * 1024 * 1024;

impl Console {
    /// `GET path` as `session`'s person.
    pub async fn api_get(&self, session: &Session, path: &str) -> Result<Value, ApiRefusal> {
        self.api(session, Method::GET, path, None, None).await
    }

    /// `POST path` with this JSON body as `session`'s person. `idempotency_key` (the key the form
    /// was rendered with) makes a form sent twice, by a double click or a reload, one command.
    pub async fn api_post(
        &self,
        session: &Session,
        path: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<Value, ApiRefusal> {
        self.api(session, Method::POST, path, Some(body), idempotency_key)
            .await
    }

    async fn api(
        &self,
        session: &Session,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Value, ApiRefusal> {
        let (content_type, body) = match body {
            Some(b) => (Some("application/json"), Body::from(b.to_string())),
            None => (None, Body::empty()),
        };
        let answer = self
            .api_raw(session, method, path, content_type, body, idempotency_key)
            .await;
        let status = answer.status();
        let bytes = axum::body::to_bytes(answer.into_body(), ANSWER_LIMIT)
            .await
            .unwrap_or_default();
        if status.is_success() {
            Ok(if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap_or(Value::Null)
            })
        } else {
            Err(ApiRefusal::from_answer(status, &bytes))
        }
    }

    /// `method path` with this body as `session`'s person, answered as the API answered it
    /// (status, headers, body): for what is not JSON, an upload's raw bytes or a PDF, which the
    /// console hands on unchanged.
    pub async fn api_raw(
        &self,
        session: &Session,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Body,
        idempotency_key: Option<&str>,
    ) -> Response {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let mut request = match request.body(body) {
            Ok(request) => request,
            Err(_) => return StatusCode::BAD_REQUEST.into_response(),
        };
        request
            .extensions_mut()
            .insert(SignedIn(session.caller.clone()));
        self.api
            .clone()
            .oneshot(request)
            .await
            .unwrap_or_else(|never| match never {})
    }
}
