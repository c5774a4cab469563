//! PostgreSQL clusters of a test's own, for the tests that crash, stop or adopt one: never the
//! shared test server, which every other test is using.

use cim::db::embedded::{EmbeddedConfig, EmbeddedPostgres};
use cim::db::{self, scratch};
use sqlx::PgPool;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// A data directory (`<folder>/data`, not created yet) in a new folder under /tmp, removed when the
/// returned folder is dropped. Under /tmp and world-traversable: as root the cluster runs as the
/// `postgres` user, which cannot reach a checkout under `/root`.
pub fn data_dir(prefix: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    (dir, data)
}

/// Starts a PostgreSQL cluster of the test's own in a [`data_dir`] named by `prefix`, with the
/// master key installed and a migrated database `cim` on it. Returns the folder (which must outlive
/// the cluster), the configuration to start the cluster again on the same data, the cluster, and
/// the URL of `cim` with a pool on it.
pub async fn own_cluster(
    prefix: &str,
) -> (
    tempfile::TempDir,
    EmbeddedConfig,
    EmbeddedPostgres,
    String,
    PgPool,
) {
    super::install_master_key();
    let (dir, data_dir) = data_dir(prefix);
    let config = EmbeddedConfig {
        data_dir,
        bin_dir: None,
    };
    let cluster = EmbeddedPostgres::start(config.clone()).await.unwrap();
    let url = cluster.connection_url("cim");
    scratch::create_database(&url, "cim").await.unwrap();
    let pool = db::connect(&url, 8).await.unwrap();
    db::migrate(&pool).await.unwrap();
    (dir, config, cluster, url, pool)
}
