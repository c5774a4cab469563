//! Appends with personal data seal with keys the process remembers (`src/store/sealing.rs`); the
//! append's guard makes a remembered key that another process erased or replaced harmless.

use super::{event, meta, store};
use crate::support;
use cim::store::{AppendError, ExpectedVersion, NewEvent};
use serde_json::json;
use uuid::Uuid;

fn personal(subject: Uuid, text: &str) -> NewEvent {
    let mut e = event("ReflectionWritten", 1);
    e.personal = Some(json!({ "text": text }));
    e.data_subject = Some(subject);
    e
}

/// What another process's erasure does to the key table (`app::erasure`): the key goes, the row
/// stays as a tombstone. This process's store is not told.
async fn erase_elsewhere(db: &support::TestDb, subject: Uuid) {
    sqlx::query(
        "UPDATE subject_keys SET wrapped_key = NULL, master_key_id = NULL, erased_at = now()
         WHERE data_subject = $1",
    )
    .bind(subject)
    .execute(&db.pool)
    .await
    .unwrap();
}

async fn generation(db: &support::TestDb, subject: Uuid) -> i32 {
    sqlx::query_scalar("SELECT generation FROM subject_keys WHERE data_subject = $1")
        .bind(subject)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_remembered_key_that_was_erased_or_replaced_elsewhere_is_never_sealed_with() {
    let db = support::fresh().await;
    let (here, elsewhere) = (store(&db), store(&db));
    let subject = Uuid::now_v7();
    let append = |store: &cim::store::EventStore, text: &str| {
        let (store, e) = (store.clone(), personal(subject, text));
        async move {
            store
                .append("p-1", ExpectedVersion::Any, &[e], &meta(Uuid::now_v7()))
                .await
                .unwrap()
        }
    };
    // Both processes hold generation 1 after appending with it.
    append(&here, "before the erasure").await;
    append(&elsewhere, "before the erasure, elsewhere").await;
    erase_elsewhere(&db, subject).await;
    // This process still remembers generation 1: its append must find out and create generation 2.
    append(&here, "after the erasure").await;
    assert_eq!(generation(&db, subject).await, 2);
    // The other process remembers generation 1 as well, now replaced by another key.
    append(&elsewhere, "after the erasure, elsewhere").await;
    erase_elsewhere(&db, subject).await;
    append(&elsewhere, "after the second erasure, elsewhere").await;
    assert_eq!(generation(&db, subject).await, 3);
    // `here` remembers generation 2, which is gone too.
    append(&here, "after the second erasure").await;

    let texts: Vec<Option<String>> = store(&db)
        .read_stream("p-1", 0)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.personal.map(|p| p["text"].as_str().unwrap().to_owned()))
        .collect();
    let text = |s: &str| Some(s.to_owned());
    assert_eq!(
        texts,
        vec![
            None,
            None,
            None,
            None,
            text("after the second erasure, elsewhere"),
            text("after the second erasure"),
        ],
        "what was written before an erasure reads as erased, what came after is readable"
    );
    db.drop().await;
}

#[tokio::test]
async fn appends_sealed_with_a_remembered_key_keep_their_conflicts_and_idempotency() {
    let db = support::fresh().await;
    let store = store(&db);
    let subject = Uuid::now_v7();
    let first = store
        .append(
            "p-2",
            ExpectedVersion::NoStream,
            &[personal(subject, "one")],
            &meta(Uuid::now_v7()),
        )
        .await
        .unwrap();
    assert_eq!(first.last_version, 1);

    // The key is remembered now: behind the end, beyond the end, and at the end.
    for stale in [ExpectedVersion::NoStream, ExpectedVersion::Exact(5)] {
        let refused = store
            .append(
                "p-2",
                stale,
                &[personal(subject, "x")],
                &meta(Uuid::now_v7()),
            )
            .await;
        assert!(
            matches!(refused, Err(AppendError::Conflict { actual: 1, .. })),
            "{stale:?}: {refused:?}"
        );
    }
    let command = meta(Uuid::now_v7());
    let again = [personal(subject, "two")];
    let stored = store
        .append("p-2", ExpectedVersion::Exact(1), &again, &command)
        .await
        .unwrap();
    let retried = store
        .append("p-2", ExpectedVersion::Exact(1), &again, &command)
        .await
        .unwrap();
    assert!(!stored.duplicate && retried.duplicate);
    assert_eq!(retried.last_version, stored.last_version);
    let events = store.read_stream("p-2", 0).await.unwrap();
    assert_eq!(events.len(), 2, "nothing of the refused or retried appends");
    assert_eq!(events[1].personal, Some(json!({ "text": "two" })));
    db.drop().await;
}
