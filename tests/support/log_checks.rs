//! What must hold of the log and the read models after any fault, checked against the database
//! itself: no partial command, every event applied once by every projection, and read models equal
//! to a rebuild from the log.

use cim::projections::{self, Projection, ProjectionLock, RebuildOptions, checkpoint, read_models};
use cim::store::EventStore;
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

pub async fn event_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// `sent` is in the log exactly once: one event under each command id it is stored as. `what` says
/// why it must be (how it was answered).
pub async fn assert_stored_once(pool: &PgPool, sent: &super::flow::Sent, what: &str) {
    let stored = events_per_command(pool, &sent.stored_as).await;
    assert!(
        stored.iter().all(|&n| n == 1),
        "POST {} {what}, but the log holds {stored:?} events of it",
        sent.path
    );
}

/// How many events are stored under each of `command_ids` (0 for an id not in the log).
pub async fn events_per_command(pool: &PgPool, command_ids: &[uuid::Uuid]) -> Vec<i64> {
    let mut out = Vec::with_capacity(command_ids.len());
    for id in command_ids {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE command_id = $1")
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap();
        out.push(n);
    }
    out
}

/// Every command id in the log has exactly the events its idempotency row says it produced (the
/// versions and positions from first to last, all of them, in its stream), and no event is stored
/// without such a row. A command cut short would show as a row without its events, or events
/// without their row, or a gap.
pub async fn assert_no_partial_command(pool: &PgPool) {
    let broken: Vec<(Option<uuid::Uuid>, Option<uuid::Uuid>)> = sqlx::query_as(
        "WITH stored AS (
             SELECT command_id, stream_id, count(*) AS n,
                    min(version) AS first_version, max(version) AS last_version,
                    min(position) AS first_position, max(position) AS last_position
             FROM events GROUP BY command_id, stream_id
         )
         SELECT c.command_id, s.command_id
         FROM commands c FULL JOIN stored s USING (command_id)
         WHERE c.command_id IS NULL OR s.command_id IS NULL
            OR s.stream_id <> c.stream_id
            OR s.n <> c.last_version - c.first_version + 1
            OR (s.first_version, s.last_version) <> (c.first_version, c.last_version)
            OR (s.first_position, s.last_position) <> (c.first_position, c.last_position)",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(broken.is_empty(), "partial commands in the log: {broken:?}");
}

/// Every projection has applied every event exactly once: its checkpoint counts as many events as
/// the log holds, and the audit has one row per event position, no more, none missing.
pub async fn assert_applied_once(pool: &PgPool) {
    let events = event_count(pool).await;
    for p in read_models::all() {
        let stored = checkpoint::load(pool, p.name()).await.unwrap().unwrap();
        assert_eq!(
            stored.events_applied,
            events,
            "{}: events applied",
            p.name()
        );
    }
    let (rows, distinct, missing): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM rm_audit),
                (SELECT count(DISTINCT position) FROM rm_audit),
                (SELECT count(*) FROM events e
                 WHERE NOT EXISTS (SELECT 1 FROM rm_audit a WHERE a.position = e.position))",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        (rows, distinct, missing),
        (events, events, 0),
        "rm_audit: one row per event"
    );
}

/// Waits until the process at `base` reports every projection caught up (`/metrics`: no lag)
/// and every checkpoint has counted every event of the log.
pub async fn wait_caught_up(pool: &PgPool, base: &str) {
    let http = reqwest::Client::new();
    let names: Vec<&str> = read_models::all().iter().map(|p| p.name()).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = match http.get(format!("{base}/metrics")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let lags: Vec<(String, f64)> = metrics
            .lines()
            .filter_map(|l| l.strip_prefix("cim_projection_lag_events{projection=\""))
            .filter_map(|l| {
                let (name, value) = l.split_once("\"} ")?;
                Some((name.to_owned(), value.trim().parse().ok()?))
            })
            .collect();
        let reported = names
            .iter()
            .all(|n| lags.iter().any(|(name, lag)| name == n && *lag == 0.0));
        let events = event_count(pool).await;
        let applied: Vec<i64> = sqlx::query_scalar(
            "SELECT events_applied FROM projection_checkpoints WHERE status = 'live'",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        if reported && applied.len() == names.len() && applied.iter().all(|&n| n == events) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the projections of {base} did not catch up: lags {lags:?}, applied {applied:?} of {events}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every row of every table of `projections`, as JSON text, in a stable order.
pub async fn snapshot(
    pool: &PgPool,
    projections: &[Arc<dyn Projection>],
) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for p in projections {
        for table in p.tables() {
            let rows: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT row_to_json(t)::text FROM {table} t ORDER BY 1"
            ))
            .fetch_all(pool)
            .await
            .unwrap();
            out.push((table.to_string(), rows));
        }
    }
    out
}

/// The read models as they stand equal a rebuild of every projection from position 0: a
/// double-applied or skipped event anywhere shows as a differing row. Run with no `cim serve` on
/// the database (the rebuild takes the projections' locks).
pub async fn assert_equal_to_rebuild(store: &EventStore, url: &str) {
    let pool = store.pool();
    super::settle(store).await;
    let live = snapshot(pool, &read_models::all()).await;
    let events = event_count(pool).await;
    for p in read_models::all() {
        rebuild_from_start(store, url, p.as_ref(), 500).await;
        let stored = checkpoint::load(pool, p.name()).await.unwrap().unwrap();
        assert_eq!(stored.events_applied, events, "{}: rebuilt", p.name());
    }
    let rebuilt = snapshot(pool, &read_models::all()).await;
    assert!(
        live.iter().any(|(_, rows)| !rows.is_empty()),
        "no read model rows"
    );
    for ((table, live_rows), (_, rebuilt_rows)) in live.iter().zip(&rebuilt) {
        assert_eq!(
            live_rows, rebuilt_rows,
            "{table}: live rows differ from a rebuild"
        );
    }
}

/// Rebuilds `projection` from position 0 in batches of `batch_size`, as `cim projections rebuild
/// --restart` does: under its lock (connected on `url`), which nothing else may hold.
pub async fn rebuild_from_start(
    store: &EventStore,
    url: &str,
    projection: &dyn Projection,
    batch_size: i64,
) {
    let mut lock = ProjectionLock::connect(url, projection.name())
        .await
        .unwrap();
    assert!(
        lock.try_acquire().await.unwrap(),
        "{} is still owned",
        projection.name()
    );
    projections::rebuild(
        &projections::LogFeed::new(store.clone()),
        store.pool(),
        &mut lock,
        projection,
        RebuildOptions {
            restart: true,
            batch_size,
        },
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .await
    .unwrap();
    lock.release().await;
}
