//! `cim serve`: the HTTP API and the background workers in one process.

use super::DatabaseArgs;
use crate::db::Database;
use crate::http::{self, AppState};
use crate::projections::{self, ProjectionRunner};
use crate::store::{EventStore, Upcasters};
use anyhow::Context;
use clap::Args;
use std::net::SocketAddr;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Port 0 picks a free port (printed at start-up).
    #[arg(long, env = "CIM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
}

pub async fn run(db_args: &DatabaseArgs, args: ServeArgs) -> anyhow::Result<()> {
    let db = Database::open(&db_args.settings()).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr()?;
    // The read models, started once nothing can fail before the shutdown below. No upcasters are
    // registered yet; once the domain has some, the runner must get the same set as every reader.
    let store = EventStore::new(db.pool.clone(), Upcasters::new());
    let runner = ProjectionRunner::start(store, db.pool.clone(), &db.url, projections::all());
    let state = AppState::with_projections(db.pool.clone(), runner.clone());
    // Tests and scripts read this line to find the port when --listen ends in :0.
    println!("cim listening on http://{local}");
    tracing::info!(%local, embedded = db.is_embedded(), "cim serve started");

    let served = axum::serve(listener, http::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await;
    // Finish the batches in flight and release the projections' locks before the database goes.
    runner.shutdown().await;
    // Stop the embedded cluster even when serving failed, so its data directory is left clean.
    let closed = db.close().await;
    served.context("HTTP server failed")?;
    closed?;
    tracing::info!("cim serve stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM. In-flight requests then finish before the server returns.
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
