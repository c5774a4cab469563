//! Group commit (`src/store/group.rs`): one-event appends that arrive together share a transaction,
//! and each keeps its own expected version, idempotency and answer.

use super::{event, meta, store};
use crate::support;
use cim::store::{AppendError, AppendOutcome, EventStore, ExpectedVersion, Metadata};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// Appends one event per (stream, expectation, command) all at once while the log is locked
/// against inserts, so that they queue behind the first statements and then go together.
async fn all_at_once(
    db: &support::TestDb,
    store: &EventStore,
    appends: Vec<(String, ExpectedVersion, Metadata)>,
) -> Vec<Result<AppendOutcome, AppendError>> {
    let mut lock = db.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE events IN SHARE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let tasks: Vec<_> = appends
        .into_iter()
        .enumerate()
        .map(|(n, (stream, expected, metadata))| {
            let store = store.clone();
            tokio::spawn(async move {
                let e = event("GroupTest", n as i64);
                store.append(&stream, expected, &[e], &metadata).await
            })
        })
        .collect();
    // Long enough for every task to be queued or blocked in a statement.
    tokio::time::sleep(Duration::from_millis(500)).await;
    lock.commit().await.unwrap();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

#[tokio::test]
async fn appends_that_arrive_together_commit_together_and_each_keeps_its_own_answer() {
    let db = support::fresh().await;
    let store = store(&db);
    // Streams that exist already: one at version 1 for stale and impossible expectations, and a
    // command that is stored (its retry must get the first outcome back).
    let stored_command = meta(Uuid::now_v7());
    let first = store
        .append(
            "old",
            ExpectedVersion::NoStream,
            &[event("A", 0)],
            &stored_command,
        )
        .await
        .unwrap();

    let fresh = |n: usize| {
        (
            format!("s-{n}"),
            ExpectedVersion::NoStream,
            meta(Uuid::now_v7()),
        )
    };
    // More than are ever written alone at once (4 per leader, a leader per core, at most 8).
    const FRESH: usize = 64;
    let mut appends: Vec<_> = (0..FRESH).map(fresh).collect();
    // FRESH + 0, 1: stale (behind the end) and impossible (beyond it) expectations.
    appends.push((
        "old".into(),
        ExpectedVersion::NoStream,
        meta(Uuid::now_v7()),
    ));
    appends.push((
        "old".into(),
        ExpectedVersion::Exact(7),
        meta(Uuid::now_v7()),
    ));
    // FRESH + 2: a retry of the stored command.
    appends.push((
        "old".into(),
        ExpectedVersion::NoStream,
        stored_command.clone(),
    ));
    // FRESH + 3, 4: two writers racing for the same version of one stream.
    appends.push((
        "race".into(),
        ExpectedVersion::NoStream,
        meta(Uuid::now_v7()),
    ));
    appends.push((
        "race".into(),
        ExpectedVersion::NoStream,
        meta(Uuid::now_v7()),
    ));
    // FRESH + 5, 6: "any" expectations on one stream: both land, one after the other.
    appends.push(("any".into(), ExpectedVersion::Any, meta(Uuid::now_v7())));
    appends.push(("any".into(), ExpectedVersion::Any, meta(Uuid::now_v7())));

    let results = all_at_once(&db, &store, appends).await;

    let mut per_transaction: HashMap<i64, usize> = HashMap::new();
    for (n, result) in results[..FRESH].iter().enumerate() {
        let outcome = result
            .as_ref()
            .unwrap_or_else(|e| panic!("append {n}: {e:?}"));
        assert_eq!((outcome.first_version, outcome.duplicate), (1, false));
        *per_transaction
            .entry(outcome.checkpoint.transaction_id)
            .or_default() += 1;
    }
    let largest = per_transaction.values().max().copied().unwrap_or(0);
    assert!(
        largest >= 10,
        "{FRESH} appends that queued together took {} transactions, the largest holding {largest}",
        per_transaction.len()
    );
    let results = &results[FRESH..];
    for n in [0, 1] {
        assert!(
            matches!(results[n], Err(AppendError::Conflict { actual: 1, .. })),
            "append {n}: {:?}",
            results[n]
        );
    }
    let retried = results[2].as_ref().unwrap();
    assert!(retried.duplicate);
    assert_eq!(retried.checkpoint, first.checkpoint);
    let race: Vec<_> = results[3..5].iter().map(|r| r.is_ok()).collect();
    assert_eq!(
        race.iter().filter(|won| **won).count(),
        1,
        "{:?}",
        &results[3..5]
    );
    assert!(results[5].is_ok() && results[6].is_ok());

    // The log holds exactly what the answers say.
    let count = |stream: &'static str| {
        let store = store.clone();
        async move { store.read_stream(stream, 0).await.unwrap().len() }
    };
    assert_eq!((count("old").await, count("race").await), (1, 1));
    assert_eq!(count("any").await, 2);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 1 + FRESH as i64 + 1 + 2);
    db.drop().await;
}
