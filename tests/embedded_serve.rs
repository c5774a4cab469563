//! `cim serve` with no DATABASE_URL runs on its own PostgreSQL cluster, and that cluster keeps its data
//! across restarts of the service.

use cim::store::{ActorRole, EventStore, ExpectedVersion, Metadata, NewEvent, Upcasters};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use uuid::Uuid;

/// A running `cim serve` child process and the base URL it printed.
struct Serve {
    child: Child,
    base: String,
}

impl Serve {
    fn start(data_dir: &Path) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cim"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env_remove("DATABASE_URL")
            .env("CIM_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start cim serve");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let base = line
            .trim()
            .strip_prefix("cim listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Serve { child, base }
    }

    /// SIGTERM, then wait for a clean exit (which stops the embedded cluster).
    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "cim serve exited with {exit}");
    }
}

impl Serve {
    /// SIGKILL: no chance to stop anything.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

async fn wait_ready(base: &str) {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status() == 200 {
                let body: serde_json::Value = r.json().await.unwrap();
                assert_eq!(body["status"], "ready");
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{base}/readyz never answered 200");
}

fn socket_url(data_dir: &Path) -> String {
    format!(
        "postgres://postgres@localhost/cim?host={}&port=5432&sslmode=disable",
        data_dir.join("run").display()
    )
}

#[tokio::test]
async fn serve_without_database_url_runs_its_own_cluster_and_keeps_data_across_restarts() {
    // Under /tmp and world-traversable: the cluster runs as the `postgres` user when we are root.
    let dir = tempfile::Builder::new()
        .prefix("cim-embedded-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data_dir = dir.path().join("data");

    let first = Serve::start(&data_dir);
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
    first.stop();
    assert!(
        !data_dir.join("pgdata/postmaster.pid").exists(),
        "the cluster must be stopped cleanly with the service"
    );

    let second = Serve::start(&data_dir);
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
    let third = Serve::start(&data_dir);
    wait_ready(&third.base).await;
    third.stop();
    assert!(
        !data_dir.join("pgdata/postmaster.pid").exists(),
        "a cluster orphaned by a killed service must be stopped by the next one"
    );
}
