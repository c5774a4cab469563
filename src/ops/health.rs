//! One reading of the health of every moving part, from the database ([`snapshot`]).
//!
//! Each part is one query, cheap enough to run on every `/metrics` scrape and every `/readyz`
//! probe: the projections' lag is an index range scan over the events after their checkpoints (as
//! many rows as they are behind), the export runs are a pruned table of a few hundred rows, and the
//! certificates and the outbox are scanned whole (thousands of rows a year). Ages are computed with
//! the database's clock, so processes with skewed clocks report the same figures.
//!
//! Nothing personal is read: counts, positions, times and the stable error codes of export runs.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use std::time::Duration;

use crate::projections::read_models;

/// The health of the service's parts at one moment, read by [`snapshot`]. Plain figures: what
/// they mean for readiness and alerts is decided by [`crate::ops::concerns`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthSnapshot {
    /// The database's clock when the readings were taken: what every age below is measured from.
    pub taken_at: DateTime<Utc>,
    /// Every read model this binary runs that the database has a checkpoint for, by name. A read
    /// model never created yet (the runner creates it when it first starts) is not listed.
    pub projections: Vec<ProjectionHealth>,
    pub export: ExportHealth,
    /// `None` while the registrar read model (`rm_certificates`) does not exist yet.
    pub ladok: Option<LadokBacklog>,
    pub outbox: OutboxHealth,
}

/// Where one read model stands against the log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectionHealth {
    /// The projection's name (`Projection::name`), e.g. `registrar`.
    pub name: String,
    /// The global position of the last event applied (0 before the first).
    pub position: i64,
    /// Events in the log after the checkpoint (also of transactions still committing: a figure for
    /// people, as `cim projections status` shows it).
    pub behind: i64,
    /// How long ago the oldest of those events was recorded; `None` when nothing is behind. A
    /// projection that is stuck shows this growing while `behind` may stay small.
    pub oldest_unapplied_age: Option<Duration>,
    /// Being rebuilt from the start of the log: behind by design until it catches up.
    pub rebuilding: bool,
}

/// What the export worker's recorded runs say (`export_runs`, written by `run_export`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportHealth {
    /// When the last successful run ended; `None` if none is recorded.
    pub last_success_at: Option<DateTime<Utc>>,
    /// When the last run that did work ended, successful or not (runs that found another process
    /// holding the export lock are not counted).
    pub last_run_at: Option<DateTime<Utc>>,
    /// The error code of the last run that did work, if it failed (e.g. `database`, `io`).
    pub last_error_code: Option<String>,
    /// Failed runs since the last success (all recorded failed runs if none succeeded).
    pub consecutive_failures: i64,
    /// Runs ever recorded, by outcome (never decreases: a Prometheus counter).
    pub runs: ExportRunTotals,
}

/// Runs of the export worker ever recorded, by outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExportRunTotals {
    pub succeeded: i64,
    pub failed: i64,
    /// Runs that did nothing because another process held the export lock.
    pub busy: i64,
}

/// Approved certificates that Ladok does not have yet (`rm_certificates`), by their Ladok status.
/// Certificates the export refused (their holder was erased) are not waiting and not counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LadokBacklog {
    /// Not tried yet: waiting for the next export run (or Ladok delivery is switched off).
    pub pending: i64,
    /// A run failed to deliver them with a retryable error (Ladok unavailable, authentication).
    pub retrying: i64,
    /// Refused by a Ladok rule: wait for the registrar.
    pub failed: i64,
    /// How long ago the oldest of them was approved; `None` when none waits.
    pub oldest_age: Option<Duration>,
}

impl LadokBacklog {
    /// Every certificate waiting for Ladok.
    pub fn waiting(&self) -> i64 {
        self.pending + self.retrying + self.failed
    }
}

/// The notifications' outbox (`outbox`, written by `notify`), by message state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxHealth {
    pub pending: i64,
    pub sent: i64,
    /// Given up after the last retry: shown, never dropped, until someone deals with them.
    pub failed: i64,
    pub cancelled: i64,
    /// Pending messages that have failed at least once: the SMTP server is refusing or away.
    pub retrying: i64,
    /// How long ago the oldest pending message was created; `None` when none is pending.
    pub oldest_pending_age: Option<Duration>,
    /// Messages given up in the last 24 hours: what the watch warns of (older failures stay in
    /// `failed` and in the admins' listing, without a warning every day).
    pub failed_last_day: i64,
    /// Events the outbox's log consumer has not decided yet, and the age of the oldest of them.
    pub consumer_behind: i64,
    pub consumer_oldest_undecided_age: Option<Duration>,
}

/// Reads the health of every part (one query each). Fails only when the database cannot be
/// read; a read model that does not exist yet is reported as absent instead.
pub async fn snapshot(pool: &PgPool) -> Result<HealthSnapshot, sqlx::Error> {
    let taken_at = sqlx::query_scalar!(r#"SELECT now() AS "now!""#)
        .fetch_one(pool)
        .await?;
    Ok(HealthSnapshot {
        taken_at,
        projections: projections(pool).await?,
        export: export(pool).await?,
        ladok: ladok(pool).await?,
        outbox: outbox(pool).await?,
    })
}

/// Seconds as the database computed them, as a duration (never negative: a row committed by a
/// transaction that started after ours may be "younger than now").
fn age(seconds: Option<f64>) -> Option<Duration> {
    seconds.map(|s| Duration::from_secs_f64(s.max(0.0)))
}

async fn projections(pool: &PgPool) -> Result<Vec<ProjectionHealth>, sqlx::Error> {
    // Only the read models this binary runs: a row left by a projection since removed from the
    // code would otherwise show as lagging for ever.
    let names: Vec<&'static str> = read_models::all().iter().map(|p| p.name()).collect();
    // One lateral scan per projection over the events after its checkpoint (events_tail_idx):
    // as many rows as it is behind, none when caught up. transaction_id is xid8 in `events` and
    // bigint in the checkpoint; bigint reaches xid8 through text (as in src/store/tail.rs).
    let rows = sqlx::query!(
        r#"SELECT c.name, c.position, c.status = 'rebuilding' AS "rebuilding!",
                  after.behind AS "behind!",
                  extract(epoch FROM now() - after.oldest)::float8 AS oldest_seconds
           FROM projection_checkpoints c
           CROSS JOIN LATERAL (
               SELECT count(*) AS behind, min(e.recorded_at) AS oldest
               FROM events e
               WHERE (e.transaction_id, e.position) > (c.transaction_id::text::xid8, c.position)
           ) after
           WHERE c.name = ANY($1)
           ORDER BY c.name"#,
        &names as &[&str],
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ProjectionHealth {
            name: r.name,
            position: r.position,
            behind: r.behind,
            oldest_unapplied_age: age(r.oldest_seconds),
            rebuilding: r.rebuilding,
        })
        .collect())
}

async fn export(pool: &PgPool) -> Result<ExportHealth, sqlx::Error> {
    // export_runs is pruned to 90 days (keeping the newest success), so these are small scans;
    // the totals are the never-pruned counters.
    let r = sqlx::query!(
        r#"WITH success AS (
               SELECT max(finished_at) AS at FROM export_runs WHERE outcome = 'succeeded'
           ), last_run AS (
               SELECT finished_at, error_code FROM export_runs WHERE outcome <> 'busy'
               ORDER BY finished_at DESC LIMIT 1
           )
           SELECT (SELECT at FROM success) AS last_success_at,
                  (SELECT finished_at FROM last_run) AS last_run_at,
                  (SELECT error_code FROM last_run) AS last_error_code,
                  (SELECT count(*) FROM export_runs
                   WHERE outcome = 'failed'
                     AND finished_at > COALESCE((SELECT at FROM success), '-infinity'))
                      AS "consecutive_failures!",
                  (SELECT runs FROM export_run_totals WHERE outcome = 'succeeded') AS "succeeded!",
                  (SELECT runs FROM export_run_totals WHERE outcome = 'failed') AS "failed!",
                  (SELECT runs FROM export_run_totals WHERE outcome = 'busy') AS "busy!""#
    )
    .fetch_one(pool)
    .await?;
    Ok(ExportHealth {
        last_success_at: r.last_success_at,
        last_run_at: r.last_run_at,
        last_error_code: r.last_error_code,
        consecutive_failures: r.consecutive_failures,
        runs: ExportRunTotals {
            succeeded: r.succeeded,
            failed: r.failed,
            busy: r.busy,
        },
    })
}

async fn ladok(pool: &PgPool) -> Result<Option<LadokBacklog>, sqlx::Error> {
    // A full scan of rm_certificates (a few thousand rows a year); its partial index covers only
    // 'pending', and 'retrying'/'failed' rows are what matter most here.
    let result = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE ladok_status = 'pending') AS "pending!",
                  count(*) FILTER (WHERE ladok_status = 'retrying') AS "retrying!",
                  count(*) FILTER (WHERE ladok_status = 'failed') AS "failed!",
                  extract(epoch FROM now() - min(approved_at))::float8 AS oldest_seconds
           FROM rm_certificates
           WHERE status = 'approved' AND ladok_status <> 'delivered'
             AND export_status <> 'refused'"#
    )
    .fetch_one(pool)
    .await;
    match result {
        Ok(r) => Ok(Some(LadokBacklog {
            pending: r.pending,
            retrying: r.retrying,
            failed: r.failed,
            oldest_age: age(r.oldest_seconds),
        })),
        // The read model's tables are made by the projection runner, not by a migration: a
        // database whose runner has not started yet has none.
        Err(e) if is_undefined_table(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// SQLSTATE 42P01 (undefined_table).
fn is_undefined_table(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| code == "42P01")
}

async fn outbox(pool: &PgPool) -> Result<OutboxHealth, sqlx::Error> {
    // A full scan of the outbox: every message stays as a record of what was sent. Fine for the
    // tens of thousands of messages a year the service sends; if it grows past a million rows,
    // count the sent ones from a table of totals as the export runs do.
    let r = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE state = 'pending') AS "pending!",
                  count(*) FILTER (WHERE state = 'sent') AS "sent!",
                  count(*) FILTER (WHERE state = 'failed') AS "failed!",
                  count(*) FILTER (WHERE state = 'cancelled') AS "cancelled!",
                  count(*) FILTER (WHERE state = 'pending' AND attempts > 0) AS "retrying!",
                  -- A failed message's next_attempt_at is when it was given up.
                  count(*) FILTER (WHERE state = 'failed' AND next_attempt_at > now() - interval '1 day')
                      AS "failed_last_day!",
                  extract(epoch FROM now() - min(created_at) FILTER (WHERE state = 'pending'))::float8
                      AS oldest_pending_seconds
           FROM outbox"#
    )
    .fetch_one(pool)
    .await?;
    // The log consumer that decides the messages, read like a projection's checkpoint (above).
    let consumer = sqlx::query!(
        r#"SELECT after.behind AS "behind!",
                  extract(epoch FROM now() - after.oldest)::float8 AS oldest_seconds
           FROM outbox_checkpoint c
           CROSS JOIN LATERAL (
               SELECT count(*) AS behind, min(e.recorded_at) AS oldest
               FROM events e
               WHERE (e.transaction_id, e.position) > (c.transaction_id::text::xid8, c.position)
           ) after
           WHERE c.name = 'outbox'"#
    )
    .fetch_optional(pool)
    .await?;
    Ok(OutboxHealth {
        pending: r.pending,
        sent: r.sent,
        failed: r.failed,
        cancelled: r.cancelled,
        retrying: r.retrying,
        oldest_pending_age: age(r.oldest_pending_seconds),
        failed_last_day: r.failed_last_day,
        consumer_behind: consumer.as_ref().map_or(0, |c| c.behind),
        consumer_oldest_undecided_age: consumer.and_then(|c| age(c.oldest_seconds)),
    })
}
