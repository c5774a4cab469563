//! Connection pools and migrations.

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use std::str::FromStr;
use std::time::Duration;

/// The schema, compiled into the binary from `migrations/`.
pub static MIGRATOR: Migrator = sqlx::migrate!();

/// Opens a pool tuned for short statements.
///
/// `test_before_acquire` is off: it costs a round trip on every checkout, which is most of the
/// overhead of a single-statement append. A connection that died is noticed by the statement that
/// uses it, which the caller handles anyway.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?
        // Statement logging would print bound values (personal data) at debug level.
        .disable_statement_logging()
        .application_name("cim")
        // A future dropped inside a transaction (a client that hung up, an aborted task) returns
        // its connection with the ROLLBACK only queued; until that connection is used again the
        // transaction stays open and holds its locks and the log's snapshot horizon. The server
        // ends such a session after this long, so nothing waits on it for good.
        .options([("idle_in_transaction_session_timeout", "30s")]);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire(false)
        .connect_with(options)
        .await
}

/// Applies every migration not yet applied. Safe to run from several processes at once: sqlx holds
/// an advisory lock while it migrates.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// Whether the database has every migration this binary knows, applied successfully.
pub async fn migrations_applied(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    // Before the first migration the bookkeeping table does not exist; a query naming it would fail
    // at parse time, so ask whether it exists first.
    let exists =
        sqlx::query_scalar!(r#"SELECT to_regclass('_sqlx_migrations') IS NOT NULL AS "exists!""#)
            .fetch_one(pool)
            .await?;
    if !exists {
        return Ok(false);
    }
    let applied = sqlx::query_scalar!("SELECT max(version) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await?;
    Ok(applied.unwrap_or(0) >= latest)
}
