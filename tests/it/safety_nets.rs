//! The safety nets that stop a second writer, driven on purpose rather than hoped for, with what
//! happens next:
//! - the projection checkpoint guard: a runner whose checkpoint another runner moved applies nothing
//!   twice, and carries on from the stored checkpoint;
//! - the export worker's `Overtaken`: a worker whose batch stream another writer appended to sends
//!   no write to Ladok, and the next run delivers every certificate once;
//! - the guarded settle (issue #17, defect 4): a registrar's re-delivery request that lands between
//!   the worker's read of a batch and its update that marks the batch settled is not lost, and a
//!   worker whose lock's session is gone settles nothing (`LockLost`).
//!
//! Each blocks the writer under test on a row another session holds (PostgreSQL's own locks, so no
//! timing is assumed): it is seen waiting in `pg_stat_activity`, then the other writer commits.

use crate::support;
use cim::log;

use cim::domain::BatchId;
use cim::domain::batch::{BatchEvent, DeliveryFailed};
use cim::export::worker::{ExportLock, Step, WorkerConfig, WorkerError, settle_deliveries};
use cim::http::AppState;
use cim::http::auth::Role;
use cim::projections::{ProjectionRunner, read_models};
use cim::store::{Checkpoint, EventStore, ExpectedVersion, NewEvent};
use cim_fake_ladok::FakeLadok;
use sqlx::PgPool;
use support::certificates::{cohort, metadata};
use support::eventually;
use support::ladok::{run, worker};
use uuid::Uuid;

/// Waits until a statement containing `prefix` waits for a lock held by another session.
async fn blocked_on_lock(pool: &PgPool, prefix: &str) {
    let what = format!("a statement `{prefix}…` waits for a lock");
    eventually(&what, async || {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock' AND position($1 in query) > 0",
        )
        .bind(prefix)
        .fetch_one(pool)
        .await
        .unwrap()
            > 0
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The projection checkpoint guard.
// ---------------------------------------------------------------------------------------------

async fn registrar_checkpoint(pool: &PgPool) -> (Checkpoint, i64) {
    let (transaction_id, position, applied): (i64, i64, i64) = sqlx::query_as(
        "SELECT transaction_id, position, events_applied FROM projection_checkpoints \
         WHERE name = 'registrar'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let at = Checkpoint {
        transaction_id,
        position,
    };
    (at, applied)
}

/// The registrar's read model is live and has counted every event of the log.
async fn caught_up(pool: &PgPool) -> bool {
    let events = support::log_checks::event_count(pool).await;
    let applied: Option<(i64, String)> = sqlx::query_as(
        "SELECT events_applied, status FROM projection_checkpoints WHERE name = 'registrar'",
    )
    .fetch_optional(pool)
    .await
    .unwrap();
    // At least: a count beyond the log's is a double apply, which the caller asserts is not.
    applied.is_some_and(|(n, status)| n >= events && status == "live")
}

/// Events of a kind the registrar's read model ignores: applying them twice changes no row, so
/// only the checkpoint's count can tell a double apply, and the guard alone prevents one.
async fn notes(store: &EventStore, stream: &str, n: usize) {
    let events: Vec<NewEvent> = (0..n)
        .map(|i| NewEvent {
            event_id: Uuid::now_v7(),
            event_type: "Noted".to_owned(),
            schema_version: 1,
            payload: serde_json::json!({ "i": i }),
            personal: None,
            data_subject: None,
        })
        .collect();
    store
        .append(stream, ExpectedVersion::Any, &events, &metadata())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_whose_checkpoint_another_moved_applies_nothing_twice_and_carries_on() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), log::upcasters());
    cohort(&store, 2).await;
    let registrar = read_models::all()
        .into_iter()
        .find(|p| p.name() == "registrar")
        .unwrap();
    let runner = ProjectionRunner::start(
        store.clone(),
        db.pool.clone(),
        &db.url,
        vec![registrar.clone()],
    );
    eventually("the registrar is live", async || caught_up(&db.pool).await).await;

    // A second owner (as one that took over while this runner still thought it owned the
    // projection) gets to the checkpoints first; the runner's next batch then waits for it. A table
    // lock, not a row lock: locking a row gives the transaction an id, and the log's gap-safe tail
    // shows no event appended after the oldest running transaction, so the runner would never see
    // the batch it is to wait with.
    let mut other = db.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE projection_checkpoints IN EXCLUSIVE MODE")
        .execute(&mut *other)
        .await
        .unwrap();
    let (from, _) = registrar_checkpoint(&db.pool).await;
    notes(&store, "notes-1", 3).await;
    support::settle(&store).await;
    blocked_on_lock(&db.pool, "UPDATE projection_checkpoints").await;
    // The other owner applies the same batch and moves the checkpoint past it, as `apply_batch`
    // does, and commits.
    let batch = store.read_after_omitting_personal(from, 500).await.unwrap();
    assert_eq!(batch.len(), 3);
    registrar.apply(&mut other, &batch).await.unwrap();
    let to = batch.last().unwrap().checkpoint;
    sqlx::query(
        "UPDATE projection_checkpoints SET transaction_id = $1, position = $2, \
         events_applied = events_applied + $3 WHERE name = 'registrar'",
    )
    .bind(to.transaction_id)
    .bind(to.position)
    .bind(batch.len() as i64)
    .execute(&mut *other)
    .await
    .unwrap();
    other.commit().await.unwrap();

    // The runner's claim found the checkpoint moved: it applied nothing of that batch, and goes on
    // from the stored checkpoint with the events that follow.
    notes(&store, "notes-2", 2).await;
    eventually(
        "the runner carries on past the moved checkpoint",
        async || caught_up(&db.pool).await,
    )
    .await;
    let (at, applied) = registrar_checkpoint(&db.pool).await;
    assert_eq!(
        applied,
        support::log_checks::event_count(&db.pool).await,
        "events applied twice: the checkpoint counts more events than the log holds"
    );
    assert!(at > to);
    runner.shutdown().await;
    db.drop().await;
}

// ---------------------------------------------------------------------------------------------
// The export worker.
// ---------------------------------------------------------------------------------------------

async fn only_batch(pool: &PgPool) -> BatchId {
    BatchId::new(
        sqlx::query_scalar("SELECT batch_id FROM export_batches")
            .fetch_one(pool)
            .await
            .unwrap(),
    )
}

async fn stream_version(pool: &PgPool, batch: BatchId) -> i32 {
    sqlx::query_scalar("SELECT max(version) FROM events WHERE stream_id = $1")
        .bind(batch.stream_id())
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The standing merits per certificate in the fake Ladok.
fn merits_per_certificate(fake: &FakeLadok) -> std::collections::HashMap<String, usize> {
    let mut out = std::collections::HashMap::new();
    for m in fake.merits() {
        *out.entry(FakeLadok::certificate_of(&m.merit).unwrap())
            .or_default() += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overtaken_worker_sends_no_write_and_the_next_run_delivers_once() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), log::upcasters());
    let approved = cohort(&store, 2).await;
    let (out, fake) = (
        tempfile::tempdir().unwrap(),
        FakeLadok::start().await.unwrap(),
    );
    let mut lock = ExportLock::try_acquire(&db.pool).await.unwrap().unwrap();
    let mut first = worker(&store, out.path(), Some(fake.config()));
    while !matches!(first.step(&mut lock).await.unwrap(), Step::Completed { .. }) {}
    let batch = only_batch(&db.pool).await;

    // Another writer (a worker that got past the lock) appends to the batch's stream, not yet
    // committed; the first worker's next step reads the stream without it and then records its
    // write as started, which waits on the other's append.
    let mut other = db.pool.begin().await.unwrap();
    let attempt = BatchEvent::DeliveryFailed(DeliveryFailed {
        certificate_id: approved[0].certificate_id,
        reason: "unavailable".to_owned(),
        felgrupp: None,
        retryable: true,
        settles_write: false,
    });
    let version = stream_version(&db.pool, batch).await;
    store
        .append_in(
            &mut other,
            &batch.stream_id(),
            ExpectedVersion::Exact(version),
            &[cim::log::encode_batch(&attempt)],
            &metadata(),
        )
        .await
        .unwrap();
    let stepping = tokio::spawn(async move {
        let stepped = first.step(&mut lock).await;
        (lock, stepped)
    });
    blocked_on_lock(&db.pool, "WITH base AS").await;
    other.commit().await.unwrap();
    let (lock, stepped) = stepping.await.unwrap();
    assert!(
        matches!(stepped, Err(WorkerError::Overtaken)),
        "{stepped:?}"
    );
    // Its reads went out; no write did, and none is recorded as started.
    assert!(fake.received().is_empty(), "an overtaken worker wrote");
    assert!(fake.merits().is_empty());
    assert_eq!(support::count_events(&db.pool, "DeliveryStarted").await, 0);
    lock.release().await;

    // The next run delivers every certificate, once.
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(fake.config()))).await,
        (2, 0)
    );
    let merits = merits_per_certificate(&fake);
    for a in &approved {
        assert_eq!(merits.get(&a.certificate_id.to_string()), Some(&1));
    }
    db.drop().await;
}

/// The registrar's API on port 0, with this export configuration.
async fn serve(pool: PgPool, exports: WorkerConfig) -> String {
    let state = AppState::new(pool)
        .with_verifier(support::auth::dev_verifier())
        .with_exports(exports);
    support::server::serve(state).await
}

async fn settled(pool: &PgPool, batch: BatchId) -> bool {
    sqlx::query_scalar(
        "SELECT deliveries_settled_at IS NOT NULL FROM export_batches WHERE batch_id = $1",
    )
    .bind(batch.as_uuid())
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_requested_between_the_workers_read_and_its_settle_is_not_lost() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), log::upcasters());
    let approved = cohort(&store, 3).await;
    let bad = approved[1].certificate_id.to_string();
    let (out, fake) = (
        tempfile::tempdir().unwrap(),
        FakeLadok::start().await.unwrap(),
    );
    fake.rule_error_for(&bad, "commons.fel.grupp.domanregel");

    // The worker delivers two certificates and records Ladok's refusal of the third: nothing is
    // left for it, so its next step reads the batch and marks it settled.
    let mut lock = ExportLock::try_acquire(&db.pool).await.unwrap().unwrap();
    let mut first = worker(&store, out.path(), Some(fake.config()));
    let mut outcomes = 0;
    while outcomes < approved.len() {
        match first.step(&mut lock).await.unwrap() {
            Step::Delivered { .. } | Step::DeliveryFailed { .. } => outcomes += 1,
            Step::Idle => panic!("idle before every certificate had an outcome"),
            _ => {}
        }
    }
    let batch = only_batch(&db.pool).await;
    let read = stream_version(&db.pool, batch).await;
    lock.release().await;

    // Between that read and the update, the registrar has Ladok's data fixed and asks for the
    // refused certificate again, over the real route (which takes the export lock).
    fake.clear_rule_errors();
    let mut config = WorkerConfig::new(out.path());
    config.ladok = Some(fake.config());
    let base = serve(db.pool.clone(), config).await;
    let answer = reqwest::Client::new()
        .post(format!("{base}/exports/batches/{batch}/redeliver"))
        .bearer_auth(support::auth::token(Role::Registrar, "registrar-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let answer: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(answer["certificate_ids"], serde_json::json!([bad]));

    // The worker's update, made on what it read before the request, settles nothing.
    let mut lock = ExportLock::try_acquire(&db.pool).await.unwrap().unwrap();
    let done = settle_deliveries(&mut lock, batch, read).await.unwrap();
    assert!(!done, "the settle overwrote the re-delivery request");
    assert!(!settled(&db.pool, batch).await);

    // Nor does a worker whose lock's session is gone, however current its read.
    sqlx::query(
        "SELECT pg_terminate_backend(pid, 10000) FROM pg_locks WHERE locktype = 'advisory' \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let current = stream_version(&db.pool, batch).await;
    let lost = settle_deliveries(&mut lock, batch, current).await;
    assert!(matches!(lost, Err(WorkerError::LockLost)), "{lost:?}");
    assert!(!settled(&db.pool, batch).await);
    drop(lock);

    // The re-delivery gets done by the next run, once; then the batch is settled.
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(fake.config()))).await,
        (1, 0)
    );
    let merits = merits_per_certificate(&fake);
    for a in &approved {
        assert_eq!(merits.get(&a.certificate_id.to_string()), Some(&1));
    }
    assert!(settled(&db.pool, batch).await);
    db.drop().await;
}
