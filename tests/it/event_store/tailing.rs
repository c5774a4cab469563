//! Reading the log as it grows: slow appends, a tailing consumer, announcements after commit.

use super::*;

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
