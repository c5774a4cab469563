//! `cim serve` with no DATABASE_URL runs on its own PostgreSQL cluster, and that cluster keeps its data
//! across restarts of the service.

use crate::support;

use cim::store::{ActorRole, EventStore, ExpectedVersion, Metadata, NewEvent, Upcasters};
use std::path::Path;
use support::process::{ServeProcess, wait_ready};
use uuid::Uuid;

/// `cim serve` without DATABASE_URL, on its own cluster in `data_dir`.
fn serve(data_dir: &Path) -> ServeProcess {
    ServeProcess::builder().embedded(data_dir).start()
}

/// SIGTERM, then a clean exit (which stops the embedded cluster).
fn stop(serve: ServeProcess) {
    let exit = serve.terminate();
    assert!(exit.success(), "cim serve exited with {exit}");
}

fn socket_url(data_dir: &Path) -> String {
    format!(
        "postgres://postgres@localhost/cim?host={}&port=5432&sslmode=disable",
        data_dir.join("run").display()
    )
}

#[tokio::test]
async fn serve_without_database_url_runs_its_own_cluster_and_keeps_data_across_restarts() {
    let (_dir, data_dir) = support::embedded::data_dir("cim-embedded-");

    let first = serve(&data_dir);
    wait_ready(&first.base).await;
    let health: serde_json::Value = reqwest::get(format!("{}/healthz", first.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");

    let event_id = Uuid::now_v7();
    {
        let pool = cim::db::connect(&socket_url(&data_dir), 2).await.unwrap();
        let store = EventStore::new(pool.clone(), Upcasters::new());
        let event = NewEvent {
            event_id,
            event_type: "Marker".into(),
            schema_version: 1,
            payload: serde_json::json!({}),
            personal: None,
            data_subject: None,
        };
        let meta = Metadata {
            actor_id: "test".into(),
            actor_role: ActorRole::System,
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            command_id: Uuid::now_v7(),
        };
        store
            .append("marker", ExpectedVersion::NoStream, &[event], &meta)
            .await
            .unwrap();
        pool.close().await;
    }
    stop(first);
    assert!(
        !data_dir.join("pgdata/postmaster.pid").exists(),
        "the cluster must be stopped cleanly with the service"
    );

    let second = serve(&data_dir);
    wait_ready(&second.base).await;
    let pool = cim::db::connect(&socket_url(&data_dir), 2).await.unwrap();
    let store = EventStore::new(pool.clone(), Upcasters::new());
    let events = store.read_stream("marker", 0).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_id, event_id);
    pool.close().await;

    // A service killed outright leaves its cluster running; the next one adopts it, and stops it.
    second.kill();
    assert!(data_dir.join("pgdata/postmaster.pid").exists());
    let third = serve(&data_dir);
    wait_ready(&third.base).await;
    stop(third);
    assert!(
        !data_dir.join("pgdata/postmaster.pid").exists(),
        "a cluster orphaned by a killed service must be stopped by the next one"
    );
}
