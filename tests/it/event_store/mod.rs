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

mod group;
mod sealing;
mod tailing;

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
