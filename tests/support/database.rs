//! A fresh database per test on a real PostgreSQL server, and the master key of the test process.
//! Shared by every test binary of the workspace (the crates' own tests include this file alone).
#![allow(dead_code)]

use cim::db::{self, scratch};
use sqlx::PgPool;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::OnceCell;

static SERVER_URL: OnceCell<String> = OnceCell::const_new();

/// A database of one's own, migrated, with a pool on it.
#[derive(Debug)]
pub struct TestDb {
    pub pool: PgPool,
    pub url: String,
    pub name: String,
}

impl TestDb {
    /// Drops the database. Tests call this at the end; a test that panics leaves its database behind,
    /// and the next run's `fresh` removes leftovers older than a few hours.
    pub async fn drop(self) {
        self.pool.close().await;
        let _ = scratch::drop_database(&self.url, &self.name).await;
    }
}

/// Installs the master key of the personal data in this test process: the one `cim` itself would
/// load from the same environment (`CIM_MASTER_KEY`, `CIM_MASTER_KEY_FILE`, else
/// `<data dir>/master.key`, generated once), so `cim` binaries the tests start read what the tests
/// wrote and the other way round.
pub fn install_master_key() {
    let (key, _) = cim::crypto::MasterKeySettings::from_env()
        .load()
        .expect("load or generate the master key");
    cim::crypto::install(key).expect("install the master key");
}

/// Waits until `check` holds, polling every 100 ms; fails the test after a minute (a bound generous
/// enough that a loaded machine makes a test slower, not red).
pub async fn eventually<F: AsyncFnMut() -> bool>(what: &str, mut check: F) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A new, migrated database.
pub async fn fresh() -> TestDb {
    install_master_key();
    let name = fresh_unmigrated_name().await;
    let url = scratch::with_database(server_url().await, &name).unwrap();
    let pool = db::connect(&url, 40)
        .await
        .expect("connect to the test database");
    db::migrate(&pool).await.expect("migrate the test database");
    TestDb { pool, url, name }
}

/// Creates an empty database and returns its name (for tests of migrating itself).
pub async fn fresh_unmigrated_name() -> String {
    install_master_key();
    let server = server_url().await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let name = format!("cim_test_{now}_{}", uuid::Uuid::new_v4().simple());
    scratch::create_database(server, &name)
        .await
        .expect("create a test database");
    name
}

/// The URL of the server the tests use, decided once per test binary.
pub async fn server_url() -> &'static str {
    SERVER_URL
        .get_or_init(|| async {
            let url = match std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) {
                Some(url) => url,
                None => {
                    let local = "postgres://postgres@127.0.0.1:5432/postgres".to_owned();
                    if db::connect(&local, 1).await.is_ok() {
                        local
                    } else {
                        embedded_server().await
                    }
                }
            };
            remove_stale_databases(&url).await;
            url
        })
        .await
}

/// Starts (or joins) an embedded cluster in the system's temporary folder, for machines with
/// PostgreSQL binaries but no running server. It is left running for the next test binary. Not under
/// `target/`: as root the cluster runs as `postgres`, which cannot reach a checkout under `/root`.
async fn embedded_server() -> String {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("cim-test-postgres-{uid}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cluster = db::embedded::EmbeddedPostgres::start(db::embedded::EmbeddedConfig {
        data_dir: dir,
        bin_dir: None,
    })
    .await
    .expect("no DATABASE_URL, no server on 127.0.0.1:5432, and the embedded cluster did not start");
    let url = cluster.connection_url("postgres");
    // Keep it running past this process: the next test binary reuses it.
    std::mem::forget(cluster);
    url
}

/// Drops test databases left behind by panicking tests of earlier runs (older than three hours, so a
/// concurrently running test binary never loses its database).
async fn remove_stale_databases(url: &str) {
    let Ok(pool) = db::connect(&scratch::with_database(url, "postgres").unwrap(), 1).await else {
        return;
    };
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'cim_test_%'")
            .fetch_all(&pool)
            .await
            .unwrap_or_default();
    pool.close().await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for name in names {
        let created: u64 = name
            .split('_')
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if now.saturating_sub(created) > 3 * 3600 {
            let _ = scratch::drop_database(url, &name).await;
        }
    }
}
