//! Live application under concurrent appends, rebuild = live, and one owner per projection.

use super::*;

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
        &LogFeed::new(store.clone()),
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
        &LogFeed::new(store.clone()),
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
        &LogFeed::new(store.clone()),
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
