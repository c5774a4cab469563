//! Who may advance a projection: the holder of a session-level advisory lock, one per projection.
//!
//! Several `cim serve` processes may run on one database. Each projection must be advanced by one of
//! them at a time, or they would keep tripping over each other's checkpoint guard (correct, but
//! wasteful). The lock is taken with `pg_try_advisory_lock` on a connection of its own, opened for
//! this purpose (not borrowed from the pool) and kept open for as long as the process owns the
//! projection:
//! - a session-level lock lives exactly as long as the session, so when the owner crashes, is killed
//!   or loses its network, PostgreSQL ends the session and releases the lock, and another process
//!   takes over (non-owners retry about every second);
//! - a pooled connection would be handed to other work and could be closed by the pool at any time.
//!
//! The lock only decides who does the work; correctness does not depend on it. When an owner loses
//! its lock connection without noticing yet, the guarded checkpoint update (`checkpoint.rs`) still
//! prevents a batch from being applied twice.

use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::fmt;
use std::str::FromStr;

/// The advisory-lock key of a projection: the first 8 bytes of `sha256("cim.projection:" + name)`.
///
/// Stable across builds and platforms (unlike Rust's `Hasher`), so processes of different versions
/// agree on it; the prefix keeps it apart from other users of advisory locks on the same database.
pub fn lock_key(name: &str) -> i64 {
    let digest = Sha256::digest(format!("cim.projection:{name}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// A dedicated connection that holds (or tries to take) one projection's advisory lock.
///
/// Dropping it closes the connection, which releases the lock; [`ProjectionLock::release`] does the
/// same politely.
pub struct ProjectionLock {
    conn: PgConnection,
    name: String,
    key: i64,
    held: bool,
}

impl fmt::Debug for ProjectionLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProjectionLock")
            .field("name", &self.name)
            .field("key", &self.key)
            .field("held", &self.held)
            .finish_non_exhaustive()
    }
}

impl ProjectionLock {
    /// Opens the dedicated connection for projection `name`. Does not take the lock yet.
    pub async fn connect(database_url: &str, name: &str) -> Result<Self, sqlx::Error> {
        let conn = connect_options(database_url, "cim projection lock")?
            .connect()
            .await?;
        Ok(Self {
            conn,
            name: name.to_owned(),
            key: lock_key(name),
            held: false,
        })
    }

    /// Takes the lock if nobody holds it; never waits. Returns whether this connection holds it now.
    pub async fn try_acquire(&mut self) -> Result<bool, sqlx::Error> {
        if self.held {
            return Ok(true);
        }
        let got = sqlx::query_scalar!(r#"SELECT pg_try_advisory_lock($1) AS "got!""#, self.key)
            .fetch_one(&mut self.conn)
            .await?;
        self.held = got;
        Ok(got)
    }

    /// Whether the lock is still ours: the session is alive (a session-level lock lasts as long as
    /// its session). An error means the connection broke and the lock is gone.
    pub async fn check(&mut self) -> Result<(), sqlx::Error> {
        let result = self.conn.ping().await;
        if result.is_err() {
            self.held = false;
        }
        result
    }

    /// Whether [`try_acquire`](Self::try_acquire) succeeded and no [`check`](Self::check) failed since.
    pub fn is_held(&self) -> bool {
        self.held
    }

    /// The projection this lock is for.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Releases the lock and closes the connection. The explicit unlock makes the release take
    /// effect before this returns (a closing session lets go of its locks only once its server
    /// process has exited, a moment later), so a successor can take over at once. Errors are
    /// irrelevant: a broken connection has lost the lock already, and the server releases it when the
    /// session ends in any case.
    pub async fn release(mut self) {
        if self.held {
            let _ = sqlx::query_scalar!("SELECT pg_advisory_unlock($1)", self.key)
                .fetch_one(&mut self.conn)
                .await;
        }
        let _ = self.conn.close().await;
    }
}

/// Connect options for the runner's own connections (lock holders and the listener): statement
/// logging off (bound values may be personal data) and a recognisable `application_name` in
/// `pg_stat_activity`.
pub(crate) fn connect_options(
    database_url: &str,
    application_name: &str,
) -> Result<PgConnectOptions, sqlx::Error> {
    Ok(PgConnectOptions::from_str(database_url)?
        .disable_statement_logging()
        .application_name(application_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        // Pinned: processes of different builds must agree on the key.
        assert_eq!(lock_key("portfolio"), -6257972316638075618);
        assert_ne!(lock_key("portfolio"), lock_key("review_queue"));
    }
}
