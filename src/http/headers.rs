//! Security headers on every answer.
//!
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
