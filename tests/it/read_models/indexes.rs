//! A rebuild from the start of the log builds a read model's secondary indexes once, when it is
//! done (src/projections/indexes.rs): they are absent while it runs, survive an interruption as a
//! list in the checkpoint row, and come back exactly as the DDL made them.

use super::batches::varied_log;
use super::*;
use cim::projections::{ProjectionLock, RebuildOptions, RebuildOutcome, RebuildProgress};
use std::sync::atomic::{AtomicBool, Ordering};

/// The indexes of the audit's tables as the catalog states them, by name.
async fn audit_indexes(pool: &PgPool) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT indexname::text, indexdef FROM pg_indexes
         WHERE tablename IN ('rm_audit', 'rm_audit_streams') ORDER BY indexname",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn deferred(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT deferred_indexes FROM projection_checkpoints WHERE name = 'audit'")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn rebuild(
    w: &World,
    lock: &mut ProjectionLock,
    audit: &dyn Projection,
    restart: bool,
    stop_after_a_batch: bool,
) -> RebuildOutcome {
    let stop = AtomicBool::new(false);
    projections::rebuild(
        &projections::LogFeed::new(w.handler.store().clone()),
        &w.db.pool,
        lock,
        audit,
        RebuildOptions {
            restart,
            batch_size: 25,
        },
        &stop,
        &mut |progress| {
            if stop_after_a_batch && matches!(progress, RebuildProgress::Batch { .. }) {
                stop.store(true, Ordering::SeqCst);
            }
        },
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_builds_the_secondary_indexes_once_it_is_done() {
    let w = world().await;
    varied_log(&w, 4).await;
    let models = read_models::all();
    let audit = models.iter().find(|p| p.name() == "audit").unwrap();
    // The tables exactly as the DDL creates them, with every index: no rebuild involved.
    let mut tx = w.db.pool.begin().await.unwrap();
    sqlx::raw_sql("DROP TABLE IF EXISTS rm_audit, rm_audit_streams")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::raw_sql(audit.definition())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let from_ddl = audit_indexes(&w.db.pool).await;
    let secondary = [
        "rm_audit_portfolio_idx",
        "rm_audit_program_actor_idx",
        "rm_audit_program_idx",
        "rm_audit_program_time_idx",
    ];
    for name in secondary {
        assert!(
            from_ddl.iter().any(|(n, _)| n == name),
            "{name} not in the DDL"
        );
    }

    let mut lock = ProjectionLock::connect(&w.db.url, "audit").await.unwrap();
    assert!(lock.try_acquire().await.unwrap());
    // Interrupted after its first batch: the rows are being written without the secondary
    // indexes, whose definitions wait in the checkpoint row; the unique ones are in place.
    let outcome = rebuild(&w, &mut lock, audit.as_ref(), true, true).await;
    assert!(matches!(outcome, RebuildOutcome::Interrupted { .. }));
    let during: Vec<String> = audit_indexes(&w.db.pool)
        .await
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(during, ["rm_audit_pkey", "rm_audit_streams_pkey"]);
    let waiting = deferred(&w.db.pool).await;
    assert_eq!(waiting.len(), secondary.len());
    for (name, definition) in from_ddl
        .iter()
        .filter(|(n, _)| secondary.contains(&n.as_str()))
    {
        assert!(waiting.contains(definition), "{name} is not deferred");
    }

    // Resumed to the end by another rebuild: every index is back as the DDL made it, the list is
    // empty, and the projection is live.
    let outcome = rebuild(&w, &mut lock, audit.as_ref(), false, false).await;
    assert!(matches!(outcome, RebuildOutcome::Completed { .. }));
    assert_eq!(audit_indexes(&w.db.pool).await, from_ddl);
    assert!(deferred(&w.db.pool).await.is_empty());
    let stored = checkpoint::load(&w.db.pool, "audit")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.phase, projections::Phase::Live);

    // The indexes serve the audit's queries again: the program log's range scan uses its own
    // (a table this small would be scanned whole if the planner were allowed to).
    let mut tx = w.db.pool.begin().await.unwrap();
    sqlx::query("SET LOCAL enable_seqscan = off")
        .execute(&mut *tx)
        .await
        .unwrap();
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT position FROM rm_audit WHERE program_id = $1
         ORDER BY transaction_id, position LIMIT 10",
    )
    .bind(*w.programs[0].as_uuid())
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert!(
        plan.iter()
            .any(|line| line.contains("rm_audit_program_idx")),
        "{plan:?}"
    );
    lock.release().await;
    w.db.drop().await;
}
