//! The projection runner's guarantees against a real PostgreSQL (see `shared/docs/event-store.md`,
//! guarantees 5-7): exactly-once application under concurrent appends, rebuild = live, one owner per
//! projection across processes with takeover, rebuild on definition change, read-your-writes waits,
//! and recovery after the database drops every connection.
//!
//! Timing is never asserted: every wait is a bounded loop with a generous limit, so a loaded machine
//! makes these tests slower, not red.

use crate::support;

use cim::db;
use cim::projections::{
    self, LogFeed, Phase, Projection, ProjectionError, ProjectionLock, ProjectionRunner,
    RebuildOptions, RebuildOutcome, RebuildProgress, RunnerConfig, RunnerHandle, Scope, Timeout,
};
use cim::store::{
    ActorRole, AppendOutcome, Checkpoint, EventStore, ExpectedVersion, Metadata, NewEvent,
    RecordedEvent, Upcasters,
};
use futures::future::BoxFuture;
use serde_json::json;
use sqlx::{Connection, PgConnection, PgPool};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use support::eventually;
use uuid::Uuid;

mod lifecycle;
mod live;

/// Generous bound for anything that "eventually" happens.
const PATIENCE: Duration = Duration::from_secs(60);

const NAME: &str = "test_stream_counts";

/// Version 1: events per stream, and one row per applied event (to prove nothing is applied twice).
const DDL_V1: &str = "
CREATE TABLE test_stream_counts (
    stream_id      TEXT   PRIMARY KEY,
    events         BIGINT NOT NULL,
    last_position  BIGINT NOT NULL
);
CREATE TABLE test_applied_events (
    position   BIGINT  NOT NULL,
    stream_id  TEXT    NOT NULL,
    version    INTEGER NOT NULL
);
";

/// Version 2 also remembers each stream's last event type: a definition change that needs a rebuild
/// to fill the new column for old events.
const DDL_V2: &str = "
CREATE TABLE test_stream_counts (
    stream_id      TEXT   PRIMARY KEY,
    events         BIGINT NOT NULL,
    last_position  BIGINT NOT NULL,
    last_type      TEXT   NOT NULL
);
CREATE TABLE test_applied_events (
    position   BIGINT  NOT NULL,
    stream_id  TEXT    NOT NULL,
    version    INTEGER NOT NULL
);
";

/// The test read model: counts events per stream.
struct StreamCounts {
    version: u32,
}

impl Projection for StreamCounts {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        self.version
    }

    fn definition(&self) -> &'static str {
        if self.version == 1 { DDL_V1 } else { DDL_V2 }
    }

    fn tables(&self) -> &'static [&'static str] {
        &["test_stream_counts", "test_applied_events"]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        // A statement per event: this read model tests the runner, not how to write a batch.
        Box::pin(async move {
            for event in events {
                if self.version == 1 {
                    sqlx::query(
                        "INSERT INTO test_stream_counts (stream_id, events, last_position)
                     VALUES ($1, 1, $2)
                     ON CONFLICT (stream_id) DO UPDATE
                         SET events = test_stream_counts.events + 1,
                             last_position = EXCLUDED.last_position",
                    )
                    .bind(&event.stream_id)
                    .bind(event.position())
                    .execute(&mut *tx)
                    .await?;
                } else {
                    sqlx::query(
                    "INSERT INTO test_stream_counts (stream_id, events, last_position, last_type)
                     VALUES ($1, 1, $2, $3)
                     ON CONFLICT (stream_id) DO UPDATE
                         SET events = test_stream_counts.events + 1,
                             last_position = EXCLUDED.last_position,
                             last_type = EXCLUDED.last_type",
                )
                .bind(&event.stream_id)
                .bind(event.position())
                .bind(&event.event_type)
                .execute(&mut *tx)
                .await?;
                }
                sqlx::query(
                "INSERT INTO test_applied_events (position, stream_id, version) VALUES ($1, $2, $3)",
            )
            .bind(event.position())
            .bind(&event.stream_id)
            .bind(event.version)
            .execute(&mut *tx)
            .await?;
            }
            Ok(())
        })
    }
}

fn projection(version: u32) -> Arc<dyn Projection> {
    Arc::new(StreamCounts { version })
}

/// Defaults, with the waits that only cost test time shortened (still far from busy-looping).
fn config() -> RunnerConfig {
    RunnerConfig {
        poll_interval: Duration::from_millis(100),
        lock_retry: Duration::from_millis(200),
        lock_check_interval: Duration::from_millis(500),
        outdated_retry: Duration::from_millis(500),
        backoff_max: Duration::from_secs(1),
        ..RunnerConfig::default()
    }
}

/// A runner on a pool of its own, as a separate `cim serve` process would have.
async fn start(db: &support::TestDb, projections: Vec<Arc<dyn Projection>>) -> RunnerHandle {
    // The runner's log lines, shown for failing tests (CIM_LOG=info for more).
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CIM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    let pool = db::connect(&db.url, 4).await.unwrap();
    let store = EventStore::new(pool.clone(), Upcasters::new());
    ProjectionRunner::start_with(config(), store, pool, &db.url, projections)
}

fn store(db: &support::TestDb) -> EventStore {
    EventStore::new(db.pool.clone(), Upcasters::new())
}

fn meta() -> Metadata {
    Metadata {
        actor_id: "staff-1".into(),
        actor_role: ActorRole::Coordinator,
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        command_id: Uuid::now_v7(),
    }
}

fn events(kind: &str, n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|i| NewEvent {
            event_id: Uuid::now_v7(),
            event_type: kind.to_owned(),
            schema_version: 1,
            payload: json!({ "i": i }),
            personal: None,
            data_subject: None,
        })
        .collect()
}

/// Appends `n` events to `stream` as one command, retrying while the database is unreachable (the
/// restart test kills every connection, including the pool's).
async fn append(store: &EventStore, stream: &str, kind: &str, n: usize) -> AppendOutcome {
    let batch = events(kind, n);
    let metadata = meta();
    let mut attempts = 0;
    loop {
        match store
            .append(stream, ExpectedVersion::Any, &batch, &metadata)
            .await
        {
            Ok(outcome) => return outcome,
            Err(e) if attempts < 100 => {
                attempts += 1;
                eprintln!("append failed ({e}); retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("append kept failing: {e}"),
        }
    }
}

/// Events per stream according to the log.
async fn log_counts(pool: &PgPool) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT stream_id, count(*) FROM events GROUP BY stream_id ORDER BY stream_id")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Events per stream according to the read model.
async fn projected_counts(pool: &PgPool) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT stream_id, events FROM test_stream_counts ORDER BY stream_id")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Asserts that the read model holds every event of the log exactly once.
async fn assert_exactly_once(pool: &PgPool) {
    let (applied, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT position) FROM test_applied_events")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(applied, distinct, "some events were applied twice");
    let missing: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events e
         WHERE NOT EXISTS (SELECT 1 FROM test_applied_events a WHERE a.position = e.position)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(missing, 0, "some events were never applied");
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(applied, logged);
    assert_eq!(projected_counts(pool).await, log_counts(pool).await);
}

/// The read model's tables as text, row by row, in a fixed order.
async fn dump(pool: &PgPool) -> (String, String) {
    let counts: Option<String> = sqlx::query_scalar(
        "SELECT string_agg(t::text, E'\\n' ORDER BY stream_id) FROM test_stream_counts t",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let applied: Option<String> = sqlx::query_scalar(
        "SELECT string_agg(t::text, E'\\n' ORDER BY position) FROM test_applied_events t",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    (counts.unwrap_or_default(), applied.unwrap_or_default())
}

fn owned(handle: &RunnerHandle) -> bool {
    handle.status().projections[0].owned
}
