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
    self, Phase, Projection, ProjectionError, ProjectionLock, ProjectionRunner, RebuildOptions,
    RebuildOutcome, RebuildProgress, RunnerConfig, RunnerHandle, Scope, Timeout,
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
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catches_up_while_writers_append_and_applies_every_event_once() {
    let db = support::fresh().await;
    let store = store(&db);
    // History from before the runner existed: back-filled at its first start.
    for i in 0..10 {
        append(&store, &format!("early-{}", i % 3), "Early", 2).await;
    }
    let runner = start(&db, vec![projection(1)]).await;

    let writers = (0..6).map(|w| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut last = Checkpoint::START;
            for i in 0..25 {
                let outcome =
                    append(&store, &format!("w{w}-{}", i % 4), "Written", 1 + i % 3).await;
                last = last.max(outcome.checkpoint);
            }
            last
        })
    });
    let mut target = Checkpoint::START;
    for writer in writers {
        target = target.max(writer.await.unwrap());
    }

    runner
        .wait_for(Scope::All, target, PATIENCE)
        .await
        .expect("the projection reaches the last append");
    assert_exactly_once(&db.pool).await;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    // The local status follows the commit a moment later than the database does.
    eventually("the status shows every event applied, live", || async {
        let state = &runner.status().projections[0];
        state.owned && state.events_applied == Some(total) && state.phase == Some(Phase::Live)
    })
    .await;
    runner.shutdown().await;
    db.drop().await;
}

#[tokio::test]
async fn a_rebuild_equals_the_live_read_model_and_resumes_after_an_interruption() {
    let db = support::fresh().await;
    let store = store(&db);
    let runner = start(&db, vec![projection(1)]).await;
    let mut target = Checkpoint::START;
    for i in 0..60 {
        let outcome = append(&store, &format!("s-{}", i % 7), "Something", 1 + i % 4).await;
        target = outcome.checkpoint;
    }
    runner.wait_for(Scope::All, target, PATIENCE).await.unwrap();
    // Stopping the runner releases the projection's lock for the rebuild.
    runner.shutdown().await;
    let live = dump(&db.pool).await;
    assert!(!live.0.is_empty());

    let p = projection(1);
    let mut lock = ProjectionLock::connect(&db.url, NAME).await.unwrap();
    assert!(lock.try_acquire().await.unwrap());
    let small_batches = RebuildOptions {
        restart: false,
        batch_size: 7,
    };

    // Interrupted after its second batch: the projection stays 'rebuilding' at that checkpoint.
    // (`restart`, because the runner may have been stopped before it first saw the end of the log,
    // leaving the projection 'rebuilding', which a plain rebuild would resume.)
    let stop = AtomicBool::new(false);
    let mut batches = 0;
    let outcome = projections::rebuild(
        &store,
        &db.pool,
        &mut lock,
        p.as_ref(),
        RebuildOptions {
            restart: true,
            ..small_batches
        },
        &stop,
        &mut |progress| {
            if let RebuildProgress::Batch { .. } = progress {
                batches += 1;
                if batches == 2 {
                    stop.store(true, Ordering::SeqCst);
                }
            }
        },
    )
    .await
    .unwrap();
    let RebuildOutcome::Interrupted { events_applied, .. } = outcome else {
        panic!("expected an interruption, got {outcome:?}");
    };
    assert_eq!(events_applied, 14);
    let stored = projections::checkpoint::load(&db.pool, NAME)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.phase, stored.events_applied),
        (Phase::Rebuilding, 14)
    );

    // Started again, it resumes there instead of starting over.
    let stop = AtomicBool::new(false);
    let mut resumed_from = None;
    let outcome = projections::rebuild(
        &store,
        &db.pool,
        &mut lock,
        p.as_ref(),
        small_batches,
        &stop,
        &mut |progress| {
            if let RebuildProgress::Started {
                resumed_from: from, ..
            } = progress
            {
                resumed_from = from;
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(resumed_from, Some(stored.checkpoint));
    assert!(matches!(outcome, RebuildOutcome::Completed { .. }));
    assert_eq!(dump(&db.pool).await, live, "rebuilt = live, row for row");

    // A full rebuild of a live projection starts from scratch, and also equals the live one.
    let outcome = projections::rebuild(
        &store,
        &db.pool,
        &mut lock,
        p.as_ref(),
        RebuildOptions::default(),
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .await
    .unwrap();
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        RebuildOutcome::Completed {
            checkpoint: target,
            events_applied: total
        }
    );
    assert_eq!(dump(&db.pool).await, live, "rebuilt = live, row for row");
    let stored = projections::checkpoint::load(&db.pool, NAME)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.phase, Phase::Live);
    lock.release().await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_apply_each_event_once_and_one_takes_over_from_the_other() {
    let db = support::fresh().await;
    let store = store(&db);
    let a = start(&db, vec![projection(1)]).await;
    let b = start(&db, vec![projection(1)]).await;
    eventually("one of the two runners owns the projection", || async {
        owned(&a) || owned(&b)
    })
    .await;
    assert!(
        !(owned(&a) && owned(&b)),
        "both runners claim the projection"
    );

    let mut target = Checkpoint::START;
    for i in 0..40 {
        target = append(&store, &format!("s-{}", i % 5), "First", 1 + i % 2)
            .await
            .checkpoint;
    }
    // Both handles answer read-your-writes: the owner from its watch, the other from the database.
    a.wait_for(Scope::Named(NAME), target, PATIENCE)
        .await
        .unwrap();
    b.wait_for(Scope::Named(NAME), target, PATIENCE)
        .await
        .unwrap();
    assert_exactly_once(&db.pool).await;
    assert!(owned(&a) != owned(&b), "exactly one runner owns it");

    // The owner goes away; the other takes over and carries on from the stored checkpoint.
    let (gone, survivor) = if owned(&a) { (a, b) } else { (b, a) };
    gone.shutdown().await;
    for i in 0..40 {
        target = append(&store, &format!("s-{}", i % 6), "Second", 1 + i % 3)
            .await
            .checkpoint;
    }
    eventually("the surviving runner takes the projection over", || async {
        owned(&survivor)
    })
    .await;
    survivor
        .wait_for(Scope::All, target, PATIENCE)
        .await
        .unwrap();
    assert_exactly_once(&db.pool).await;
    survivor.shutdown().await;
    db.drop().await;
}

#[tokio::test]
async fn a_definition_change_rebuilds_at_start_and_back_fills_and_is_never_downgraded() {
    let db = support::fresh().await;
    let store = store(&db);
    let mut history_end = Checkpoint::START;
    for i in 0..15 {
        history_end = append(&store, &format!("s-{}", i % 4), "Old", 2)
            .await
            .checkpoint;
    }
    // Added after the fact: version 1 is back-filled from the whole history.
    let v1 = start(&db, vec![projection(1)]).await;
    // (Not `store.head()`: that is only what is final *now*, which another test on the same server
    // can hold back with a long transaction.)
    v1.wait_for(Scope::All, history_end, PATIENCE)
        .await
        .unwrap();
    assert_exactly_once(&db.pool).await;
    v1.shutdown().await;
    let stored = projections::checkpoint::load(&db.pool, NAME)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.version, stored.events_applied), (1, 30));

    let mut target = Checkpoint::START;
    for i in 0..5 {
        target = append(&store, &format!("s-{}", i % 4), "New", 1)
            .await
            .checkpoint;
    }
    // Version 2 changes the DDL: the runner rebuilds at start and fills the new column for every
    // stream, including the events appended before version 2 existed.
    let v2 = start(&db, vec![projection(2)]).await;
    v2.wait_for(Scope::All, target, PATIENCE).await.unwrap();
    let stored = projections::checkpoint::load(&db.pool, NAME)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(
        stored.definition_hash,
        projections::definition_hash(projection(2).as_ref())
    );
    assert_eq!(stored.events_applied, 35, "replayed from the start");
    assert_exactly_once(&db.pool).await;
    let types: Vec<(String, String)> =
        sqlx::query_as("SELECT stream_id, last_type FROM test_stream_counts ORDER BY stream_id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        types,
        (0..4)
            .map(|i| (format!("s-{i}"), "New".to_owned()))
            .collect::<Vec<_>>()
    );
    eventually("version 2 is live", || async {
        v2.status().projections[0].phase == Some(Phase::Live)
    })
    .await;
    v2.shutdown().await;

    // An older binary (a rolling deploy) finds version 2 and stands by instead of downgrading it.
    let old = start(&db, vec![projection(1)]).await;
    eventually("the older runner stands by", || async {
        old.status().projections[0].outdated
    })
    .await;
    old.shutdown().await;
    let stored = projections::checkpoint::load(&db.pool, NAME)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.version, stored.events_applied), (2, 35));
    db.drop().await;
}

#[tokio::test]
async fn wait_for_returns_once_the_target_is_reached_and_times_out_otherwise() {
    let db = support::fresh().await;
    let store = store(&db);
    let runner = start(&db, vec![projection(1)]).await;

    let outcome = append(&store, "ryw", "Written", 3).await;
    runner
        .wait_for(Scope::Named(NAME), outcome.checkpoint, PATIENCE)
        .await
        .unwrap();
    // Read-your-writes: the command's effects are visible right after the wait.
    assert_eq!(projected_counts(&db.pool).await, [("ryw".to_owned(), 3)]);

    // A checkpoint that no event has reached yet.
    let beyond = Checkpoint {
        transaction_id: i64::MAX,
        position: i64::MAX,
    };
    let err = runner
        .wait_for(Scope::All, beyond, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(err.lagging, [NAME]);

    // An append whose transaction is still open holds back everything after it: the later append's
    // checkpoint is not reached until the first commits (events are applied in commit-safe order).
    let mut slow = db.pool.begin().await.unwrap();
    store
        .append_in(
            &mut slow,
            "slow",
            ExpectedVersion::NoStream,
            &events("Slow", 1),
            &meta(),
        )
        .await
        .unwrap();
    let later = append(&store, "later", "Written", 1).await;
    let err = runner
        .wait_for(Scope::All, later.checkpoint, Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(matches!(err, Timeout { ref lagging, .. } if lagging == &[NAME]));
    slow.commit().await.unwrap();
    runner
        .wait_for(Scope::All, later.checkpoint, PATIENCE)
        .await
        .unwrap();
    assert_exactly_once(&db.pool).await;

    // A name the runner does not know is never reported as up to date.
    let err = runner
        .wait_for(
            Scope::Named("no_such_projection"),
            outcome.checkpoint,
            PATIENCE,
        )
        .await
        .unwrap_err();
    assert_eq!(err.lagging, ["no_such_projection"]);
    runner.shutdown().await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_recovers_when_the_database_drops_every_connection() {
    let db = support::fresh().await;
    let store = store(&db);
    let runner = start(&db, vec![projection(1)]).await;
    let mut target = Checkpoint::START;
    for i in 0..10 {
        target = append(&store, &format!("s-{}", i % 3), "Before", 1)
            .await
            .checkpoint;
    }
    runner.wait_for(Scope::All, target, PATIENCE).await.unwrap();
    eventually("the listener is connected", || async {
        runner.status().listener.connected
    })
    .await;
    let connections_before = runner.status().listener.connections;

    // What a database restart does to the clients: every session of this database ends.
    let admin_url = cim::db::scratch::with_database(&db.url, "postgres").unwrap();
    let mut admin = PgConnection::connect(&admin_url).await.unwrap();
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&db.name)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(
        terminated.len() >= 3,
        "the pool, the lock and the listener connections were terminated"
    );
    admin.close().await.unwrap();

    for i in 0..10 {
        target = append(&store, &format!("s-{}", i % 4), "After", 2)
            .await
            .checkpoint;
    }
    runner.wait_for(Scope::All, target, PATIENCE).await.unwrap();
    eventually("the listener reconnected", || async {
        let listener = runner.status().listener;
        listener.connected && listener.connections > connections_before
    })
    .await;
    eventually("the runner owns its projection again", || async {
        owned(&runner)
    })
    .await;
    assert!(runner.readiness().is_ok());
    // A fresh pool: the test's own pool lost its connections too.
    let check = db::connect(&db.url, 2).await.unwrap();
    assert_exactly_once(&check).await;
    check.close().await;
    runner.shutdown().await;
    db.drop().await;
}

#[tokio::test]
async fn readyz_reports_the_projection_listener() {
    let db = support::fresh().await;
    let runner = start(&db, vec![projection(1)]).await;
    eventually("the listener is connected", || async {
        runner.status().listener.connected
    })
    .await;
    let app = cim::http::router(cim::http::AppState::with_projections(
        db.pool.clone(),
        runner.clone(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let response = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["checks"]["projections"], "ok");
    server.abort();
    runner.shutdown().await;
    db.drop().await;
}

/// The test projection, made to fail on demand: 0 = works, 1 = refuses events, 2 = panics.
struct Flaky {
    inner: StreamCounts,
    mode: Arc<std::sync::atomic::AtomicU8>,
}

impl Projection for Flaky {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn version(&self) -> u32 {
        self.inner.version()
    }
    fn definition(&self) -> &'static str {
        self.inner.definition()
    }
    fn tables(&self) -> &'static [&'static str] {
        self.inner.tables()
    }
    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        match self.mode.load(Ordering::SeqCst) {
            0 => self.inner.apply(tx, event),
            1 => Box::pin(
                async move { Err(ProjectionError::malformed(event, "refused on purpose")) },
            ),
            _ => panic!("apply panicked on purpose"),
        }
    }
}

#[tokio::test]
async fn a_failing_or_panicking_projection_is_retried_and_never_skips_the_event() {
    let db = support::fresh().await;
    let store = store(&db);
    let mode = Arc::new(std::sync::atomic::AtomicU8::new(1));
    let flaky = Arc::new(Flaky {
        inner: StreamCounts { version: 1 },
        mode: mode.clone(),
    });
    let runner = start(&db, vec![flaky]).await;
    let target = append(&store, "poison", "Odd", 2).await.checkpoint;
    let last_error = |runner: &RunnerHandle| {
        runner.status().projections[0]
            .last_error
            .clone()
            .unwrap_or_default()
    };
    eventually("the refusal is reported", || async {
        last_error(&runner).contains("refused on purpose")
    })
    .await;
    mode.store(2, Ordering::SeqCst);
    eventually("the panic is reported", || async {
        last_error(&runner).contains("panicked on purpose")
    })
    .await;
    // Nothing was skipped meanwhile: the checkpoint is still before the event.
    assert!(
        runner
            .wait_for(Scope::All, target, Duration::from_millis(100))
            .await
            .is_err()
    );
    mode.store(0, Ordering::SeqCst);
    runner.wait_for(Scope::All, target, PATIENCE).await.unwrap();
    assert_exactly_once(&db.pool).await;
    eventually("the error is cleared", || async {
        runner.status().projections[0].last_error.is_none()
    })
    .await;
    runner.shutdown().await;
    db.drop().await;
}
