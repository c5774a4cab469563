//! Projections: read models derived from the event log, kept up to date by a runner inside
//! `cim serve` and rebuildable from the log at any time.
//!
//! The event log is the only source of truth (guarantee 5, 6 and 7 of `docs/event-store.md`):
//! - **applied exactly once**: a batch of events and the projection's checkpoint commit in one
//!   transaction, and the checkpoint update is guarded by the checkpoint it started from
//!   (`checkpoint.rs`), so a replay after a crash is harmless and two processes can never both apply
//!   the same batch;
//! - **rebuild = live**: a rebuild drops the projection's tables, runs its DDL again and applies the
//!   log from the start through the very same code path as the live runner (`apply_batch`), so both
//!   produce the same rows;
//! - **wake-ups are hints**: `LISTEN cim_events` wakes the runner early, a timer polls regardless, and
//!   a lost listener connection is re-established with backoff and reported to `/readyz`.
//!
//! One read model = one [`Projection`]: a name, a version, its DDL (`projections/<name>.sql`, pulled
//! in with `include_str!`), the tables it owns and an `apply` function. Every projection is
//! registered in [`all`]. The pieces:
//! - [`runner`]: [`ProjectionRunner`] and its [`RunnerHandle`] (status, read-your-writes waits,
//!   shutdown);
//! - [`lock`]: who may advance a projection (a session-level advisory lock per projection);
//! - [`checkpoint`]: the `projection_checkpoints` table and the one batch-applying transaction;
//! - [`feed`]: one read of the log shared by every projection that needs the same events;
//! - `indexes`: the secondary indexes a rebuild builds once, at the end, instead of row by row;
//! - [`listener`]: the `LISTEN cim_events` connection and its health;
//! - [`rebuild`]: the offline rebuild behind `cim projections rebuild`;
//! - [`status`]: what a process knows about its projections, and the database-wide report behind
//!   `cim projections status`.

pub mod checkpoint;
pub mod feed;
mod indexes;
pub mod listener;
pub mod lock;
pub mod read_models;
pub mod rebuild;
pub mod runner;
pub mod status;

pub use checkpoint::{Phase, StoredCheckpoint};
pub use feed::{FedEvents, Follower, LogFeed};
pub use listener::ListenerHealth;
pub use lock::ProjectionLock;
pub use rebuild::{RebuildOptions, RebuildOutcome, RebuildProgress, rebuild};
pub use runner::{ProjectionRunner, RunnerConfig, RunnerHandle, Scope, Timeout};
pub use status::{Definition, ProjectionReport, ProjectionState, RunnerStatus, report};

use crate::store::{RecordedEvent, StoreError};
use futures::future::BoxFuture;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use thiserror::Error;

/// A read model maintained from the event log.
///
/// Object-safe (the futures are boxed) so the runner can hold any mix of projections as
/// `Arc<dyn Projection>`.
///
/// Rules for implementors:
/// - `apply` must be deterministic: the same events in the same order must produce the same rows,
///   whether applied live or during a rebuild (use the event's `recorded_at`, never `now()`).
/// - `apply` writes only through `tx` and only to the projection's own [`tables`](Self::tables), so
///   its changes commit or roll back together with the checkpoint.
/// - Bump [`version`](Self::version) whenever `apply` or the DDL changes meaning: the definition hash
///   changes and every process rebuilds the projection from the log at its next start.
/// - Error messages must not carry personal data: they are logged and shown in status reports.
/// - Events reach `apply` without their personal part (`personal` is `None`, as for an erased
///   person): read models hold no personal data, and what a query shows of it is read from the log
///   when asked.
pub trait Projection: Send + Sync + 'static {
    /// Stable identifier, e.g. `"portfolio"`: a plain lower-case identifier (letters, digits,
    /// underscores). It keys the checkpoint row and the advisory lock, so renaming it means a new
    /// projection (rebuilt from scratch) and an orphaned row.
    fn name(&self) -> &'static str;

    /// Bumped when `apply()` or the DDL changes. A process never downgrades a projection: when the
    /// database holds a newer version (a newer binary is rolling out), an older process stands by.
    fn version(&self) -> u32;

    /// The DDL from `projections/<name>.sql`: the `CREATE TABLE` (and `CREATE INDEX`) statements of
    /// its tables. Indexes that are not unique are dropped again while a rebuild runs and built when
    /// it is done (`indexes.rs`), so `apply` must not need them to be fast. Run in one transaction with the drop of [`tables`](Self::tables), so it must not
    /// contain `BEGIN`/`COMMIT`, and objects other than tables and their indexes (types, functions)
    /// must be created idempotently (`CREATE OR REPLACE`), since only the tables are dropped.
    fn definition(&self) -> &'static str;

    /// The tables this projection owns: dropped (with `CASCADE`) on every rebuild. Plain identifiers,
    /// optionally schema-qualified (`schema.table`).
    fn tables(&self) -> &'static [&'static str];

    /// Applies one batch of events (consecutive in the log's global order) inside the batch
    /// transaction `tx`. Events of types the projection does not care about must be ignored, not
    /// rejected.
    ///
    /// A batch is the unit of work: fold it in memory and write each table once for the batch
    /// (multi-row statements), not a round trip per event. The result must not depend on where the
    /// log was cut into batches (a rebuild cuts it differently from the live runner), which holds
    /// when the batch is applied as its events would be one by one, in order.
    fn apply<'a>(
        &'a self,
        tx: &'a mut sqlx::PgConnection,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>>;
}

/// Why a projection could not advance. The runner logs it (without event payloads), records it in
/// the status, and retries with backoff; a projection is never advanced past an event it could not
/// apply, because skipping would make the read model silently differ from the log.
#[derive(Debug, Error)]
pub enum ProjectionError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Reading the log failed (including an event that cannot be upcast).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An event the projection cannot make sense of. `reason` must not contain personal data.
    #[error("event {position} ({event_type}) cannot be applied: {reason}")]
    Malformed {
        position: i64,
        event_type: String,
        reason: String,
    },
    /// The stored checkpoint is not where this process left it: another process advanced or rebuilt
    /// the projection. The batch was rolled back; the runner reloads the checkpoint and carries on.
    #[error("the checkpoint of projection {name} was moved by another process")]
    CheckpointMoved { name: String },
    /// The database holds a newer version of this projection than this binary knows.
    #[error("projection {name} is at version {stored} in the database; this binary has {ours}")]
    Outdated {
        name: String,
        stored: i32,
        ours: u32,
    },
}

impl ProjectionError {
    /// A [`ProjectionError::Malformed`] for `event`, for use inside `apply`.
    pub fn malformed(event: &RecordedEvent, reason: impl Into<String>) -> Self {
        ProjectionError::Malformed {
            position: event.position(),
            event_type: event.event_type.clone(),
            reason: reason.into(),
        }
    }
}

/// Every projection of this binary. `cim serve` runs exactly these and `cim projections` manages
/// them; the concrete read models are added here.
pub fn all() -> Vec<Arc<dyn Projection>> {
    read_models::all()
}

/// Identifies a projection's definition: `sha256(name, version, definition)` in hex. Stored in the
/// checkpoint row; when it differs from the running binary's, the projection is rebuilt.
///
/// The parts are separated by a NUL byte so that no two different triples hash the same input. This
/// function's output must never change for the same input, or every projection of every deployment
/// would be rebuilt on upgrade (a test pins one value).
pub fn definition_hash(projection: &dyn Projection) -> String {
    hash_parts(
        projection.name(),
        projection.version(),
        projection.definition(),
    )
}

fn hash_parts(name: &str, version: u32, definition: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([0]);
    hasher.update(version.to_string().as_bytes());
    hasher.update([0]);
    hasher.update(definition.as_bytes());
    hex::encode(hasher.finalize())
}

/// Checks what the runner and the rebuild rely on: names and tables are plain identifiers (they are
/// spliced into `DROP TABLE` statements, quoted) and names are unique. Names and tables are chosen by
/// programmers, never by users; a violation is a bug, reported with every problem found.
pub fn validate(projections: &[Arc<dyn Projection>]) -> Result<(), String> {
    let mut problems = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for p in projections {
        let name = p.name();
        if !is_identifier(name) {
            problems.push(format!(
                "projection name {name:?} is not a plain lower-case identifier"
            ));
        }
        if !seen.insert(name) {
            problems.push(format!("projection name {name:?} is registered twice"));
        }
        if p.tables().is_empty() {
            problems.push(format!("projection {name:?} owns no tables"));
        }
        for table in p.tables() {
            if !table.split('.').all(is_identifier) || table.split('.').count() > 2 {
                problems.push(format!(
                    "table {table:?} of projection {name:?} is not a plain identifier"
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// `[a-z_][a-z0-9_]*`, at most 63 bytes (PostgreSQL's identifier limit).
fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// `schema.table` or `table`, each part double-quoted. Only called on validated names.
pub(crate) fn quote_table(table: &str) -> String {
    table
        .split('.')
        .map(|part| format!("\"{part}\""))
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        name: &'static str,
        tables: &'static [&'static str],
    }

    impl Projection for Fake {
        fn name(&self) -> &'static str {
            self.name
        }
        fn version(&self) -> u32 {
            1
        }
        fn definition(&self) -> &'static str {
            "CREATE TABLE t (x int);"
        }
        fn tables(&self) -> &'static [&'static str] {
            self.tables
        }
        fn apply<'a>(
            &'a self,
            _tx: &'a mut sqlx::PgConnection,
            _events: &'a [RecordedEvent],
        ) -> BoxFuture<'a, Result<(), ProjectionError>> {
            Box::pin(async { Ok(()) })
        }
    }

    fn fake(name: &'static str, tables: &'static [&'static str]) -> Arc<dyn Projection> {
        Arc::new(Fake { name, tables })
    }

    #[test]
    fn every_registered_projection_is_valid() {
        validate(&all()).unwrap();
    }

    #[test]
    fn the_definition_hash_is_pinned() {
        // Changing how the hash is computed rebuilds every projection of every deployment.
        assert_eq!(
            hash_parts("portfolio", 1, "CREATE TABLE t (x int);"),
            "a0f34c511e0a1e9001d355bbb070dc8bca08a67d5f100f0ca18cada4838ad622"
        );
    }

    #[test]
    fn every_part_of_the_definition_changes_the_hash() {
        let base = hash_parts("p", 1, "CREATE TABLE t (x int);");
        assert_ne!(base, hash_parts("q", 1, "CREATE TABLE t (x int);"));
        assert_ne!(base, hash_parts("p", 2, "CREATE TABLE t (x int);"));
        assert_ne!(base, hash_parts("p", 1, "CREATE TABLE t (y int);"));
        // The separator keeps the parts apart.
        assert_ne!(hash_parts("p1", 1, "x"), hash_parts("p", 11, "x"));
    }

    #[test]
    fn names_and_tables_must_be_plain_identifiers_and_names_unique() {
        validate(&[fake(
            "portfolio",
            &["portfolio_view", "read.portfolio_items"],
        )])
        .unwrap();
        assert!(validate(&[fake("Portfolio", &["t"])]).is_err());
        assert!(validate(&[fake("p", &["t; DROP TABLE events"])]).is_err());
        assert!(validate(&[fake("p", &["a.b.c"])]).is_err());
        assert!(validate(&[fake("p", &[])]).is_err());
        assert!(validate(&[fake("p", &["t"]), fake("p", &["u"])]).is_err());
    }

    #[test]
    fn tables_are_quoted_per_part() {
        assert_eq!(quote_table("read.items"), r#""read"."items""#);
        assert_eq!(quote_table("items"), r#""items""#);
    }
}
