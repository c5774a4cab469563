//! What is known about the projections: the live view of one process ([`RunnerStatus`], from
//! `RunnerHandle::status`, for `/readyz` and later an admin endpoint) and the database-wide view
//! ([`report`], for `cim projections status`, which runs without a runner).

use super::checkpoint::{self, Phase, StoredCheckpoint, version_i32};
use super::{ListenerHealth, Projection, definition_hash};
use crate::store::Checkpoint;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One projection as this process sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectionState {
    pub name: &'static str,
    /// The version this binary runs.
    pub version: u32,
    /// Whether this process holds the projection's lock and is the one advancing it.
    pub owned: bool,
    /// Where the read model stands. Exact (published after every commit) while `owned`; otherwise as
    /// last read from the database (refreshed about every second while waiting for the lock).
    /// `None` until known, or when the projection was never set up on this database.
    pub checkpoint: Option<Checkpoint>,
    pub phase: Option<Phase>,
    /// Events applied since the tables were last (re)created.
    pub events_applied: Option<i64>,
    /// The database holds a newer version of this projection (a newer binary is rolling out): this
    /// process leaves it alone rather than rebuild it back to the older version.
    pub outdated: bool,
    /// The last error while advancing (logged too), cleared by the next successful step.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

impl ProjectionState {
    pub(crate) fn new(projection: &dyn Projection) -> Self {
        Self {
            name: projection.name(),
            version: projection.version(),
            owned: false,
            checkpoint: None,
            phase: None,
            events_applied: None,
            outdated: false,
            last_error: None,
            last_error_at: None,
        }
    }

    /// Takes over what the database says about the projection.
    pub(crate) fn observe(&mut self, stored: Option<&StoredCheckpoint>) {
        self.checkpoint = stored.map(|s| s.checkpoint);
        self.phase = stored.map(|s| s.phase);
        self.events_applied = stored.map(|s| s.events_applied);
    }

    pub(crate) fn record_error(&mut self, error: String) {
        self.last_error = Some(error);
        self.last_error_at = Some(Utc::now());
    }

    pub(crate) fn clear_error(&mut self) {
        self.last_error = None;
        self.last_error_at = None;
    }
}

/// The runner's view: its listener and every projection it runs.
#[derive(Debug, Clone, Serialize)]
pub struct RunnerStatus {
    pub listener: ListenerHealth,
    pub projections: Vec<ProjectionState>,
}

/// How a stored projection relates to the definition in this binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Definition {
    /// Built with this binary's definition.
    Current,
    /// Built with another (older, or same-version but different) definition: `cim serve` rebuilds it
    /// at its next start.
    Changed,
    /// Built by a newer binary: this one leaves it alone.
    Newer,
    /// Known to this binary but never set up on this database: built at the next start.
    NotCreated,
    /// Stored, but this binary has no projection by that name (renamed or removed).
    Unknown,
}

impl Definition {
    pub fn as_str(self) -> &'static str {
        match self {
            Definition::Current => "current",
            Definition::Changed => "changed (rebuilds at next start)",
            Definition::Newer => "newer than this binary",
            Definition::NotCreated => "not created",
            Definition::Unknown => "unknown to this binary",
        }
    }
}

/// One line of `cim projections status`.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectionReport {
    pub name: String,
    pub stored: Option<StoredCheckpoint>,
    pub definition: Definition,
    /// Events in the log after the projection's checkpoint (all events when never created). Counts
    /// events of transactions still committing too: a figure for people, not for tailing.
    pub behind: i64,
}

/// Every projection of `projections` plus every stored one, ordered by name, with how far each is
/// behind the head of the log.
pub async fn report(
    pool: &PgPool,
    projections: &[Arc<dyn Projection>],
) -> Result<Vec<ProjectionReport>, sqlx::Error> {
    let mut stored: BTreeMap<String, StoredCheckpoint> = checkpoint::load_all(pool)
        .await?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let mut lines = Vec::new();
    for p in projections {
        let row = stored.remove(p.name());
        let definition = match &row {
            None => Definition::NotCreated,
            Some(s) if s.definition_hash == definition_hash(p.as_ref()) => Definition::Current,
            Some(s) if s.version > version_i32(p.as_ref()) => Definition::Newer,
            Some(_) => Definition::Changed,
        };
        lines.push((p.name().to_owned(), row, definition));
    }
    lines.extend(
        stored
            .into_iter()
            .map(|(name, s)| (name, Some(s), Definition::Unknown)),
    );
    let mut reports = Vec::with_capacity(lines.len());
    for (name, stored, definition) in lines {
        let from = stored.as_ref().map_or(Checkpoint::START, |s| s.checkpoint);
        reports.push(ProjectionReport {
            name,
            behind: events_after(pool, from).await?,
            stored,
            definition,
        });
    }
    reports.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(reports)
}

/// How many events the log holds after `from`, in the tailing order.
pub async fn events_after(pool: &PgPool, from: Checkpoint) -> Result<i64, sqlx::Error> {
    // events.transaction_id is xid8; bigint has no direct cast to it, text does (as in tail.rs).
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM events
         WHERE (transaction_id, position) > ($1::bigint::text::xid8, $2::bigint)"#,
        from.transaction_id,
        from.position,
    )
    .fetch_one(pool)
    .await
}
