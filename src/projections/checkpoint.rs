//! The `projection_checkpoints` table, and the two transactions that change a read model: resetting
//! it (drop tables, run DDL, defer its secondary indexes, checkpoint to the start), applying one
//! batch of events, and marking it live (building the deferred indexes).
//!
//! The runner and the offline rebuild share these functions, so "live" and "rebuilt" read models are
//! produced by literally the same code (guarantee 6).

use super::{Projection, ProjectionError, definition_hash, indexes, quote_table};
use crate::store::{Checkpoint, RecordedEvent};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Executor, PgConnection, PgPool};
use std::fmt;

/// The stored life-cycle of a read model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Caught up with the log at least once since the tables were (re)created.
    Live,
    /// The tables were recreated and the log is being applied from the start; the read model is
    /// incomplete until this becomes `Live`.
    Rebuilding,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Live => "live",
            Phase::Rebuilding => "rebuilding",
        }
    }

    fn parse(s: &str) -> Result<Self, sqlx::Error> {
        match s {
            "live" => Ok(Phase::Live),
            "rebuilding" => Ok(Phase::Rebuilding),
            other => Err(sqlx::Error::Decode(
                format!("unknown projection status {other:?}").into(),
            )),
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `projection_checkpoints`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredCheckpoint {
    pub name: String,
    pub version: i32,
    pub definition_hash: String,
    pub checkpoint: Checkpoint,
    pub events_applied: i64,
    pub phase: Phase,
    pub rebuilt_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One row of `projection_checkpoints` as read; `status` is checked by [`from_row`].
struct Row {
    name: String,
    version: i32,
    definition_hash: String,
    transaction_id: i64,
    position: i64,
    events_applied: i64,
    status: String,
    rebuilt_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn from_row(row: Row) -> Result<StoredCheckpoint, sqlx::Error> {
    Ok(StoredCheckpoint {
        phase: Phase::parse(&row.status)?,
        name: row.name,
        version: row.version,
        definition_hash: row.definition_hash,
        checkpoint: Checkpoint {
            transaction_id: row.transaction_id,
            position: row.position,
        },
        events_applied: row.events_applied,
        rebuilt_at: row.rebuilt_at,
        updated_at: row.updated_at,
    })
}

/// The stored checkpoint of projection `name`, if it was ever set up on this database.
pub async fn load(pool: &PgPool, name: &str) -> Result<Option<StoredCheckpoint>, sqlx::Error> {
    let row = sqlx::query_as!(
        Row,
        "SELECT name, version, definition_hash, transaction_id, position, events_applied, status,
                rebuilt_at, updated_at
         FROM projection_checkpoints WHERE name = $1",
        name
    )
    .fetch_optional(pool)
    .await?;
    row.map(from_row).transpose()
}

/// Every stored checkpoint, by name: includes projections this binary does not know (renamed or
/// removed ones), which `cim projections status` reports as such.
pub async fn load_all(pool: &PgPool) -> Result<Vec<StoredCheckpoint>, sqlx::Error> {
    let rows = sqlx::query_as!(
        Row,
        "SELECT name, version, definition_hash, transaction_id, position, events_applied, status,
                rebuilt_at, updated_at
         FROM projection_checkpoints ORDER BY name"
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(from_row).collect()
}

/// Just the checkpoint of `name` (the read-your-writes fallback polls this).
pub(crate) async fn load_position(
    pool: &PgPool,
    name: &str,
) -> Result<Option<Checkpoint>, sqlx::Error> {
    sqlx::query_as!(
        Checkpoint,
        "SELECT transaction_id, position FROM projection_checkpoints WHERE name = $1",
        name
    )
    .fetch_optional(pool)
    .await
}

/// Throws the read model away and starts it again from the beginning of the log: drops its tables,
/// runs its DDL and sets its checkpoint to [`Checkpoint::START`] with status `rebuilding`, all in one
/// transaction (PostgreSQL's DDL is transactional), so a crash leaves either the old read model with
/// its old checkpoint or the new empty one, never a mix.
///
/// The caller must hold the projection's lock.
pub async fn reset(pool: &PgPool, projection: &dyn Projection) -> Result<(), ProjectionError> {
    let mut tx = pool.begin().await?;
    // "table does not exist, skipping" notices of a first build are noise in the log.
    sqlx::query!("SET LOCAL client_min_messages = warning")
        .execute(&mut *tx)
        .await?;
    for table in projection.tables() {
        // Dynamic: table names come from the projection's definition, and DDL takes no parameters.
        // CASCADE: views or foreign keys built on the read model go with it; its DDL recreates them.
        sqlx::query(&format!(
            "DROP TABLE IF EXISTS {} CASCADE",
            quote_table(table)
        ))
        .execute(&mut *tx)
        .await?;
    }
    // Several statements in one string: the simple-query protocol, inside our transaction.
    // (Through the `Executor` trait: `RawSql::execute`, an `async fn` generic over the executor,
    // makes the caller's future fail the `Send` check of `tokio::spawn`.)
    (&mut *tx)
        .execute(sqlx::raw_sql(projection.definition()))
        .await?;
    // The indexes only queries need are built when the rebuild is done (indexes.rs).
    let deferred = indexes::defer(&mut tx, projection.tables()).await?;
    sqlx::query!(
        "INSERT INTO projection_checkpoints
             (name, version, definition_hash, transaction_id, position, events_applied, status,
              rebuilt_at, updated_at, deferred_indexes)
         VALUES ($1, $2, $3, 0, 0, 0, 'rebuilding', now(), now(), $4)
         ON CONFLICT (name) DO UPDATE
             SET version = EXCLUDED.version, definition_hash = EXCLUDED.definition_hash,
                 transaction_id = 0, position = 0, events_applied = 0, status = 'rebuilding',
                 rebuilt_at = now(), updated_at = now(),
                 deferred_indexes = EXCLUDED.deferred_indexes",
        projection.name(),
        version_i32(projection),
        definition_hash(projection),
        &deferred,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Applies `events` (which must directly follow `from` in the log, as
/// `EventStore::read_after_omitting_personal` returns them) and moves the checkpoint past them, in
/// ONE transaction: either the read model has the batch's changes and the checkpoint says so, or
/// neither. Returns the new checkpoint.
///
/// The checkpoint row is claimed last, with a guard on the checkpoint and definition this batch
/// starts from. If another process moved it (it advanced or rebuilt the projection while we thought
/// we owned it), the guard matches nothing and the batch is rolled back:
/// [`ProjectionError::CheckpointMoved`]. A concurrent second batch blocks on the row lock until the
/// first commits, and then fails the same way. So no event is ever applied twice.
///
/// Why last: the log's tail (`store/tail.rs`) cannot move past a transaction that has written
/// something and is still open, ours included, so every append made while a batch transaction is
/// open waits for its commit before any projection may read it. The first write gives the
/// transaction its id; claiming first made the whole batch (its reads of streams and rules, the
/// folding) such a window, and five projections' windows overlapped into a convoy that held the
/// tail back for all of them (`cim-bench` under 32 clients' commands: in a third of the moments
/// the projections were more than 50 ms behind, the next event was committed but held back by a
/// batch transaction). Claiming last leaves only the batch's writes in the window.
pub async fn apply_batch(
    pool: &PgPool,
    projection: &dyn Projection,
    hash: &str,
    from: Checkpoint,
    events: &[RecordedEvent],
) -> Result<Checkpoint, ProjectionError> {
    let Some(last) = events.last() else {
        return Ok(from);
    };
    let to = last.checkpoint;
    // Not waiting for the WAL flush: a read model is derived data, and its rows commit with their
    // checkpoint. A crash of the server can lose the last few batches, rows and checkpoint
    // together, and the projection applies them again from the log; what a reader saw before the
    // crash comes back the same. A rebuild waited for a thousand flushes a million events. Set
    // with the `BEGIN`, in the same round trip.
    let mut tx = pool
        .begin_with("BEGIN; SET LOCAL synchronous_commit = off")
        .await?;
    let conn: &mut PgConnection = &mut tx;
    projection.apply(conn, events).await?;
    let claimed = sqlx::query!(
        "UPDATE projection_checkpoints
         SET transaction_id = $5, position = $6, events_applied = events_applied + $7,
             updated_at = now()
         WHERE name = $1 AND definition_hash = $2 AND transaction_id = $3 AND position = $4",
        projection.name(),
        hash,
        from.transaction_id,
        from.position,
        to.transaction_id,
        to.position,
        events.len() as i64,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if claimed != 1 {
        // Dropping the transaction rolls it back.
        return Err(ProjectionError::CheckpointMoved {
            name: projection.name().to_owned(),
        });
    }
    tx.commit().await?;
    Ok(to)
}

/// Records that a rebuilding projection has caught up with the log, and builds the indexes its
/// reset deferred, in one transaction. Guarded by the definition so a process cannot mark someone
/// else's fresh rebuild as live.
pub async fn mark_live(pool: &PgPool, name: &str, hash: &str) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    // FOR UPDATE: a second process finishing the same rebuild waits here, then finds it live.
    let deferred = sqlx::query_scalar!(
        "SELECT deferred_indexes FROM projection_checkpoints
         WHERE name = $1 AND definition_hash = $2 AND status = 'rebuilding'
         FOR UPDATE",
        name,
        hash,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(deferred) = deferred else {
        return Ok(());
    };
    indexes::build(&mut tx, &deferred).await?;
    sqlx::query!(
        "UPDATE projection_checkpoints
         SET status = 'live', deferred_indexes = '{}', updated_at = now()
         WHERE name = $1",
        name,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// The version as stored (INTEGER). Versions beyond `i32::MAX` are not a real concern; saturate
/// rather than wrap so the "never downgrade" comparison stays right.
pub(crate) fn version_i32(projection: &dyn Projection) -> i32 {
    i32::try_from(projection.version()).unwrap_or(i32::MAX)
}
