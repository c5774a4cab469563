//! The secondary indexes of a read model that is rebuilt from the start of the log: built once when
//! it catches up, not entry by entry for every row the rebuild writes.
//!
//! A rebuild writes every row of a read model, and each row written updates each of its indexes: a
//! search down every B-tree, and a page written to the WAL. Building an index over the finished
//! table is one sort instead. `cim-bench` measured the audit index (a million rows, four secondary
//! indexes) at 9.5 s inserted with its indexes in place and at 1.7 s without them, plus 2.8 s to
//! build the four afterwards.
//!
//! Only indexes that queries alone need are deferred. Unique ones stay: `ON CONFLICT` and the
//! rebuild's own lookups use them, and they keep the rebuild from writing a row twice. The deferred
//! definitions are the catalog's own (`pg_get_indexdef`), recorded in the checkpoint row by the
//! transaction that resets the read model, so they survive an interrupted rebuild and are built by
//! whichever process finishes it, in the transaction that marks it live. Until then the read model
//! is incomplete anyway, and queries on it only run slower.

use super::quote_table;
use sqlx::PgConnection;

/// Drops the indexes of `tables` that are neither unique nor an exclusion constraint, and returns
/// the statements that create them again. Runs inside the reset's transaction, after the DDL.
pub(super) async fn defer(
    conn: &mut PgConnection,
    tables: &[&str],
) -> Result<Vec<String>, sqlx::Error> {
    let tables: Vec<String> = tables.iter().map(|t| quote_table(t)).collect();
    // Ordered by the index's oid: the order in which the DDL created them.
    let deferred = sqlx::query!(
        r#"
        SELECT i.indexrelid::regclass::text AS "name!",
               pg_get_indexdef(i.indexrelid) AS "definition!"
        FROM pg_index i
        WHERE i.indrelid = ANY($1::text[]::regclass[])
          AND NOT i.indisunique AND NOT i.indisexclusion
        ORDER BY i.indexrelid
        "#,
        &tables,
    )
    .fetch_all(&mut *conn)
    .await?;
    for index in &deferred {
        // Dynamic: DDL takes no parameters. The name is the catalog's own, quoted by regclass.
        sqlx::query(&format!("DROP INDEX {}", index.name))
            .execute(&mut *conn)
            .await?;
    }
    Ok(deferred.into_iter().map(|i| i.definition).collect())
}

/// Creates the indexes [`defer`] dropped. Runs inside the transaction that marks the projection
/// live, so a crash leaves it `rebuilding` with its list, and the next attempt builds them.
pub(super) async fn build(
    conn: &mut PgConnection,
    definitions: &[String],
) -> Result<(), sqlx::Error> {
    if definitions.is_empty() {
        return Ok(());
    }
    // Room to sort a large read model's keys in memory rather than in temporary files; for this
    // transaction only.
    sqlx::query!("SET LOCAL maintenance_work_mem = '256MB'")
        .execute(&mut *conn)
        .await?;
    for definition in definitions {
        // Dynamic: a `CREATE INDEX` statement as `pg_get_indexdef` wrote it when the DDL ran.
        sqlx::query(definition).execute(&mut *conn).await?;
    }
    Ok(())
}
