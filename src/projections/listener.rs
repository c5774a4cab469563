//! `LISTEN cim_events`: one connection per process that wakes every projection task when events are
//! appended (the appending process sends `pg_notify('cim_events', '')` after its commit, see
//! `store/announce.rs`).
//!
//! Notifications are hints (guarantee 7): they can be lost (a notification sent while the listener was
//! reconnecting is simply gone), so the projection tasks also poll on a timer and never depend on
//! this connection for correctness. What the listener buys is latency: a command's read-your-writes
//! wait usually ends milliseconds after its commit instead of after the next poll.
//!
//! A known failure of other event stores is a listener that died silently after a database outage.
//! Here the connection is re-established with capped backoff for as long as the process runs, a
//! silent connection is probed every `listener_ping_interval` (a half-open TCP connection otherwise
//! looks like a quiet database), every (re)connection wakes all projections (whatever was announced
//! meanwhile is caught up), and the state is published as [`ListenerHealth`] for `/readyz`.

use super::lock::connect_options;
use super::runner::{Backoff, RunnerConfig, sleep_or_shutdown};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::{PgListener, PgPoolOptions};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The notification channel the `events` trigger sends on (see the event-store migration).
pub use crate::store::CHANNEL;

/// A connection that lasted this long is considered to have been healthy (see the backoff in `run`).
const STABLE_CONNECTION: Duration = Duration::from_secs(30);

/// The state of the listening connection, as last observed.
#[derive(Debug, Clone, Serialize)]
pub struct ListenerHealth {
    /// Whether the listening connection is established right now.
    pub connected: bool,
    /// When the listener entered its current state (connected, or disconnected/reconnecting).
    pub since: DateTime<Utc>,
    #[serde(skip)]
    since_instant: Instant,
    /// How many times a listening connection was established: 1 after a clean start, more after
    /// reconnections (a counter that moves shows the outages were survived).
    pub connections: u64,
    /// Why the last connection ended or could not be established (no personal data: connection
    /// errors only).
    pub last_error: Option<String>,
}

impl ListenerHealth {
    /// Not connected yet, as of now.
    pub(crate) fn starting() -> Self {
        Self {
            connected: false,
            since: Utc::now(),
            since_instant: Instant::now(),
            connections: 0,
            last_error: None,
        }
    }

    /// How long the listener has been without a connection; `None` while connected. Measured on the
    /// monotonic clock, so wall-clock jumps do not make a healthy process look broken.
    pub fn disconnected_for(&self) -> Option<Duration> {
        (!self.connected).then(|| self.since_instant.elapsed())
    }

    fn set_connected(&mut self) {
        self.connected = true;
        self.since = Utc::now();
        self.since_instant = Instant::now();
        self.connections += 1;
        self.last_error = None;
    }

    /// Keeps the time of the first failure while failures repeat: "reconnecting since T" must say
    /// when the outage began, not when the last attempt failed.
    fn set_disconnected(&mut self, error: String) {
        if self.connected {
            self.connected = false;
            self.since = Utc::now();
            self.since_instant = Instant::now();
        }
        self.last_error = Some(error);
    }
}

/// Runs until shutdown: keeps a listening connection and bumps `wake` on every notification and
/// every (re)connection.
pub(crate) async fn run(
    database_url: &str,
    config: &RunnerConfig,
    health: &watch::Sender<ListenerHealth>,
    wake: &watch::Sender<u64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(config.backoff_initial, config.backoff_max);
    loop {
        if *shutdown.borrow() {
            break;
        }
        match connect(database_url).await {
            Ok(mut listener) => {
                let connected_at = Instant::now();
                health.send_modify(ListenerHealth::set_connected);
                tracing::info!(channel = CHANNEL, "projection listener connected");
                // Anything appended while we were away was announced to nobody.
                wake.send_modify(|n| *n = n.wrapping_add(1));
                let ended = listen(&mut listener, config, wake, &mut shutdown).await;
                // Return the connection in the background; a broken one is discarded by the pool.
                drop(listener);
                match ended {
                    None => break,
                    Some(error) => {
                        // A connection that held for a while was a healthy one: start the backoff
                        // afresh. One that keeps dropping right after connecting keeps backing off.
                        if connected_at.elapsed() >= STABLE_CONNECTION {
                            backoff.reset();
                        }
                        let delay = backoff.next_delay();
                        tracing::warn!(
                            %error,
                            retry_in_ms = delay.as_millis() as u64,
                            "projection listener lost its connection; reconnecting"
                        );
                        health.send_modify(|h| h.set_disconnected(error));
                        if sleep_or_shutdown(delay, &mut shutdown).await {
                            break;
                        }
                    }
                }
            }
            Err(error) => {
                let delay = backoff.next_delay();
                tracing::warn!(
                    %error,
                    retry_in_ms = delay.as_millis() as u64,
                    "projection listener cannot connect"
                );
                health.send_modify(|h| h.set_disconnected(error.to_string()));
                if sleep_or_shutdown(delay, &mut shutdown).await {
                    break;
                }
            }
        }
    }
    health.send_modify(|h| h.set_disconnected("stopped".to_owned()));
}

/// A listener on its own single-connection pool, so it never competes with (or is closed along with)
/// the application's pool.
async fn connect(database_url: &str) -> Result<PgListener, sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .max_lifetime(None)
        .idle_timeout(None)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(connect_options(database_url, "cim projection listener")?)
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    // We reconnect ourselves (with a fresh listener) so that the health reflects reality, and the
    // pool belongs to this listener alone.
    listener.eager_reconnect(false);
    listener.ignore_pool_close_event(true);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Receives until the connection fails (returns the reason) or shutdown (returns `None`).
async fn listen(
    listener: &mut PgListener,
    config: &RunnerConfig,
    wake: &watch::Sender<u64>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<String> {
    loop {
        let received = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return None,
            received = tokio::time::timeout(config.listener_ping_interval, listener.try_recv()) => received,
        };
        match received {
            // The payload is empty by design; nothing to read from it.
            Ok(Ok(Some(_notification))) => wake.send_modify(|n| *n = n.wrapping_add(1)),
            Ok(Ok(None)) => return Some("connection closed".to_owned()),
            Ok(Err(e)) => return Some(e.to_string()),
            // Quiet for a while: make sure the connection is really there.
            Err(_elapsed) => {
                let ping = tokio::time::timeout(
                    config.listener_ping_timeout,
                    sqlx::query_scalar!("SELECT 1 AS ping").fetch_one(&mut *listener),
                )
                .await;
                match ping {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Some(e.to_string()),
                    Err(_) => return Some("no answer to a ping".to_owned()),
                }
            }
        }
    }
}
