//! A batch is applied in memory and written once (src/projections/read_models/batch.rs), and the
//! projections rebuilt together read the log once (src/projections/feed.rs).

use super::workload::Sim;
use super::*;
use cim::projections::{LogFeed, ProjectionLock, RebuildOptions};
use std::sync::atomic::AtomicBool;

/// A log with every kind of event the read models handle, a rules change and a catalog rename in
/// the middle (the portfolio read model re-renders its rows there, mid-batch).
pub(super) async fn varied_log(w: &World, students: u32) -> i64 {
    let mut seed = StdRng::seed_from_u64(0x0BA7_C4E5);
    let mut sims = Vec::new();
    for n in 0..students {
        sims.push(Sim::open(w, n, &mut seed).await);
    }
    for round in 0..60 {
        if round == 3 {
            w.handler
                .program(
                    w.programs[1],
                    ProgramCommand::ChangeRules {
                        rules: ProgramRules {
                            final_deadline_offset_days: 21,
                            ..ProgramRules::default()
                        },
                    },
                    &ctx("admin-1", ActorRole::Admin),
                )
                .await
                .unwrap();
        }
        let progressed = futures::future::join_all(sims.iter_mut().map(|s| s.step(w))).await;
        if !progressed.iter().any(|p| *p) {
            break;
        }
    }
    event_count(&w.db.pool).await
}

/// Rebuilds every read model from the start in batches of `batch`, each through its own feed.
async fn rebuild_all(w: &World, batch: i64) -> Vec<(String, Vec<String>)> {
    let models = read_models::all();
    for p in &models {
        rebuild_from_start(w.handler.store(), &w.db.url, p.as_ref(), batch).await;
        catch_up(w, p.as_ref(), batch).await;
    }
    snapshot(&w.db.pool, &models).await
}

/// Whatever the batch boundaries, the rows are those of applying the events one at a time: items
/// queued and settled within one batch, rows changed several times in one batch, a portfolio opened
/// and continued in one batch, a rules change in the middle of one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_model_gives_the_same_rows_whatever_the_batch_size() {
    let w = world().await;
    let total = varied_log(&w, 12).await;
    assert!(total > 200, "only {total} events");
    let one_by_one = rebuild_all(&w, 1).await;
    for batch in [7, total + 1] {
        let batched = rebuild_all(&w, batch).await;
        for ((table, a), (_, b)) in one_by_one.iter().zip(&batched) {
            assert!(!a.is_empty(), "{table} is empty");
            assert_eq!(a.len(), b.len(), "{table}: row counts differ at {batch}");
            for (a, b) in a.iter().zip(b) {
                assert_eq!(
                    a, b,
                    "{table}: batches of {batch} differ from single events"
                );
            }
        }
    }
    w.db.drop().await;
}

/// Five projections rebuilt at once through one feed read each batch of the log once between
/// them: a follower that applies faster waits for the others instead of leaving them to read the
/// log again (five separate readers would read it five times).
///
/// They are reset first and then resumed together, as the runner starts its projections: a reset
/// (dropping and creating tables) takes longer than reading this whole small log, and a rebuild
/// that starts after another has finished cannot share its reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_rebuilt_together_read_the_log_once() {
    let w = world().await;
    let total = varied_log(&w, 8).await;
    let batch = 20;
    let feed = LogFeed::new(w.handler.store().clone());
    let mut locks = Vec::new();
    for p in read_models::all() {
        let mut lock = ProjectionLock::connect(&w.db.url, p.name()).await.unwrap();
        assert!(lock.try_acquire().await.unwrap());
        checkpoint::reset(&w.db.pool, p.as_ref()).await.unwrap();
        locks.push((p, lock));
    }
    let rebuilds = locks.into_iter().map(|(p, mut lock)| {
        let (feed, pool) = (feed.clone(), w.db.pool.clone());
        async move {
            let options = RebuildOptions {
                restart: false,
                batch_size: batch,
            };
            let stop = AtomicBool::new(false);
            projections::rebuild(
                &feed,
                &pool,
                &mut lock,
                p.as_ref(),
                options,
                &stop,
                &mut |_| {},
            )
            .await
            .unwrap();
            lock.release().await;
        }
    });
    futures::future::join_all(rebuilds).await;
    let batches = (total + batch - 1) / batch;
    let reads = i64::try_from(feed.reads_from_log()).unwrap();
    // Each rebuild ends with one empty read (never remembered); a few reads may be made twice when
    // a follower is momentarily taken for stuck on a loaded machine.
    assert!(
        reads <= batches + 5 + batches / 4,
        "{reads} reads of the log for {batches} batches of {total} events"
    );
    w.db.drop().await;
}

/// A follower handed a full batch finds the next one already read when it asks (the feed read it
/// while the batch was applied); a batch that ends at the head of the log reads nothing ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_reads_ahead_of_full_batches_only() {
    let w = world().await;
    let total = varied_log(&w, 3).await;
    assert!(total > 40, "only {total} events");
    let feed = LogFeed::new(w.handler.store().clone());
    let follower = feed.follow();
    let first = follower.read_after(Checkpoint::START, 10).await.unwrap();
    assert_eq!(first.len(), 10);
    let read_ahead = async {
        while feed.reads_from_log() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read_ahead)
        .await
        .expect("the batch after a full one is read without being asked for");
    let second = follower
        .read_after(first.last().unwrap().checkpoint, 10)
        .await
        .unwrap();
    let direct = w
        .handler
        .store()
        .read_after_omitting_personal(first.last().unwrap().checkpoint, 10)
        .await
        .unwrap();
    let positions = |events: &[cim::store::RecordedEvent]| -> Vec<i64> {
        events.iter().map(|e| e.position()).collect()
    };
    assert_eq!(
        positions(&second),
        positions(&direct),
        "the batch read ahead is what the log holds after the one served"
    );
    // Served from memory; serving it started the read of the third batch.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(feed.reads_from_log(), 3);
    // Asking for the whole rest: the third batch (read ahead, 10 events) is less than was asked
    // for, so nothing more is read ahead; the rest, read now, ends at the head of the log.
    let mut at = second.last().unwrap().checkpoint;
    let third = follower.read_after(at, total).await.unwrap();
    assert_eq!(third.len(), 10);
    at = third.last().unwrap().checkpoint;
    let rest = follower.read_after(at, total).await.unwrap();
    assert!(!rest.is_empty() && rest.len() < usize::try_from(total).unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(feed.reads_from_log(), 4, "a batch at the head read ahead");
    w.db.drop().await;
}
