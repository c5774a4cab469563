//! The event store's guarantees, each against a real PostgreSQL (see `shared/docs/event-store.md`).

use crate::support;

use cim::store::{
    ActorRole, AppendError, Checkpoint, EventStore, ExpectedVersion, Metadata, NewEvent, Upcasters,
};
use rand::Rng;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

fn event(kind: &str, n: i64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: kind.to_owned(),
        schema_version: 1,
        payload: json!({ "n": n }),
        personal: None,
        data_subject: None,
    }
}

fn meta(command_id: Uuid) -> Metadata {
    Metadata {
        actor_id: "staff-1".into(),
        actor_role: ActorRole::Coordinator,
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        command_id,
    }
}

fn store(db: &support::TestDb) -> EventStore {
    EventStore::new(db.pool.clone(), Upcasters::new())
}

#[tokio::test]
async fn two_writers_at_the_same_version_exactly_one_wins() {
    let db = support::fresh().await;
    let store = store(&db);
    store
        .append(
            "s-1",
            ExpectedVersion::NoStream,
            &[event("A", 0)],
            &meta(Uuid::now_v7()),
        )
        .await
        .unwrap();

    let first = [event("B", 1), event("B", 2)];
    let second = [event("C", 1)];
    let (m1, m2) = (meta(Uuid::now_v7()), meta(Uuid::now_v7()));
    let (r1, r2) = tokio::join!(
        store.append("s-1", ExpectedVersion::Exact(1), &first, &m1),
        store.append("s-1", ExpectedVersion::Exact(1), &second, &m2),
    );
    let (winner, loser) = match (&r1, &r2) {
        (Ok(_), Err(_)) => (&first[..], &r2),
        (Err(_), Ok(_)) => (&second[..], &r1),
        other => panic!("expected exactly one winner, got {other:?}"),
    };
    match loser {
        Err(AppendError::Conflict {
            stream_id,
            expected,
            actual,
        }) => {
            assert_eq!((stream_id.as_str(), *expected), ("s-1", 1));
            assert_eq!(*actual, 1 + winner.len() as i32);
        }
        other => panic!("the loser must get a typed conflict, got {other:?}"),
    }
    let stored = store.read_stream("s-1", 0).await.unwrap();
    let ids: Vec<Uuid> = stored[1..].iter().map(|e| e.event_id).collect();
    assert_eq!(ids, winner.iter().map(|e| e.event_id).collect::<Vec<_>>());
    db.drop().await;
}

#[tokio::test]
async fn an_expected_version_ahead_of_the_stream_is_a_conflict_and_leaves_no_hole() {
    let db = support::fresh().await;
    let store = store(&db);
    let err = store
        .append(
            "s-2",
            ExpectedVersion::Exact(3),
            &[event("A", 0)],
            &meta(Uuid::now_v7()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AppendError::Conflict {
                expected: 3,
                actual: 0,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.stream_version("s-2").await.unwrap(), 0);
    db.drop().await;
}

#[tokio::test]
async fn a_multi_event_append_lands_whole_or_not_at_all() {
    let db = support::fresh().await;
    let store = store(&db);
    let events: Vec<_> = (0..5).map(|n| event("A", n)).collect();
    let out = store
        .append(
            "s-3",
            ExpectedVersion::NoStream,
            &events,
            &meta(Uuid::now_v7()),
        )
        .await
        .unwrap();
    assert_eq!((out.first_version, out.last_version), (1, 5));

    // The third event reuses an existing event id: the whole append must fail, none of it stored.
    let mut broken: Vec<_> = (0..5).map(|n| event("B", n)).collect();
    broken[2].event_id = events[0].event_id;
    let err = store
        .append(
            "s-3",
            ExpectedVersion::Exact(5),
            &broken,
            &meta(Uuid::now_v7()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AppendError::Conflict { .. }), "{err:?}");
    assert_eq!(store.read_stream("s-3", 0).await.unwrap().len(), 5);
    db.drop().await;
}

#[tokio::test]
async fn the_same_command_is_stored_once_also_when_retried_concurrently() {
    let db = support::fresh().await;
    let store = store(&db);
    let command = Uuid::now_v7();
    let events = [event("A", 1), event("A", 2)];
    let first = store
        .append("s-4", ExpectedVersion::NoStream, &events, &meta(command))
        .await
        .unwrap();
    assert!(!first.duplicate);

    // A plain retry, even one decided afresh against the newer state (other event ids, later version).
    let retry = store
        .append(
            "s-4",
            ExpectedVersion::Exact(2),
            &[event("A", 3)],
            &meta(command),
        )
        .await
        .unwrap();
    assert!(retry.duplicate);
    assert_eq!((retry.first_version, retry.last_version), (1, 2));
    assert_eq!(retry.checkpoint, first.checkpoint);

    // Eight concurrent attempts of one new command: one stores, the rest get its outcome.
    let command = Uuid::now_v7();
    let attempts = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .append(
                    "s-4",
                    ExpectedVersion::Exact(2),
                    &[event("B", 1)],
                    &meta(command),
                )
                .await
        })
    });
    let results: Vec<_> = futures_join_all(attempts).await;
    let stored: Vec<_> = results
        .iter()
        .filter(|r| !r.as_ref().unwrap().duplicate)
        .collect();
    assert_eq!(stored.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().unwrap().last_version == 3)
    );
    assert_eq!(store.read_stream("s-4", 0).await.unwrap().len(), 3);
    db.drop().await;
}

#[tokio::test]
async fn metadata_is_stored_on_every_event() {
    let db = support::fresh().await;
    let store = store(&db);
    let mut m = meta(Uuid::now_v7());
    m.causation_id = Some(Uuid::now_v7());
    let mut e = event("A", 1);
    e.personal = Some(json!({ "name": "Ada" }));
    e.data_subject = Some(Uuid::now_v7());
    store
        .append("s-5", ExpectedVersion::Any, &[e.clone()], &m)
        .await
        .unwrap();
    let got = &store.read_stream("s-5", 0).await.unwrap()[0];
    assert_eq!(got.event_id, e.event_id);
    assert_eq!(
        (got.actor_id.as_str(), got.actor_role),
        ("staff-1", ActorRole::Coordinator)
    );
    assert_eq!(got.correlation_id, m.correlation_id);
    assert_eq!(got.causation_id, m.causation_id);
    assert_eq!(got.command_id, m.command_id);
    assert_eq!(got.personal, e.personal);
    assert_eq!(got.data_subject, e.data_subject);
    assert_eq!(got.payload, e.payload);
    let age = chrono::Utc::now() - got.recorded_at;
    assert!(age < chrono::TimeDelta::minutes(5));
    db.drop().await;
}

/// The projections' tail: the same events in the same order and shape, but never their personal
/// part (read models hold none, and nothing personal may linger in their caches).
#[tokio::test]
async fn the_tail_without_personal_data_is_the_tail_with_the_personal_part_left_out() {
    let db = support::fresh().await;
    let upcasters = Upcasters::new().register("A", 1, rename_field);
    let store = EventStore::new(db.pool.clone(), upcasters);
    let mut sealed = event("A", 1);
    sealed.personal = Some(json!({ "text": "My reflection on the language café." }));
    sealed.data_subject = Some(Uuid::now_v7());
    store
        .append(
            "s-7",
            ExpectedVersion::NoStream,
            &[sealed, event("B", 2)],
            &meta(Uuid::now_v7()),
        )
        .await
        .unwrap();
    let full = wait_for_events(&store, Checkpoint::START, 2).await;
    assert!(
        full[0].personal.is_some(),
        "the full tail opens the personal part"
    );
    let omitted = store
        .read_after_omitting_personal(Checkpoint::START, 10)
        .await
        .unwrap();
    assert_eq!(omitted.len(), 2);
    for (with, without) in full.iter().zip(&omitted) {
        assert_eq!(without.personal, None);
        assert_eq!(
            (without.checkpoint, &without.payload, without.schema_version),
            (with.checkpoint, &with.payload, with.schema_version),
            "upcast like every other read"
        );
        assert_eq!(without.data_subject, with.data_subject);
    }
    db.drop().await;
}

fn rename_field(
    mut payload: Value,
    personal: Option<Value>,
) -> Result<(Value, Option<Value>), String> {
    let old = payload.as_object_mut().unwrap().remove("n").ok_or("no n")?;
    payload["count"] = old;
    Ok((payload, personal))
}

#[tokio::test]
async fn an_old_schema_version_is_read_in_the_current_shape_on_every_path() {
    let db = support::fresh().await;
    let upcasters = Upcasters::new().register("A", 1, rename_field);
    let store = EventStore::new(db.pool.clone(), upcasters);
    store
        .append(
            "s-6",
            ExpectedVersion::NoStream,
            &[event("A", 7)],
            &meta(Uuid::now_v7()),
        )
        .await
        .unwrap();

    let by_stream = &store.read_stream("s-6", 0).await.unwrap()[0];
    let tailed = wait_for_events(&store, Checkpoint::START, 1).await;
    for got in [by_stream, &tailed[0]] {
        assert_eq!(got.payload, json!({ "count": 7 }));
        assert_eq!((got.schema_version, got.stored_schema_version), (2, 1));
    }
    db.drop().await;
}

/// The deterministic version of the race: a transaction draws a position, a later one commits, and
/// only then the first commits. A reader tailing by position alone skips the first event; ours must not.
#[tokio::test]
async fn a_slow_append_that_commits_after_a_later_one_is_not_skipped() {
    let db = support::fresh().await;
    let store = store(&db);

    let mut slow = db.pool.begin().await.unwrap();
    let slow_event = event("Slow", 1);
    store
        .append_in(
            &mut slow,
            "slow",
            ExpectedVersion::NoStream,
            std::slice::from_ref(&slow_event),
            &meta(Uuid::now_v7()),
        )
        .await
        .unwrap();
    let fast = store
        .append(
            "fast",
            ExpectedVersion::NoStream,
            &[event("Fast", 2)],
            &meta(Uuid::now_v7()),
        )
        .await
        .unwrap();

    // A naive reader by position sees the fast event now and moves past the slow one's position.
    let naive_after: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(naive_after, fast.checkpoint.position);
    // Ours holds back: the slow transaction is still running, so nothing after it is final yet.
    assert!(
        store
            .read_after(Checkpoint::START, 100)
            .await
            .unwrap()
            .is_empty()
    );

    slow.commit().await.unwrap();
    let naive_missed: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE position > $1")
        .bind(naive_after)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        naive_missed, 0,
        "the naive reader never sees the slow event"
    );

    let seen = wait_for_events(&store, Checkpoint::START, 2).await;
    let types: Vec<&str> = seen.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["Slow", "Fast"], "ordered by transaction, both seen");
    db.drop().await;
}

/// Many writers, some holding their transaction open for a while, some rolling back, and a consumer
/// tailing at the same time. The consumer must see every committed event exactly once, never a rolled
/// back one, and never move its checkpoint past an event it had not yet seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tailing_consumer_sees_every_committed_event_exactly_once() {
    const WRITERS: usize = 20;
    const APPENDS_PER_WRITER: usize = 25;
    let db = support::fresh().await;
    let store = store(&db);
    // How many events were committed, once the writers are done. Until then, usize::MAX.
    let expected = Arc::new(AtomicUsize::new(usize::MAX));

    let consumer = {
        let store = store.clone();
        let expected = expected.clone();
        tokio::spawn(async move {
            let mut checkpoint = Checkpoint::START;
            let mut seen: Vec<(Checkpoint, Uuid)> = Vec::new();
            let mut quiet_rounds = 0;
            let mut deadline: Option<Instant> = None;
            loop {
                let batch = store.read_after(checkpoint, 50).await.unwrap();
                for e in &batch {
                    assert!(
                        e.checkpoint > checkpoint,
                        "the order went backwards at {}",
                        e.checkpoint
                    );
                    checkpoint = e.checkpoint;
                    seen.push((e.checkpoint, e.event_id));
                }
                if batch.is_empty() {
                    // Events become readable only once every older transaction on the whole server
                    // has ended (other tests' included), so "nothing new" proves nothing by itself.
                    // Stop once everything committed was seen (plus a few quiet rounds, to catch an
                    // event delivered twice), or after a generous deadline that fails the test below.
                    let target = expected.load(Ordering::SeqCst);
                    if target != usize::MAX {
                        let deadline = *deadline
                            .get_or_insert_with(|| Instant::now() + Duration::from_secs(60));
                        if seen.len() >= target {
                            quiet_rounds += 1;
                        }
                        if quiet_rounds > 5 || Instant::now() > deadline {
                            return seen;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        })
    };

    let writers = (0..WRITERS).map(|w| {
        let store = store.clone();
        let pool = db.pool.clone();
        tokio::spawn(async move {
            let mut committed = Vec::new();
            let mut rolled_back = Vec::new();
            let stream = format!("w-{w}");
            let mut version = 0;
            for i in 0..APPENDS_PER_WRITER {
                let (hold_ms, roll_back, size) = {
                    let mut rng = rand::rng();
                    (
                        rng.random_range(0..30u64),
                        rng.random_bool(0.2),
                        rng.random_range(1..4),
                    )
                };
                let events: Vec<_> = (0..size).map(|n| event("E", (i * 10 + n) as i64)).collect();
                let mut tx = pool.begin().await.unwrap();
                store
                    .append_in(
                        &mut tx,
                        &stream,
                        ExpectedVersion::Exact(version),
                        &events,
                        &meta(Uuid::now_v7()),
                    )
                    .await
                    .unwrap();
                // Writers that hold their transaction make positions commit out of order.
                if w % 2 == 0 {
                    tokio::time::sleep(Duration::from_millis(hold_ms)).await;
                }
                let ids = events.iter().map(|e| e.event_id);
                if roll_back {
                    tx.rollback().await.unwrap();
                    rolled_back.extend(ids);
                } else {
                    tx.commit().await.unwrap();
                    committed.extend(ids);
                    version += size as i32;
                }
            }
            (committed, rolled_back)
        })
    });
    let results = futures_join_all(writers).await;
    let committed_count: usize = results.iter().map(|(c, _)| c.len()).sum();
    expected.store(committed_count, Ordering::SeqCst);
    let seen = consumer.await.unwrap();

    let committed: HashSet<Uuid> = results
        .iter()
        .flat_map(|(c, _)| c.iter().copied())
        .collect();
    let rolled_back: HashSet<Uuid> = results
        .iter()
        .flat_map(|(_, r)| r.iter().copied())
        .collect();
    let mut counts: HashMap<Uuid, usize> = HashMap::new();
    for (_, id) in &seen {
        *counts.entry(*id).or_default() += 1;
    }
    assert!(
        counts.values().all(|&n| n == 1),
        "an event was delivered twice"
    );
    assert!(
        rolled_back.iter().all(|id| !counts.contains_key(id)),
        "a rolled-back event was seen"
    );
    let missing: Vec<_> = committed
        .iter()
        .filter(|id| !counts.contains_key(id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} committed events were skipped",
        missing.len()
    );
    assert_eq!(seen.len(), committed.len());
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(stored as usize, committed.len());
    db.drop().await;
}

/// Reads from `after` until `n` events have arrived (appends become readable once every older
/// transaction in the cluster has ended, which can take a moment on a busy server).
async fn wait_for_events(
    store: &EventStore,
    after: Checkpoint,
    n: usize,
) -> Vec<cim::store::RecordedEvent> {
    let mut got = Vec::new();
    let mut at = after;
    for _ in 0..500 {
        for e in store.read_after(at, 100).await.unwrap() {
            at = e.checkpoint;
            got.push(e);
        }
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("only {} of {n} events became readable", got.len());
}

async fn futures_join_all<T: std::fmt::Debug>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles.collect::<Vec<_>>() {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn appends_are_announced_after_they_commit_not_from_inside_the_transaction() {
    let db = support::fresh().await;
    let store = store(&db);
    let mut listener = sqlx::postgres::PgListener::connect(&db.url).await.unwrap();
    listener.listen(cim::store::CHANNEL).await.unwrap();
    // No trigger on the log: a notifying transaction would serialise every append's commit.
    let triggers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'events'::regclass AND NOT tgisinternal",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(triggers, 0);

    // An append in the caller's transaction sends nothing by itself, committed or not ...
    let mut tx = db.pool.begin().await.unwrap();
    store
        .append_in(
            &mut tx,
            "s-quiet",
            ExpectedVersion::NoStream,
            &[event("A", 0)],
            &meta(Uuid::now_v7()),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(300), listener.recv()).await;
    assert!(quiet.is_err(), "notified from inside the transaction");
    // ... until its caller announces it, after the commit.
    store.announce();
    tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("announced")
        .unwrap();

    // A plain append announces itself; a burst of them is folded into fewer notifications.
    let appends = (0..40).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .append(
                    &format!("s-loud-{i}"),
                    ExpectedVersion::NoStream,
                    &[event("B", i)],
                    &meta(Uuid::now_v7()),
                )
                .await
                .unwrap()
        })
    });
    futures_join_all(appends).await;
    let mut notifications = 0;
    while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(500), listener.recv()).await {
        notifications += 1;
    }
    assert!((1..=40).contains(&notifications), "{notifications}");
    db.drop().await;
}
