//! The application state every handler shares ([`AppState`], an `Arc` of [`App`]), and how it is
//! built: `cim serve` and the tests start from [`AppState::new`] or [`AppState::with_projections`]
//! and derive what they configure with the `with_…` methods.
//!
//! Below the routes and extractors, above what the state holds (`auth`'s verifier and limiter,
//! `metrics`' registry), none of which imports it back.

use super::auth::{AuthLimitSettings, AuthLimiter, Verifier};
use super::metrics::Metrics;
use crate::app::CommandHandler;
use crate::log;
use crate::projections::RunnerHandle;
use crate::store::EventStore;
use sqlx::PgPool;
use std::sync::Arc;

/// Shared state of every handler. Cloning is an `Arc` bump.
#[derive(Debug, Clone)]
pub struct AppState(Arc<App>);

#[derive(Debug, Clone)]
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
    /// The counters `/metrics` shows (request latencies, exports, refused authentications). Kept
    /// when a `with_…` method derives a state, so a server's metrics survive its configuration.
    pub metrics: Arc<Metrics>,
    /// The staff addresses this process has recorded from tokens (`notify::preferences`), so a
    /// coordinator's address is written once, not on every request.
    pub staff_addresses: Arc<crate::notify::preferences::Remembered>,
    /// Who issues the Open Badges credentials (`CIM_PUBLIC_URL`, `CIM_ISSUER_NAME`); `None`: the
    /// credential routes answer 503 `credentials_not_configured`.
    pub issuer: Option<Arc<crate::credential::issuer::IssuerConfig>>,
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
            Arc::default(),
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
            Arc::default(),
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
            self.metrics.clone(),
        )
        .carrying(&self)
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
            self.metrics.clone(),
        )
        .carrying(&self)
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
            self.metrics.clone(),
        )
        .carrying(&self)
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
            self.metrics.clone(),
        )
        .carrying(&self)
    }

    /// This state with what a derived state keeps of `from` beyond `build`'s parts: the issuer.
    fn carrying(self, from: &AppState) -> Self {
        let mut app = (*self.0).clone();
        app.issuer = from.issuer.clone();
        Self(Arc::new(app))
    }

    /// The same state, issuing credentials as `issuer`.
    pub fn with_issuer(self, issuer: crate::credential::issuer::IssuerConfig) -> Self {
        let mut app = (*self.0).clone();
        app.issuer = Some(Arc::new(issuer));
        Self(Arc::new(app))
    }

    fn build(
        pool: PgPool,
        projections: Option<RunnerHandle>,
        verifier: Arc<Verifier>,
        media: crate::media::MediaStore,
        exports: Option<Arc<crate::export::worker::WorkerConfig>>,
        auth_limit: Arc<AuthLimiter>,
        metrics: Arc<Metrics>,
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
            metrics,
            staff_addresses: Arc::default(),
            issuer: None,
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}
