//! Telling consumers that events were appended: `NOTIFY cim_events`, sent after the append has
//! committed, coalesced per process.
//!
//! The log used to announce itself with a statement trigger on `events`. That put the `NOTIFY` inside
//! every appending transaction, and PostgreSQL serialises the commits of notifying transactions on
//! one cluster-wide lock held across their WAL flush: appends committed one at a time, losing group
//! commit (`cim-bench` measured plain inserts with the trigger at 0.1 of the same inserts without
//! it, at 8 and 32 connections). Now the appending process sends the notification itself, in its own
//! tiny transaction, after the append returned, and while one notification is on its way every
//! further append of the process is folded into the next one. Notifications are hints: consumers
//! also poll (guarantee 7), so a process that dies between its commit and its notification delays a
//! consumer by one poll interval and loses nothing.

use sqlx::{Connection, PgConnection, PgPool};
use std::sync::OnceLock;
use tokio::sync::mpsc;

/// The channel appends are announced on.
pub const CHANNEL: &str = "cim_events";

/// One process's announcements on one pool. The sending task starts with the first announcement
/// (inside the runtime) and ends when the announcer is dropped.
#[derive(Debug)]
pub(super) struct Announcer {
    pool: PgPool,
    wanted: OnceLock<mpsc::Sender<()>>,
}

impl Announcer {
    pub(super) fn new(pool: PgPool) -> Self {
        Self {
            pool,
            wanted: OnceLock::new(),
        }
    }

    /// Asks for a notification. Never waits: when one is already queued, this one is folded in.
    pub(super) fn announce(&self) {
        let wanted = self.wanted.get_or_init(|| {
            // Room for one: a full queue means a notification that covers this append is coming.
            let (wanted, requests) = mpsc::channel(1);
            tokio::spawn(send_notifications(self.pool.clone(), requests));
            wanted
        });
        let _ = wanted.try_send(());
    }
}

/// Sends the notifications on a connection of its own, not one of the pool's: under load every
/// pooled connection may be busy with the very appends being announced, and a notification queued
/// behind them left the projections to find those appends at their next poll (`cim-bench` measured
/// a live lag of about half the poll interval at 32 clients). A broken connection is opened again
/// for the next notification.
async fn send_notifications(pool: PgPool, mut requests: mpsc::Receiver<()>) {
    let options = pool.connect_options();
    let mut connection: Option<PgConnection> = None;
    while requests.recv().await.is_some() {
        if connection.is_none() {
            match PgConnection::connect_with(&options).await {
                Ok(opened) => connection = Some(opened),
                Err(e) => {
                    // Consumers poll as well; a lost hint only costs them latency.
                    tracing::debug!(error = %e, "could not connect to announce appended events");
                    continue;
                }
            }
        }
        if let Some(conn) = connection.as_mut()
            && let Err(e) = sqlx::query!("SELECT pg_notify($1, '')", CHANNEL)
                .execute(&mut *conn)
                .await
        {
            tracing::debug!(error = %e, "could not announce appended events");
            connection = None;
        }
    }
}
