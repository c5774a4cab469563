//! The export lock: one worker at a time, across every process on the database.

use std::fmt;

use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, PgPool};

use super::WorkerError;

/// The advisory lock that makes one worker (across all processes on the database) the only one that
/// exports. Held on a connection of its own, detached from the pool: a pooled connection could be
/// handed to other work or closed by the pool, and a session-level lock lasts exactly as long as its
/// session, so a killed holder's lock is released when PostgreSQL notices the session is gone.
pub struct ExportLock {
    conn: PgConnection,
}

impl fmt::Debug for ExportLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportLock").finish_non_exhaustive()
    }
}

/// The lock key: the first 8 bytes of `sha256("cim.export:worker")` (stable across builds; the
/// prefix keeps it apart from the projections' keys).
pub fn lock_key() -> i64 {
    let digest = Sha256::digest(b"cim.export:worker");
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

impl ExportLock {
    /// Takes the lock if nobody holds it; never waits. `None`: another worker is running.
    pub async fn try_acquire(pool: &PgPool) -> Result<Option<Self>, sqlx::Error> {
        let mut conn = pool.acquire().await?.detach();
        let got = sqlx::query_scalar!(r#"SELECT pg_try_advisory_lock($1) AS "got!""#, lock_key())
            .fetch_one(&mut conn)
            .await?;
        if got {
            Ok(Some(Self { conn }))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }

    /// The lock's own session: what is written through it is written only while the lock is held
    /// (the fence of the Ladok writes, see `delivery.rs`).
    pub(crate) fn connection(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// Fails when the lock's session is gone (and with it the lock).
    pub async fn check(&mut self) -> Result<(), WorkerError> {
        self.conn.ping().await.map_err(|_| WorkerError::LockLost)
    }

    /// Unlocks and closes the connection, so a successor can take over at once.
    pub async fn release(mut self) {
        let _ = sqlx::query_scalar!("SELECT pg_advisory_unlock($1)", lock_key())
            .fetch_one(&mut self.conn)
            .await;
        let _ = self.conn.close().await;
    }
}
