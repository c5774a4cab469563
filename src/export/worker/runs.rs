//! The record of export runs (`export_runs`, `export_run_totals`; see
//! `migrations/20261208000002_export_runs.sql`): one row per [`run_export`](super::schedule::run_export),
//! so that operations can tell from the database whether the export still succeeds
//! (`ops::health` reads it for `/metrics`, `/readyz` and the health watch).
//!
//! Recording is best effort: a run whose record cannot be written (the database went away at the
//! end of the run) keeps its outcome, and the missing row shows as "no success lately", which is
//! what an operator should look at then anyway.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::{RunOutcome, WorkerError};

/// How long run rows are kept: long enough for "how did the export do this quarter", short enough
/// that the table stays a few hundred rows per process. The newest success is always kept, so the
/// failures since it can still be counted after a long outage.
const KEEP_DAYS: i32 = 90;

/// How a run ended, as stored in `export_runs.outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunRecord {
    Succeeded,
    /// Another process held the export lock.
    Busy,
    /// Stopped on an error with this stable code ([`WorkerError::code`]).
    Failed(&'static str),
}

impl RunRecord {
    /// The record of a run's result.
    pub fn of(result: &Result<RunOutcome, WorkerError>) -> Self {
        match result {
            Ok(RunOutcome::Ran { .. }) => RunRecord::Succeeded,
            Ok(RunOutcome::Busy) => RunRecord::Busy,
            Err(e) => RunRecord::Failed(e.code()),
        }
    }

    fn outcome(self) -> &'static str {
        match self {
            RunRecord::Succeeded => "succeeded",
            RunRecord::Busy => "busy",
            RunRecord::Failed(_) => "failed",
        }
    }

    fn error_code(self) -> Option<&'static str> {
        match self {
            RunRecord::Failed(code) => Some(code),
            _ => None,
        }
    }
}

/// Records one run that started at `started_at` and ends now, counts it in its outcome's total,
/// and forgets rows older than [`KEEP_DAYS`] (except the newest success). One statement, so the
/// row and the total never disagree.
pub async fn record_run(
    pool: &PgPool,
    started_at: DateTime<Utc>,
    record: RunRecord,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"
        WITH recorded AS (
            INSERT INTO export_runs (started_at, finished_at, outcome, error_code)
            VALUES ($1, clock_timestamp(), $2, $3)
        ), counted AS (
            UPDATE export_run_totals SET runs = runs + 1 WHERE outcome = $2
        )
        -- The rows this statement inserts are invisible to its own DELETE, which is fine: they are
        -- new. `IS DISTINCT FROM` keeps every old row when there was never a success (NULL).
        DELETE FROM export_runs
        WHERE finished_at < now() - make_interval(days => $4)
          AND id IS DISTINCT FROM (
              SELECT id FROM export_runs WHERE outcome = 'succeeded'
              ORDER BY finished_at DESC LIMIT 1
          )
        "#,
        started_at,
        record.outcome(),
        record.error_code(),
        KEEP_DAYS,
    )
    .execute(pool)
    .await?;
    Ok(())
}
