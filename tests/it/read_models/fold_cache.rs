//! The command handler's cache of folded states serves only the version it holds.

use super::*;

/// Applies the first `n` events of the log to `projection` from its start, in batches of `batch`.
async fn apply_first(w: &World, projection: &dyn Projection, n: i64, batch: i64) {
    let hash = definition_hash(projection);
    let (mut at, mut applied) = (Checkpoint::START, 0);
    while applied < n {
        let events = next_batch(w, at, batch.min(n - applied)).await;
        at = checkpoint::apply_batch(&w.db.pool, projection, &hash, at, &events)
            .await
            .unwrap();
        applied += events.len() as i64;
    }
}

/// The projections keep the states they folded per stream and version (src/projections/
/// read_models/stream.rs, "Fold cache"). Instances whose caches hold every stream's final state are
/// reset and made to apply only the first part of the log (a restarted rebuild), then have a batch
/// rolled back and are taken over by other instances: each time they must build exactly the rows
/// of instances that never cached anything. A state used for a version other than the one it holds
/// would show up as a later state in a row of the prefix.
#[tokio::test]
async fn cached_folds_are_only_used_for_the_version_they_hold() {
    let w = world().await;
    let pool = &w.db.pool;
    for n in 0..3 {
        let (p, s) = open(&w, (n % 2) as usize, 900 + n).await;
        complete_and_apply(&w, (n % 2) as usize, p, &s).await;
    }
    // A rules change in the middle: the statistics judge every state by the rules in force.
    admin(
        &w,
        0,
        ProgramCommand::ChangeRules {
            rules: ProgramRules {
                required_activities: 2,
                ..ProgramRules::default()
            },
        },
    )
    .await;
    let (p, s) = open(&w, 0, 910).await;
    complete_and_apply(&w, 0, p, &s).await;

    let cached = read_models::all();
    for p in &cached {
        catch_up(&w, p.as_ref(), 5).await;
    }
    let full = snapshot(pool, &cached).await;
    let total = event_count(pool).await;
    for prefix in [total / 3, 2 * total / 3] {
        for p in &cached {
            checkpoint::reset(pool, p.as_ref()).await.unwrap();
            apply_first(&w, p.as_ref(), prefix, 4).await;
        }
        let replayed = snapshot(pool, &cached).await;
        assert_ne!(replayed, full, "a prefix of the log shows less");
        let fresh = read_models::all();
        for p in &fresh {
            checkpoint::reset(pool, p.as_ref()).await.unwrap();
            apply_first(&w, p.as_ref(), prefix, 4).await;
        }
        assert_eq!(
            replayed,
            snapshot(pool, &fresh).await,
            "cached instances after {prefix} events"
        );
    }

    // A rolled-back batch leaves states beyond the checkpoint in the caches.
    let all_events = next_batch(&w, Checkpoint::START, total).await;
    let mut tx = pool.begin().await.unwrap();
    for p in &cached {
        p.apply(&mut tx, &all_events[(2 * total / 3) as usize..])
            .await
            .unwrap();
    }
    tx.rollback().await.unwrap();
    // Other instances advance a little (a takeover), then the cached ones finish.
    let others = read_models::all();
    for (p, other) in cached.iter().zip(&others) {
        let stored = checkpoint::load(pool, other.name()).await.unwrap().unwrap();
        let events = next_batch(&w, stored.checkpoint, 3).await;
        checkpoint::apply_batch(
            pool,
            other.as_ref(),
            &definition_hash(other.as_ref()),
            stored.checkpoint,
            &events,
        )
        .await
        .unwrap();
        catch_up(&w, p.as_ref(), 7).await;
    }
    assert_eq!(snapshot(pool, &cached).await, full);
    w.db.drop().await;
}
