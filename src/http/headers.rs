//! The headers every answer carries: the request id and the security headers. At the bottom of
//! `http` (it imports nothing of it), because the metrics, the command metadata and the router all
//! read the request id.
//!
//! **Request id.** `X-Request-Id` when it is a UUID, else a fresh one; echoed on the response and
//! recorded as the events' correlation id (see `command`), so a log line, a response and an event
//! can be matched.
//!
//! **Security headers.**
//! The API serves JSON, CSV and uploaded files, never pages, so the headers shut everything a
//! browser could otherwise do with an answer: no sniffing a type other than the one sent, no
//! framing, no active content, no referrer leaking ids in URLs, and no caching of answers that hold
//! personal data (a route that allows caching, such as a media download, sets its own
//! `Cache-Control`, which is kept). `Strict-Transport-Security` belongs to the TLS-terminating
//! ingress in front of `cim serve`, which listens on plain HTTP.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use uuid::Uuid;

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request's correlation id, put in the request's extensions by [`request_id`].
#[derive(Debug, Clone, Copy)]
pub struct RequestId(pub Uuid);

/// Middleware: adopts a valid `X-Request-Id` or makes one, and echoes it on the response.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::parse_str(v.trim()).ok())
        .unwrap_or_else(Uuid::now_v7);
    request.extensions_mut().insert(RequestId(id));
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id.to_string()) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    response
}

const FIXED: [(HeaderName, &str); 5] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'",
    ),
    (header::REFERRER_POLICY, "no-referrer"),
    (
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    ),
];

/// Middleware: adds the security headers to every response.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in FIXED {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
