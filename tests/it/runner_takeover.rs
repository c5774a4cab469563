//! Several `cim serve` processes on one database: each projection is advanced by one of them, and
//! when that process is killed outright (no clean release), another takes over by itself.

use crate::support;

use chrono::Utc;
use cim::app::{self, CommandHandler};
use cim::domain::values::NonEmptyText;
use cim::domain::{CatalogItemId, ProgramCommand};
use cim::log;
use cim::projections::{ProjectionRunner, Scope, read_models};
use cim::store::EventStore;
use std::time::Duration;
use support::eventually;
use support::process::ServeProcess;

fn start_serve(database_url: &str) -> ServeProcess {
    ServeProcess::builder()
        .database(database_url)
        .args(["--export-scheduler", "false"])
        .start()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_owner_is_replaced_by_another_process() {
    let db = support::fresh().await;
    let names: Vec<&str> = read_models::all().iter().map(|p| p.name()).collect();

    let store = EventStore::new(db.pool.clone(), log::upcasters());
    let handler = CommandHandler::new(store.clone());
    let seeded = app::seed_pilot_programs(&handler, "admin-1", Utc::now())
        .await
        .unwrap();
    let seed_events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();

    // Process A starts first, sets up (and owns) every projection, and projects the history.
    let a = start_serve(&db.url);
    eventually(
        "process A has projected the history into every read model",
        async || {
            let rows: Vec<(i64, String)> =
                sqlx::query_as("SELECT events_applied, status FROM projection_checkpoints")
                    .fetch_all(&db.pool)
                    .await
                    .unwrap_or_default();
            rows.len() == names.len() && rows.iter().all(|(n, s)| *n == seed_events && s == "live")
        },
    )
    .await;

    // Runner B, in this process, waits for the locks.
    let b = ProjectionRunner::start(store.clone(), db.pool.clone(), &db.url, read_models::all());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        b.status().projections.iter().all(|p| !p.owned),
        "B must not advance projections that A owns"
    );

    // A dies without releasing anything; its sessions end with it, and so do its locks.
    a.kill();
    eventually("B owns every projection", async || {
        b.status().projections.iter().all(|p| p.owned)
    })
    .await;

    // B carries on from A's checkpoints: new events reach every read model, and nothing A applied
    // is applied again.
    let ctx = support::admin_context();
    let added = handler
        .program(
            seeded[0].id,
            ProgramCommand::AddCatalogItem {
                item: CatalogItemId::parse("after-takeover").unwrap(),
                name: NonEmptyText::parse("After the takeover", "name", 200).unwrap(),
            },
            &ctx,
        )
        .await
        .unwrap();
    b.wait_for(
        Scope::All,
        added.outcome.unwrap().checkpoint,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_audit")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let distinct: i64 = sqlx::query_scalar("SELECT count(DISTINCT position) FROM rm_audit")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        (audited, distinct),
        (events, events),
        "every event audited exactly once"
    );
    b.shutdown().await;
    db.drop().await;
}
