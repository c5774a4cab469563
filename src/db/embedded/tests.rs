//! Test of the embedded cluster: it starts, keeps its data across a stop and a restart, and stops.

use super::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;

/// Stops the test cluster even when an assertion panics, so no server outlives the test.
/// Synchronous because it runs in `Drop`; stopping an already stopped cluster is harmless.
struct StopOnDrop {
    pgdata: PathBuf,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let (Ok(binaries), Ok(run_as)) = (find_binaries(None), RunAs::detect()) else {
            return;
        };
        let mut command = std::process::Command::new(&binaries.pg_ctl);
        command
            .arg("-D")
            .arg(&self.pgdata)
            .args(["-m", "immediate", "-w", "stop"])
            .current_dir("/")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let RunAs::User { uid, gid } = run_as {
            command.uid(uid).gid(gid);
        }
        let _ = command.status();
    }
}

async fn connect(url: &str) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_keeps_data_across_restarts() {
    // Under /tmp (not a private 0700 tempdir) and opened up, so the postgres user can reach
    // it when we run as root. Space and comma exercise the quoting of paths.
    let tmp = tempfile::Builder::new()
        .prefix("cim embedded, test-")
        .tempdir_in("/tmp")
        .unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let data_dir = tmp.path().join("data");
    // Declared after `tmp`, so it is dropped (stopping the server) before the folder goes.
    let _guard = StopOnDrop {
        pgdata: data_dir.join("pgdata"),
    };
    let config = EmbeddedConfig {
        data_dir: data_dir.clone(),
        bin_dir: None,
    };

    let pg = EmbeddedPostgres::start(config.clone()).await.unwrap();
    assert!(pg.is_owned());
    assert_eq!(pg.data_dir(), fs::canonicalize(&data_dir).unwrap());
    let pgdata = fs::metadata(data_dir.join("pgdata")).unwrap();
    assert_eq!(pgdata.mode() & 0o777, 0o700);
    if let RunAs::User { uid, .. } = RunAs::detect().unwrap() {
        assert_eq!(pgdata.uid(), uid, "pgdata must belong to the server user");
    }

    let url = pg.connection_url("postgres");
    let mut conn = connect(&url).await;
    // Runtime-checked: `kept` lives only in this test's own cluster, not in the application schema.
    sqlx::query("CREATE TABLE kept (id int PRIMARY KEY, note text NOT NULL)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO kept VALUES (1, 'survives restarts')")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    // A second start while it runs adopts the server, and its stop leaves it running.
    let adopted = EmbeddedPostgres::start(config.clone()).await.unwrap();
    assert!(!adopted.is_owned());
    adopted.stop().await.unwrap();
    connect(&url).await.close().await.unwrap();

    pg.stop().await.unwrap();
    assert!(
        sqlx::PgConnection::connect(&url).await.is_err(),
        "server still reachable after stop"
    );

    let pg = EmbeddedPostgres::start(config).await.unwrap();
    assert!(pg.is_owned());
    let mut conn = connect(&pg.connection_url("postgres")).await;
    // Runtime-checked: `kept` is this test's own table (see above).
    let note: String = sqlx::query_scalar("SELECT note FROM kept WHERE id = 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(note, "survives restarts");
    conn.close().await.unwrap();
    pg.stop().await.unwrap();
}
