//! A dump restored into another cluster keeps the old transaction ids in the log while the new
//! cluster counts from a few hundred: every consumer of the tail would skip what is appended next.
//! `cim` refuses to start on such a database and names the fix (`docs/backup.md`, step 3).

use crate::support;
use crate::support::cohort::cim as run_cim;

#[tokio::test]
async fn cim_refuses_a_database_whose_log_is_ahead_of_its_transaction_ids() {
    let db = support::fresh().await;
    assert_eq!(
        cim::store::check_transaction_ids(&db.pool).await.unwrap(),
        Ok(())
    );
    let fine = run_cim(&db.url, &["projections", "status"]);
    assert!(
        fine.status.success(),
        "{}",
        String::from_utf8_lossy(&fine.stderr)
    );

    // An event appended, as on the old server, by a transaction of the next epoch.
    sqlx::query(
        "INSERT INTO events (transaction_id, stream_id, version, event_id, event_type,
                             schema_version, payload, actor_id, actor_role, correlation_id, command_id)
         VALUES ((pg_current_xact_id()::text::bigint + 4294967296)::text::xid8, 'test-restored', 1,
                 gen_random_uuid(), 'Restored', 1, '{}', 'system', 'system', gen_random_uuid(),
                 gen_random_uuid())",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let behind = cim::store::check_transaction_ids(&db.pool)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(behind.epoch, 2);
    let refused = run_cim(&db.url, &["projections", "status"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("pg_resetwal --epoch=2"), "{stderr}");
    db.drop().await;
}
