//! Section 5: a generated log of every event type (a demo cohort driven through the real rules,
//! copied until the log has the size asked for), a plain sequential scan of it, and a rebuild of
//! every projection over it.

use super::corpus::{self, Template};
use super::report::{LogFigure, ProjectionRebuild, RebuildFigure};
use super::stats::{rate, ratio};
use anyhow::Context;
use cim::app::{self, CommandHandler};
use cim::log;
use cim::projections::{self, LogFeed, Projection, ProjectionLock, RebuildOptions, RebuildOutcome};
use cim::store::EventStore;
use cim_demo as demo;
use futures::TryStreamExt;
use sqlx::{PgPool, Row};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Generates the log from a cohort of `students` (ten or more cover every path of the demo): returns the template cohort's certificate approvals (the export section
/// copies them) and the figures of the generation.
pub async fn generate(
    pool: &PgPool,
    events: usize,
    students: usize,
) -> anyhow::Result<(Template, LogFigure)> {
    let start = Instant::now();
    let store = EventStore::new(pool.clone(), log::upcasters());
    let handler = CommandHandler::new(store);
    let now = chrono::Utc::now();
    app::seed_pilot_programs(&handler, demo::DEMO_ADMIN, now).await?;
    let programs = demo::assign_coordinators(&handler, now).await?;
    demo::drive_cohort(&handler, &programs, students, 7, now)
        .await
        .context("driving the template cohort")?;
    let template = Template::load(pool, "stream_id LIKE 'portfolio-%'").await?;
    let approvals = Template::load(pool, "event_type = 'CertificateApproved'").await?;
    let existing: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await?;
    let missing = events.saturating_sub(existing as usize);
    template.copy_into(pool, 1, missing).await?;
    // What autovacuum would do to a log this size; without it the first reader pays for setting
    // hint bits on every page, and whichever of scan and rebuild ran first would look slower.
    sqlx::query("VACUUM (ANALYZE) events").execute(pool).await?;
    let types = corpus::event_types(pool).await?;
    let total: i64 = types.values().sum();
    let bytes: i64 = sqlx::query_scalar("SELECT pg_total_relation_size('events')")
        .fetch_one(pool)
        .await?;
    let mut names: Vec<String> = types.keys().cloned().collect();
    names.sort();
    Ok((
        approvals,
        LogFigure {
            events: total as usize,
            event_types: names,
            table_mib: bytes as f64 / (1024.0 * 1024.0),
            generate_s: start.elapsed().as_secs_f64(),
            scan_events_per_s: 0.0,
        },
    ))
}

/// Reads every event in the tailing order, decoding every column as the store would (JSON
/// included), with no store logic: what reading the log costs on its own.
pub async fn scan(pool: &PgPool) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut rows = sqlx::query(
        "SELECT position, transaction_id::text::bigint AS xid, stream_id, version, event_id,
                event_type, schema_version, payload, personal, data_subject, actor_id, actor_role,
                correlation_id, causation_id, command_id, recorded_at
         FROM events ORDER BY transaction_id, position",
    )
    .fetch(pool);
    let mut count = 0usize;
    let mut bytes = 0usize;
    while let Some(row) = rows.try_next().await? {
        let payload: serde_json::Value = row.try_get("payload")?;
        let personal: Option<serde_json::Value> = row.try_get("personal")?;
        let stream: String = row.try_get("stream_id")?;
        let event_type: String = row.try_get("event_type")?;
        let _: (i64, i64, i32, uuid::Uuid, i16) = (
            row.try_get("position")?,
            row.try_get("xid")?,
            row.try_get("version")?,
            row.try_get("event_id")?,
            row.try_get("schema_version")?,
        );
        let _: (
            Option<uuid::Uuid>,
            String,
            String,
            uuid::Uuid,
            Option<uuid::Uuid>,
            uuid::Uuid,
        ) = (
            row.try_get("data_subject")?,
            row.try_get("actor_id")?,
            row.try_get("actor_role")?,
            row.try_get("correlation_id")?,
            row.try_get("causation_id")?,
            row.try_get("command_id")?,
        );
        let _: chrono::DateTime<chrono::Utc> = row.try_get("recorded_at")?;
        bytes += stream.len() + event_type.len() + usize::from(payload.is_object());
        bytes += usize::from(personal.is_some());
        count += 1;
    }
    std::hint::black_box(bytes);
    Ok(rate(count, start.elapsed()))
}

/// Rebuilds every projection, first all at once (as `cim serve` rebuilds changed ones, each in its
/// own task, sharing one read of the log), then each alone (as after a change to one projection's
/// definition: `cim projections rebuild NAME`, or `cim serve` rebuilding just that one). Each holds
/// its lock as `cim projections rebuild` does. After `budget` a pass is interrupted between batches
/// (as Ctrl-C would) and the rates are those of the part done: the generated log is the same
/// cohort over and over, so any stretch of it is representative, and a slow projection cannot hold
/// the whole bench hostage. An interrupted rebuild has not built its deferred indexes, so it is
/// reported as incomplete.
pub async fn rebuild_all(
    pool: &PgPool,
    url: &str,
    scan_events_per_s: f64,
    budget: Duration,
) -> anyhow::Result<RebuildFigure> {
    let (projections, seconds) = rebuild_set(pool, url, projections::all(), budget).await?;
    let mut alone = Vec::new();
    for projection in projections::all() {
        alone.extend(rebuild_set(pool, url, vec![projection], budget).await?.0);
    }
    // All of them are done only when the slowest is: the rebuild runs at the slowest one's rate.
    let events_per_s = slowest(&projections);
    let alone_events_per_s = slowest(&alone);
    Ok(RebuildFigure {
        complete: projections.iter().all(|p| p.complete),
        projections,
        seconds,
        events_per_s,
        ratio_to_scan: ratio(events_per_s, scan_events_per_s),
        alone_complete: alone.iter().all(|p| p.complete),
        alone,
        alone_events_per_s,
        alone_ratio_to_scan: ratio(alone_events_per_s, scan_events_per_s),
    })
}

/// The rate of the slowest of `rebuilds`, 0 when there are none.
fn slowest(rebuilds: &[ProjectionRebuild]) -> f64 {
    let slowest = rebuilds
        .iter()
        .map(|p| p.events_per_s)
        .fold(f64::INFINITY, f64::min);
    if slowest.is_finite() { slowest } else { 0.0 }
}

/// Rebuilds `set` at once, through one feed (as `cim serve`'s runner reads the log once per
/// batch for all of them), each in its own task; returns each one's figures and the wall time.
async fn rebuild_set(
    pool: &PgPool,
    url: &str,
    set: Vec<Arc<dyn Projection>>,
    budget: Duration,
) -> anyhow::Result<(Vec<ProjectionRebuild>, f64)> {
    let feed = LogFeed::new(EventStore::new(pool.clone(), log::upcasters()));
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let timer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(budget).await;
            stop.store(true, Ordering::Relaxed);
        })
    };
    let mut tasks = Vec::new();
    for projection in set {
        let (feed, pool, url, stop) = (feed.clone(), pool.clone(), url.to_owned(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let name = projection.name().to_owned();
            let mut lock = ProjectionLock::connect(&url, &name).await?;
            anyhow::ensure!(lock.try_acquire().await?, "projection {name} is locked");
            let began = Instant::now();
            let outcome = projections::rebuild(
                &feed,
                &pool,
                &mut lock,
                projection.as_ref(),
                RebuildOptions {
                    restart: true,
                    ..RebuildOptions::default()
                },
                &stop,
                &mut |_| {},
            )
            .await
            .with_context(|| format!("rebuilding {name}"))?;
            let elapsed = began.elapsed();
            lock.release().await;
            let (applied, complete) = match outcome {
                RebuildOutcome::Completed { events_applied, .. } => (events_applied, true),
                RebuildOutcome::Interrupted { events_applied, .. } => (events_applied, false),
            };
            Ok::<_, anyhow::Error>((name, applied as usize, elapsed, complete))
        }));
    }
    let mut rebuilds = Vec::new();
    for task in tasks {
        let (name, applied, elapsed, complete) = task.await??;
        rebuilds.push(ProjectionRebuild {
            name,
            events: applied,
            complete,
            seconds: elapsed.as_secs_f64(),
            events_per_s: rate(applied, elapsed),
        });
    }
    timer.abort();
    Ok((rebuilds, start.elapsed().as_secs_f64()))
}
