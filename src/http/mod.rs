//! The HTTP API. `router` is built in the library so tests can serve it on port 0 or call it
//! directly.
//!
//! - [`problem`]: the one error shape (`application/problem+json`) and the status rules;
//! - [`extract`]: body, path and query extractors that refuse bad input with a problem;
//! - [`auth`]: bearer tokens and the [`auth::Caller`] extractor;
//! - [`command`]: what every command request carries besides its body (idempotency key, `If-Match`,
//!   request id);
//! - [`cursor`]: opaque cursors and page sizes of the lists;
//! - [`metrics`]: the span of every request and the Prometheus metrics at `/metrics`;
//! - [`routes`]: one file per resource, [`routes::access`] with who may do what, and
//!   [`routes::openapi`] with the OpenAPI 3.1 document (`GET /openapi.json`).
//!
//! Every route is listed once, in [`routes::all`]; the router is built from that list and the
//! authorisation test walks the same list, so a route cannot be added without being tested.

pub mod auth;
pub mod command;
pub mod cursor;
pub mod extract;
mod headers;
mod health;
pub mod metrics;
pub mod problem;
pub mod routes;

use crate::app::CommandHandler;
use crate::log;
use crate::projections::RunnerHandle;
use crate::store::EventStore;
use auth::{AuthLimitSettings, AuthLimiter, Verifier};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
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
    /// Checks bearer tokens. Without configured keys it refuses every token.
    pub verifier: Arc<Verifier>,
    pub commands: CommandHandler,
    /// Where uploaded media is stored and how large an upload may be (`CIM_MEDIA_DIR`,
    /// `CIM_MEDIA_MAX_BYTES`).
    pub media: crate::media::MediaStore,
    /// The export worker's configuration, for the registrar's export routes (`/exports/...`).
    /// `None`: those routes answer 503 `exports_not_configured`.
    pub exports: Option<Arc<crate::export::worker::WorkerConfig>>,
    /// Failed authentications per client address (`auth::limit`); the production default unless
    /// [`AppState::with_auth_limit`] says otherwise.
    pub auth_limit: Arc<AuthLimiter>,
}

impl AppState {
    pub fn new(pool: PgPool) -> Self {
        Self::build(
            pool,
            None,
            Arc::new(Verifier::refuse_all()),
            crate::media::MediaStore::from_env(),
            None,
            Arc::new(AuthLimiter::new(AuthLimitSettings::default())),
        )
    }

    /// State for a process that runs the projection runner.
    pub fn with_projections(pool: PgPool, projections: RunnerHandle) -> Self {
        Self::build(
            pool,
            Some(projections),
            Arc::new(Verifier::refuse_all()),
            crate::media::MediaStore::from_env(),
            None,
            Arc::new(AuthLimiter::new(AuthLimitSettings::default())),
        )
    }

    /// The same state with these token keys.
    pub fn with_verifier(self, verifier: Verifier) -> Self {
        Self::build(
            self.pool.clone(),
            self.projections.clone(),
            Arc::new(verifier),
            self.media.clone(),
            self.exports.clone(),
            self.auth_limit.clone(),
        )
    }

    /// The same state with this media store (tests give each server a directory of its own).
    pub fn with_media(self, media: crate::media::MediaStore) -> Self {
        Self::build(
            self.pool.clone(),
            self.projections.clone(),
            self.verifier.clone(),
            media,
            self.exports.clone(),
            self.auth_limit.clone(),
        )
    }

    /// The same state with this export configuration (where batch folders are, Ladok delivery).
    pub fn with_exports(self, exports: crate::export::worker::WorkerConfig) -> Self {
        Self::build(
            self.pool.clone(),
            self.projections.clone(),
            self.verifier.clone(),
            self.media.clone(),
            Some(Arc::new(exports)),
            self.auth_limit.clone(),
        )
    }

    /// The same state with this limit on failed authentications (`cim serve` reads it from its
    /// settings; tests that send many bad tokens on purpose turn it off).
    pub fn with_auth_limit(self, settings: AuthLimitSettings) -> Self {
        Self::build(
            self.pool.clone(),
            self.projections.clone(),
            self.verifier.clone(),
            self.media.clone(),
            self.exports.clone(),
            Arc::new(AuthLimiter::new(settings)),
        )
    }

    fn build(
        pool: PgPool,
        projections: Option<RunnerHandle>,
        verifier: Arc<Verifier>,
        media: crate::media::MediaStore,
        exports: Option<Arc<crate::export::worker::WorkerConfig>>,
        auth_limit: Arc<AuthLimiter>,
    ) -> Self {
        let commands = CommandHandler::new(EventStore::new(pool.clone(), log::upcasters()));
        Self(Arc::new(App {
            pool,
            projections,
            verifier,
            commands,
            media,
            exports,
            auth_limit,
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

/// Every route as (method, path template), in the order registered.
pub fn route_list() -> Vec<(Method, &'static str)> {
    routes::all()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect()
}

pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for route in routes::all() {
        router = router.route(route.path, route.handler);
    }
    router
        .fallback(problem::no_such_route)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(DefaultBodyLimit::max(extract::JSON_BODY_LIMIT))
        .layer(axum::middleware::from_fn(problem::catch_panic))
        // Inside `request_id` (so the span has the id), outside `catch_panic` (so a panic's 500 is
        // observed too).
        .layer(axum::middleware::from_fn(metrics::observe))
        .layer(axum::middleware::from_fn(command::request_id))
        .layer(axum::middleware::from_fn(headers::security_headers))
        .with_state(state)
}
