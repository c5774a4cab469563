//! Creating and dropping whole databases on a server: used by the embedded cluster (its `cim`
//! database), by `cim-bench` (a scratch database it drops afterwards) and by the tests (one database
//! per test, so tests never see each other's data and can run in parallel).

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::str::FromStr;

/// `url` with its database name replaced by `database`.
pub fn with_database(url: &str, database: &str) -> Result<String, sqlx::Error> {
    let mut parsed = url::Url::parse(url).map_err(|e| sqlx::Error::Configuration(Box::new(e)))?;
    parsed.set_path(&format!("/{database}"));
    Ok(parsed.to_string())
}

/// Creates `database` on the server behind `url` unless it exists. `database` must be a plain
/// identifier (letters, digits, underscores): it is quoted, but callers choose it, never users.
pub async fn create_database(url: &str, database: &str) -> Result<(), sqlx::Error> {
    assert_identifier(database);
    let mut conn = admin_connection(url).await?;
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS "exists!""#,
        database
    )
    .fetch_one(&mut conn)
    .await?;
    if !exists {
        // CREATE DATABASE takes no bind parameters; the name is checked above.
        let result = sqlx::query(&format!(r#"CREATE DATABASE "{database}""#))
            .execute(&mut conn)
            .await;
        match result {
            Ok(_) => {}
            // Another process created it between our check and our CREATE: fine.
            Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("42P04") => {}
            Err(e) => return Err(e),
        }
    }
    conn.close().await
}

/// Drops `database`, disconnecting anyone still connected to it.
pub async fn drop_database(url: &str, database: &str) -> Result<(), sqlx::Error> {
    assert_identifier(database);
    let mut conn = admin_connection(url).await?;
    // DROP DATABASE takes no bind parameters; the name is checked above.
    sqlx::query(&format!(
        r#"DROP DATABASE IF EXISTS "{database}" WITH (FORCE)"#
    ))
    .execute(&mut conn)
    .await?;
    conn.close().await
}

/// A connection to the server's `postgres` database, from which databases are created and dropped.
async fn admin_connection(url: &str) -> Result<PgConnection, sqlx::Error> {
    PgConnectOptions::from_str(url)?
        .database("postgres")
        .disable_statement_logging()
        .connect()
        .await
}

fn assert_identifier(name: &str) {
    assert!(
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "database names are chosen by the program and must be plain identifiers: {name:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_the_database_name() {
        assert_eq!(
            with_database(
                "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
                "t1"
            )
            .unwrap(),
            "postgres://postgres@127.0.0.1:5432/t1?sslmode=disable"
        );
        assert_eq!(
            with_database(
                "postgres://postgres@localhost/cim?host=/var/lib/cim/run&port=5432",
                "x"
            )
            .unwrap(),
            "postgres://postgres@localhost/x?host=/var/lib/cim/run&port=5432"
        );
    }
}
