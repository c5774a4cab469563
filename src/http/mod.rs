//! The HTTP API. `router` is built in the library so tests can serve it on port 0 or call it
//! directly.

mod health;

use crate::projections::RunnerHandle;
use axum::Router;
use axum::routing::get;
use sqlx::PgPool;
use std::sync::Arc;

/// Shared state of every handler. Cloning is an `Arc` bump.
#[derive(Debug, Clone)]
pub struct AppState(Arc<App>);

#[derive(Debug)]
pub struct App {
    pub pool: PgPool,
    /// The projection runner of this process (`cim serve` runs one): its status feeds `/readyz`, and
    /// handlers wait on it for read-your-writes. `None` in tests that serve without projections.
    pub projections: Option<RunnerHandle>,
}

impl AppState {
    pub fn new(pool: PgPool) -> Self {
        Self(Arc::new(App {
            pool,
            projections: None,
        }))
    }

    /// State for a process that runs the projection runner.
    pub fn with_projections(pool: PgPool, projections: RunnerHandle) -> Self {
        Self(Arc::new(App {
            pool,
            projections: Some(projections),
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
}
