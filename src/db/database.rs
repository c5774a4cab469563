//! The database a process runs on: a server named by `DATABASE_URL`, or the embedded cluster.

use super::embedded::{EmbeddedConfig, EmbeddedPostgres};
use super::{connect, migrate, scratch};
use sqlx::PgPool;
use std::path::PathBuf;
use thiserror::Error;

/// Where to find (or how to make) the database.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// A server to use as it is. When absent, the embedded cluster is started.
    pub database_url: Option<String>,
    /// The embedded cluster's home (data, socket, log).
    pub data_dir: PathBuf,
    /// Where the PostgreSQL server binaries are, if not on PATH or under /usr/lib/postgresql.
    pub pg_bin_dir: Option<PathBuf>,
    pub max_connections: u32,
}

/// The database name `cim` uses inside its embedded cluster.
const EMBEDDED_DATABASE: &str = "cim";

/// How long [`Database::close`] waits for connections in use to be returned.
pub const POOL_CLOSE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum DatabaseError {
    #[error(transparent)]
    Embedded(#[from] super::embedded::EmbeddedError),
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot apply migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// An open, migrated database and, when we started it, the embedded cluster behind it.
#[derive(Debug)]
pub struct Database {
    pub pool: PgPool,
    /// The URL the pool connects to (for subprocesses and extra listener connections).
    pub url: String,
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// Connects (starting the embedded cluster first when no URL is configured) and migrates.
    pub async fn open(settings: &DatabaseSettings) -> Result<Self, DatabaseError> {
        let (url, embedded) = match &settings.database_url {
            Some(url) => (url.clone(), None),
            None => {
                let cluster = EmbeddedPostgres::start(EmbeddedConfig {
                    data_dir: settings.data_dir.clone(),
                    bin_dir: settings.pg_bin_dir.clone(),
                })
                .await?;
                let url = cluster.connection_url(EMBEDDED_DATABASE);
                if let Err(e) = scratch::create_database(&url, EMBEDDED_DATABASE).await {
                    let _ = cluster.stop().await;
                    return Err(DatabaseError::Connect(e));
                }
                (url, Some(cluster))
            }
        };
        let opened = async {
            let pool = connect(&url, settings.max_connections)
                .await
                .map_err(DatabaseError::Connect)?;
            migrate(&pool).await?;
            Ok::<_, DatabaseError>(pool)
        }
        .await;
        match opened {
            Ok(pool) => Ok(Self {
                pool,
                url,
                embedded,
            }),
            Err(e) => {
                if let Some(cluster) = embedded {
                    let _ = cluster.stop().await;
                }
                Err(e)
            }
        }
    }

    /// Closes the pool and stops the embedded cluster if this process started it.
    ///
    /// Closing waits for connections in use to come back, but at most [`POOL_CLOSE_LIMIT`]: a
    /// request that `cim serve` stopped waiting for (its drain deadline passed) may hold one for
    /// ever. The cluster's fast shutdown then ends that session too.
    pub async fn close(self) -> Result<(), DatabaseError> {
        if tokio::time::timeout(POOL_CLOSE_LIMIT, self.pool.close())
            .await
            .is_err()
        {
            tracing::warn!("database connections still in use at shutdown are abandoned");
        }
        if let Some(cluster) = self.embedded {
            cluster.stop().await?;
        }
        Ok(())
    }

    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }
}
