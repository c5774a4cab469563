//! Observability of the API: a tracing span per request and the Prometheus metrics at `/metrics`.
//!
//! A small registry of our own (three families need no crate):
//! - `cim_http_request_duration_seconds{method, route, status}`: a latency histogram per matched
//!   route **template** (`/portfolios/{portfolio_id}`), never the raw path, so ids never become
//!   labels; requests no route matches are labelled `route="unmatched"`;
//! - `cim_projection_lag_events{projection}`: events in the log after each projection's
//!   checkpoint (only in a process that runs the projection runner);
//! - `cim_exports_total{kind}`: exports made, counted by [`record_export`] (the audit CSV routes
//!   call it; the export worker may call it with its batch kinds);
//! - `cim_auth_failures_total{code}`: refused authentications by their 401 code, and
//!   `cim_auth_rate_limited_total`: requests refused with 429 because their address failed too often
//!   (see `auth::limit`). Never the address.
//!
//! The span of a request carries method, route template, status, latency and the request id (the
//! `X-Request-Id` that is also the events' correlation id); never the body, the token or a query.

use super::AppState;
use super::command::RequestId;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{LazyLock, Mutex};
use std::time::Instant;
use tracing::Instrument;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Per bucket of [`BUCKETS`], observations at or below its bound (not cumulative).
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// (method, route template, status).
type RequestKey = (&'static str, &'static str, u16);

/// The method as a label: the standard ones by name, any other as `OTHER`, so a client inventing
/// methods cannot add label values.
fn method_label(method: &Method) -> &'static str {
    [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
    ]
    .iter()
    .zip(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
    .find_map(|(m, label)| (m == method).then_some(label))
    .unwrap_or("OTHER")
}

#[derive(Debug, Default)]
struct Registry {
    requests: BTreeMap<RequestKey, Histogram>,
    exports: BTreeMap<String, u64>,
    auth_failures: BTreeMap<String, u64>,
    auth_rate_limited: u64,
}

/// The route templates, to label requests with a `'static` string.
static TEMPLATES: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| super::routes::all().into_iter().map(|r| r.path).collect());

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Default::default);

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    // A panic while holding the lock leaves plain numbers behind; keep counting.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counts one export of `kind` (e.g. `audit_csv`, or a batch kind of the export worker). `kind`
/// becomes a label: pass a fixed name, never an id or anything personal.
pub fn record_export(kind: &str) {
    *registry().exports.entry(kind.to_owned()).or_default() += 1;
}

/// Counts one refused authentication by its problem code (a fixed `token_*` code, never the token
/// or the address).
pub fn record_auth_failure(code: &str) {
    *registry().auth_failures.entry(code.to_owned()).or_default() += 1;
}

/// Counts one request refused because its address had too many failed authentications.
pub fn record_auth_refused() {
    registry().auth_rate_limited += 1;
}

/// Middleware: the request's span, its log line and its latency observation.
pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    // The template is `'static` (it is one of the `routes::all` paths), so it can be a label key.
    let route: &'static str = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|m| TEMPLATES.iter().copied().find(|p| *p == m.as_str()))
        .unwrap_or("unmatched");
    let method = method_label(request.method());
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.to_string())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "request",
        method,
        route,
        request_id = %request_id,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    );
    let response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    span.record("status", status);
    span.record("latency_ms", elapsed.as_secs_f64() * 1000.0);
    span.in_scope(|| tracing::info!("request finished"));
    registry()
        .requests
        .entry((method, route, status))
        .or_default()
        .observe(elapsed.as_secs_f64());
    response
}

/// `GET /metrics`: the Prometheus text exposition (format 0.0.4).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format: request latency by route template and status, projection lag, export counts", content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut out = String::new();
    render_requests(&mut out);
    render_lag(&mut out, &state).await;
    render_exports(&mut out);
    render_auth(&mut out);
    let mut response = out.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

fn render_requests(out: &mut String) {
    let requests = registry().requests.clone();
    out.push_str(
        "# HELP cim_http_request_duration_seconds Time to answer a request, by route template and status.\n\
         # TYPE cim_http_request_duration_seconds histogram\n",
    );
    for ((method, route, status), h) in &requests {
        let labels = format!(
            "method=\"{method}\",route=\"{}\",status=\"{status}\"",
            escape(route)
        );
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(h.counts) {
            cumulative += count;
            let _ = writeln!(
                out,
                "cim_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "cim_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n\
             cim_http_request_duration_seconds_sum{{{labels}}} {}\n\
             cim_http_request_duration_seconds_count{{{labels}}} {}",
            h.count, h.sum, h.count
        );
    }
}

async fn render_lag(out: &mut String, state: &AppState) {
    let Some(runner) = &state.projections else {
        return;
    };
    out.push_str(
        "# HELP cim_projection_lag_events Events in the log after the projection's checkpoint.\n\
         # TYPE cim_projection_lag_events gauge\n",
    );
    for projection in runner.status().projections {
        let Some(at) = projection.checkpoint else {
            continue;
        };
        match crate::projections::status::events_after(&state.pool, at).await {
            Ok(behind) => {
                let _ = writeln!(
                    out,
                    "cim_projection_lag_events{{projection=\"{}\"}} {behind}",
                    escape(projection.name)
                );
            }
            Err(e) => tracing::warn!(error = %e, "cannot measure projection lag"),
        }
    }
}

fn render_exports(out: &mut String) {
    let exports = registry().exports.clone();
    out.push_str(
        "# HELP cim_exports_total Exports made by this process, by kind.\n\
         # TYPE cim_exports_total counter\n",
    );
    for (kind, count) in &exports {
        let _ = writeln!(
            out,
            "cim_exports_total{{kind=\"{}\"}} {count}",
            escape(kind)
        );
    }
}

fn render_auth(out: &mut String) {
    let (failures, limited) = {
        let registry = registry();
        (registry.auth_failures.clone(), registry.auth_rate_limited)
    };
    out.push_str(
        "# HELP cim_auth_failures_total Refused authentications, by problem code.\n\
         # TYPE cim_auth_failures_total counter\n",
    );
    for (code, count) in &failures {
        let _ = writeln!(
            out,
            "cim_auth_failures_total{{code=\"{}\"}} {count}",
            escape(code)
        );
    }
    let _ = writeln!(
        out,
        "# HELP cim_auth_rate_limited_total Requests refused with 429 because their address failed authentication too often.\n\
         # TYPE cim_auth_rate_limited_total counter\n\
         cim_auth_rate_limited_total {limited}"
    );
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_into_the_first_bucket_that_holds_the_value() {
        let mut h = Histogram::default();
        h.observe(0.003);
        h.observe(0.2);
        h.observe(100.0);
        assert_eq!(h.counts[0], 1);
        assert_eq!(h.counts[5], 1);
        assert_eq!(h.counts.iter().sum::<u64>(), 2);
        assert_eq!(h.count, 3);
        let mut out = String::new();
        record_export("unit_test_kind");
        render_exports(&mut out);
        assert!(out.contains("cim_exports_total{kind=\"unit_test_kind\"} "));
        assert_eq!(escape("a\"b"), "a\\\"b");
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "OTHER");
    }
}
