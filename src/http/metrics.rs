//! Observability of the API: a tracing span per request and the Prometheus metrics at `/metrics`.
//!
//! A small registry of our own (three families need no crate):
//! - `cim_http_request_duration_seconds{method, route, status}`: a latency histogram per matched
//!   route **template** (`/portfolios/{portfolio_id}`), never the raw path, so ids never become
//!   labels; requests no route matches are labelled `route="unmatched"`;
//! - the health of the moving parts, read from the database at every scrape (`health.rs`, from
//!   [`crate::ops::health::snapshot`]): projection position and lag, the export worker's runs, the
//!   certificates waiting for Ladok, the outbox (listed in `docs/operations.md`, "Metrics");
//! - `cim_exports_total{kind}`: exports made, counted by [`record_export`] (the audit CSV routes
//!   call it; the export worker may call it with its batch kinds);
//! - `cim_auth_failures_total{code}`: refused authentications by their 401 code, and
//!   `cim_auth_rate_limited_total`: requests refused with 429 because their address failed too often
//!   (see `auth::limit`). Never the address.
//!
//! The span of a request carries method, route template, status, latency and the request id (the
//! `X-Request-Id` that is also the events' correlation id); never the body, the token or a query.
//!
//! The registry ([`Metrics`]) lives in the application state (`state::App::metrics`) and is handed
//! to whoever counts: the [`observe`] middleware, the `Caller` extractor, the audit routes. This
//! module imports nothing of `http` but the request id (`headers`), so that everything above it may
//! count; the `/metrics` route (`routes::operations`) renders it together with the database's
//! health readings, which need the state.

mod health;

use super::headers::RequestId;
use crate::ops::health::HealthSnapshot;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex, MutexGuard};
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

/// (method, route template, status). The template is the matched route's, one of the router's
/// paths (never the raw path), so the label values are as few as the routes.
type RequestKey = (&'static str, String, u16);

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

/// The counters of one application state (see the module docs).
#[derive(Debug, Default)]
pub struct Metrics(Mutex<Registry>);

impl Metrics {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock leaves plain numbers behind; keep counting.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one export of `kind` (e.g. `audit_csv`). `kind` becomes a label: pass a fixed name,
    /// never an id or anything personal.
    pub fn record_export(&self, kind: &str) {
        *self.registry().exports.entry(kind.to_owned()).or_default() += 1;
    }

    /// Counts one refused authentication by its problem code (a fixed `token_*` code, never the
    /// token or the address).
    pub fn record_auth_failure(&self, code: &str) {
        *self
            .registry()
            .auth_failures
            .entry(code.to_owned())
            .or_default() += 1;
    }

    /// Counts one request refused because its address had too many failed authentications.
    pub fn record_auth_refused(&self) {
        self.registry().auth_rate_limited += 1;
    }

    /// The Prometheus text exposition (format 0.0.4): this process's counters and the database's
    /// `health` readings (`None` when they could not be read: `cim_health_readings_ok 0`).
    pub fn render(&self, health: Option<&HealthSnapshot>) -> String {
        let mut out = String::new();
        self.render_requests(&mut out);
        health::render(&mut out, health);
        self.render_exports(&mut out);
        self.render_auth(&mut out);
        out
    }

    fn render_requests(&self, out: &mut String) {
        let requests = self.registry().requests.clone();
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

    fn render_exports(&self, out: &mut String) {
        let exports = self.registry().exports.clone();
        let help = "Exports made by this process, by kind.";
        render_counters(out, "cim_exports_total", help, "kind", &exports);
    }

    fn render_auth(&self, out: &mut String) {
        let (failures, limited) = {
            let registry = self.registry();
            (registry.auth_failures.clone(), registry.auth_rate_limited)
        };
        let help = "Refused authentications, by problem code.";
        render_counters(out, "cim_auth_failures_total", help, "code", &failures);
        let _ = writeln!(
            out,
            "# HELP cim_auth_rate_limited_total Requests refused with 429 because their address failed authentication too often.\n\
             # TYPE cim_auth_rate_limited_total counter\n\
             cim_auth_rate_limited_total {limited}"
        );
    }
}

/// Middleware (`from_fn_with_state` with the state's registry): the request's span, its log line
/// and its latency observation.
pub async fn observe(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = method_label(request.method());
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.to_string())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "request",
        method,
        route = route.as_str(),
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
    metrics
        .registry()
        .requests
        .entry((method, route, status))
        .or_default()
        .observe(elapsed.as_secs_f64());
    response
}

/// A counter family with one label.
fn render_counters(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    counts: &BTreeMap<String, u64>,
) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} counter\n");
    for (value, count) in counts {
        let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {count}", escape(value));
    }
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
        let metrics = Metrics::default();
        metrics.record_export("unit_test_kind");
        let out = metrics.render(None);
        assert!(out.contains("cim_exports_total{kind=\"unit_test_kind\"} "));
        assert!(out.contains("\ncim_health_readings_ok 0\n"));
        assert_eq!(escape("a\"b"), "a\\\"b");
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "OTHER");
    }
}
