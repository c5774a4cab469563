//! `cim serve`: the HTTP API and the background workers in one process.

use super::DatabaseArgs;
use crate::console;
use crate::export::worker::schedule::ExportScheduler;
use crate::http::AppState;
use crate::http::auth::{AuthLimitSettings, Verifier, limit};
use crate::log;
use crate::notify::Notifier;
use crate::projections::{self, ProjectionRunner};
use crate::store::EventStore;
use anyhow::Context;
use clap::Args;
use std::future::IntoFuture;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Port 0 picks a free port (printed at start-up).
    #[arg(long, env = "CIM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub jwt: super::token::JwtArgs,
    #[command(flatten)]
    pub auth_limit: AuthLimitArgs,
    #[command(flatten)]
    pub export: super::export::ExportArgs,
    #[command(flatten)]
    pub schedule: super::export::ScheduleArgs,
    #[command(flatten)]
    pub notify: super::notify::NotifyArgs,
    #[command(flatten)]
    pub issuer: super::credentials::IssuerArgs,
    #[command(flatten)]
    pub console: super::console::ConsoleArgs,
    /// After SIGTERM or SIGINT, how many seconds requests in flight get to finish. Past that the
    /// server stops waiting for them (their connections are dropped) and still stops the workers
    /// and the database cleanly. Keep it a few seconds below the supervisor's kill timeout.
    #[arg(long, env = "CIM_SHUTDOWN_GRACE_SECONDS", default_value_t = 20)]
    pub shutdown_grace_seconds: u64,
}

/// The limit on failed authentications per client address (`http::auth::limit`).
#[derive(Debug, Args)]
pub struct AuthLimitArgs {
    /// Failed authentications one client address may have per window before its requests with
    /// credentials are refused with 429 until the window ends; 0 turns the limit off.
    #[arg(long, env = "CIM_AUTH_FAILURE_LIMIT", default_value_t = limit::DEFAULT_MAX_FAILURES)]
    pub auth_failure_limit: u32,
    /// The window, in seconds, starting at an address's first failure.
    #[arg(long, env = "CIM_AUTH_FAILURE_WINDOW_SECONDS", default_value_t = limit::DEFAULT_WINDOW.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub auth_failure_window_seconds: u64,
    /// How many client addresses are tracked at once (the oldest are forgotten first).
    #[arg(long, env = "CIM_AUTH_FAILURE_MAX_ADDRESSES", default_value_t = limit::DEFAULT_MAX_ADDRESSES as u64,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub auth_failure_max_addresses: u64,
    /// Comma-separated addresses of reverse proxies whose X-Forwarded-For names the client. Unset:
    /// the header is ignored and the TCP peer is the client.
    #[arg(long, env = "CIM_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpAddr>,
}

impl AuthLimitArgs {
    pub fn settings(&self) -> AuthLimitSettings {
        AuthLimitSettings {
            max_failures: self.auth_failure_limit,
            window: Duration::from_secs(self.auth_failure_window_seconds),
            max_addresses: usize::try_from(self.auth_failure_max_addresses).unwrap_or(usize::MAX),
            trusted_proxies: self.trusted_proxies.clone(),
        }
    }
}

pub async fn run(db_args: &DatabaseArgs, args: ServeArgs) -> anyhow::Result<()> {
    // Checked before anything starts: bad key configuration is a start-up error, not 401s later.
    let verifier = Verifier::from_settings(&args.jwt.settings()?)
        .context("cannot load the bearer token keys")?;
    if !verifier.has_keys() {
        tracing::warn!(
            "no token keys configured (CIM_JWT_DEV_SECRET, CIM_JWT_JWKS_FILE or CIM_JWT_JWKS_URL): every API call will be refused with 401"
        );
    }
    // The identity provider may be down while we start: serve anyway (not ready, its tokens refused)
    // and fetch again as tokens arrive.
    if let Err(e) = verifier.fetch_remote_keys().await {
        tracing::error!(error = %e, "the identity provider's keys are not available yet");
    }
    // The export configuration too (a missing Ladok certificate file is a start-up error).
    let export_config = args.export.worker_config(db_args)?;
    if args.schedule.export_scheduler {
        args.schedule.schedule().validate().context(
            "CIM_EXPORT_SCHEDULE is not a valid cron expression (sec min hour dom mon dow)",
        )?;
    }
    let notify_config = if args.notify.notifications {
        Some(args.notify.config(args.schedule.export_timezone)?)
    } else {
        None
    };
    let issuer = args.issuer.config()?;
    // The console's identity provider is discovered before anything starts, like the token keys.
    let console = args
        .console
        .settings(
            args.issuer.public_url.as_deref(),
            verifier.claims().clone(),
            args.jwt
                .jwt_dev_secret
                .as_deref()
                .is_some_and(|s| !s.is_empty()),
        )
        .await?;
    let db = super::open_database(db_args).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr()?;
    // The read models, started once nothing can fail before the shutdown below. They read the log
    // with the same upcasters as every other reader, on a pool of their own: one connection per
    // projection's batch transaction and one for the shared read of the log, so a burst of
    // requests never makes a projection wait for a connection, nor a projection a request
    // (docs/projections.md, "Connections").
    let read_models = projections::all();
    let runner_pool = crate::db::connect(&db.url, runner_connections(&read_models))
        .await
        .context("cannot connect the projection runner's pool")?;
    let store = EventStore::new(db.pool.clone(), log::upcasters());
    let runner = ProjectionRunner::start(
        EventStore::new(runner_pool.clone(), log::upcasters()),
        runner_pool,
        &db.url,
        read_models,
    );
    // The nightly export run (src/export/worker/schedule.rs).
    let scheduler = if args.schedule.export_scheduler {
        let started =
            ExportScheduler::start(store, export_config.clone(), &args.schedule.schedule()).await;
        match started {
            Ok(scheduler) => Some(scheduler),
            Err(e) => {
                runner.shutdown().await;
                let _ = db.close().await;
                return Err(anyhow::anyhow!(e).context("cannot start the export scheduler"));
            }
        }
    } else {
        None
    };
    let state = AppState::with_projections(db.pool.clone(), runner.clone())
        .with_verifier(verifier)
        .with_exports(export_config)
        .with_auth_limit(args.auth_limit.settings());
    let state = match issuer {
        Some(issuer) => state.with_issuer(issuer),
        None => state,
    };
    // Notifications share the API's command handler, so an erasure drops the folds they read
    // addresses from.
    let notifier = match notify_config {
        Some(config) => match Notifier::start(state.commands.clone(), &db.url, config).await {
            Ok(notifier) => Some(notifier),
            Err(e) => {
                if let Some(scheduler) = scheduler {
                    scheduler.shutdown().await;
                }
                runner.shutdown().await;
                let _ = db.close().await;
                return Err(e.context("cannot start the notifications"));
            }
        },
        None => None,
    };
    // Tests and scripts read this line to find the port when --listen ends in :0.
    println!("cim listening on http://{local}");
    tracing::info!(%local, embedded = db.is_embedded(), "cim serve started");

    let grace = Duration::from_secs(args.shutdown_grace_seconds);
    let served = serve_until_drained(listener, console::router(state, console), grace).await;
    if let Some(scheduler) = scheduler {
        scheduler.shutdown().await;
    }
    if let Some(notifier) = notifier {
        notifier.shutdown().await;
    }
    // Finish the batches in flight and release the projections' locks before the database goes.
    runner.shutdown().await;
    // Stop the embedded cluster even when serving failed, so its data directory is left clean.
    let closed = db.close().await;
    served.context("HTTP server failed")?;
    closed?;
    tracing::info!("cim serve stopped");
    Ok(())
}

/// Serves until SIGINT or SIGTERM, then stops accepting connections and lets the requests in
/// flight finish, for at most `grace`. A request that never ends (a stalled upload, a client that
/// stopped reading) must not keep the process from stopping its workers and its database before
/// the supervisor loses patience and kills it outright, leaving the embedded cluster to crash
/// recovery.
async fn serve_until_drained(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    grace: Duration,
) -> std::io::Result<()> {
    let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
    // With connect info: the limit on failed authentications counts per client address.
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            let _ = signalled.send(());
        })
        .into_future();
    let deadline = async move {
        match on_signal.await {
            Ok(()) => tokio::time::sleep(grace).await,
            // The server ended without a signal: its own result counts.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        served = server => served,
        () = deadline => {
            // The requests still running are dropped with the runtime when the process exits.
            tracing::warn!(
                grace_seconds = grace.as_secs(),
                "requests still in flight after the shutdown grace period are dropped"
            );
            Ok(())
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; draining in-flight requests");
}

/// The size of the projection runner's pool: a batch transaction per projection, one connection for
/// the shared read of the log, and one for read-your-writes waits that ask the stored checkpoints.
fn runner_connections(read_models: &[std::sync::Arc<dyn projections::Projection>]) -> u32 {
    u32::try_from(read_models.len())
        .unwrap_or(u32::MAX)
        .saturating_add(2)
}
