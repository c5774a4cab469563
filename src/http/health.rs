//! Liveness and readiness, for process supervisors and load balancers.

use super::AppState;
use crate::db::migrations_applied;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
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
