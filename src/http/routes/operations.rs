//! What operations reads: liveness and readiness, for process supervisors and load balancers, and
//! the Prometheus metrics (the registry is `http::metrics`; the database's health readings,
//! `ops::health`, are taken here, from the state, when the metrics or the readiness are read).

use crate::db::migrations_applied;
use crate::http::state::AppState;
use crate::ops::{self, Part, Thresholds};
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
///
/// Besides, one entry per moving part of the service (`projection_lag`, `export_worker`, `ladok`,
/// `outbox`): `"ok"` or a sentence saying how it is behind, and the parts behind listed under
/// `degraded`. Those never make the process unready: they are the service's work, shared by every
/// process, and taking every process out of rotation because Ladok is slow or the export failed
/// would stop the API as well without helping either (`docs/operations.md`, "Health and metrics").
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
    let degraded = parts_behind(&state, database == "ok", &mut checks).await;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ready { "ready" } else { "not ready" },
            "checks": checks,
            "degraded": degraded,
        })),
    )
}

/// Sets each part's entry of `checks` (`"ok"`, a concern's sentence, or `"unknown"` when the
/// database cannot be read) and answers the names of the parts behind.
async fn parts_behind(
    state: &AppState,
    database_ok: bool,
    checks: &mut Value,
) -> Vec<&'static str> {
    let snapshot = if database_ok {
        read_health(state).await
    } else {
        None
    };
    let Some(snapshot) = snapshot else {
        for part in Part::ALL {
            checks[part.as_str()] = json!("unknown");
        }
        return Vec::new();
    };
    let concerns = snapshot.concerns(&Thresholds::default());
    for part in Part::ALL {
        let message = concerns.iter().find(|c| c.part == part);
        checks[part.as_str()] = json!(message.map_or("ok", |c| c.message.as_str()));
    }
    concerns.iter().map(|c| c.part.as_str()).collect()
}

/// The database's health readings, or `None` (logged) when they cannot be taken.
async fn read_health(state: &AppState) -> Option<ops::HealthSnapshot> {
    match ops::snapshot(&state.pool).await {
        Ok(snapshot) => Some(snapshot),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the health of the service's parts");
            None
        }
    }
}

/// `GET /metrics`: the Prometheus text exposition (format 0.0.4).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format: request latency by route template and status, refused authentications, export counts, and the health of the moving parts read from the database (projection position and lag, export runs, certificates waiting for Ladok, the outbox); listed in docs/operations.md", content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let health = read_health(&state).await;
    let mut response = state.metrics.render(health.as_ref()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
