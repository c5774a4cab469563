//! What operations reads: liveness and readiness, for process supervisors and load balancers, and
//! the Prometheus metrics (the registry is `http::metrics`; the projection lag is measured here,
//! from the state, when the metrics are read).

use crate::db::migrations_applied;
use crate::http::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The process is alive and serving HTTP. Deliberately touches nothing else: a database outage must
/// not get a healthy process restarted.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready to take traffic: the database answers and has every migration this binary expects, the
/// identity provider's keys have been fetched (when a JWKS URL is configured), and the projection
/// runner (when this process runs one) is in touch with the database.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let database = match migrations_applied(&state.pool).await {
        Ok(true) => "ok",
        Ok(false) => "migrations pending",
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: database unreachable");
            "unreachable"
        }
    };
    let mut checks = json!({ "database": database });
    let mut ready = database == "ok";
    // A configured JWKS URL that was never fetched: no identity provider token can be checked.
    let keys = state.verifier.readiness();
    ready &= keys.is_ok();
    checks["token_keys"] = json!(keys.err().unwrap_or_else(|| "ok".to_owned()));
    // The projection listener: a process whose LISTEN connection stays lost has lost touch with the
    // database in a way polling alone may hide (see `RunnerHandle::readiness`).
    if let Some(runner) = &state.projections {
        let projections = runner.readiness();
        ready &= projections.is_ok();
        checks["projections"] = json!(projections.err().unwrap_or_else(|| "ok".to_owned()));
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({ "status": if ready { "ready" } else { "not ready" }, "checks": checks })),
    )
}

/// `GET /metrics`: the Prometheus text exposition (format 0.0.4).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format: request latency by route template and status, projection lag, export counts", content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let lag = projection_lag(&state).await;
    let mut response = state.metrics.render(lag.as_deref()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Events in the log after each projection's checkpoint, in a process that runs the projection
/// runner (`None` otherwise). A projection without a checkpoint, or whose lag cannot be measured,
/// is left out.
async fn projection_lag(state: &AppState) -> Option<Vec<(&'static str, i64)>> {
    let runner = state.projections.as_ref()?;
    let mut lag = Vec::new();
    for projection in runner.status().projections {
        let Some(at) = projection.checkpoint else {
            continue;
        };
        match crate::projections::status::events_after(&state.pool, at).await {
            Ok(behind) => lag.push((projection.name, behind)),
            Err(e) => tracing::warn!(error = %e, "cannot measure projection lag"),
        }
    }
    Some(lag)
}
