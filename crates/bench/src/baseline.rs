//! Section 1: what PostgreSQL itself does with an event-sized row on this machine, with no store
//! logic: durable single-row inserts (each its own committed transaction, so each waits for its WAL
//! flush, as an append does) and one bulk COPY. Every other figure is a ratio to these.

use super::load::{OpError, closed_loop};
use super::report::{CopyFigure, InsertFigure};
use super::stats::rate;
use cim::db;
use cim::store::NewEvent;
use serde_json::Value;
use sqlx::PgPool;
use std::time::{Duration, Instant};

/// The same kinds of columns an event has, without the constraints, indexes and trigger that make
/// an event store of it.
const TABLE: &str = "CREATE TABLE IF NOT EXISTS bench_rows (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id   TEXT  NOT NULL,
    event_type  TEXT  NOT NULL,
    payload     JSONB NOT NULL,
    personal    JSONB
)";

/// The same table with the statement trigger (`NOTIFY cim_events`) the event log had until
/// migration 20261202000002, to show what a notification inside the appending transaction costs:
/// PostgreSQL serialises the commits of notifying transactions on one cluster-wide lock, which
/// defeats group commit (why the store now announces after its commit, `store/announce.rs`).
const NOTIFY_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS bench_rows_notify (LIKE bench_rows INCLUDING ALL);
    CREATE OR REPLACE FUNCTION bench_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('cim_events', '');
        RETURN NULL;
    END;
    $$;
    CREATE OR REPLACE TRIGGER bench_rows_notify AFTER INSERT ON bench_rows_notify
        FOR EACH STATEMENT EXECUTE FUNCTION bench_notify()";

/// Which table the inserts go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Plain,
    /// With the NOTIFY trigger of `events` (a diagnostic, not a baseline).
    Notify,
}

/// Single-row inserts from `connections` connections for `duration`.
pub async fn inserts(
    url: &str,
    sample: &NewEvent,
    connections: usize,
    duration: Duration,
    table: Table,
) -> anyhow::Result<InsertFigure> {
    let pool = db::connect(url, connections as u32).await?;
    sqlx::query(TABLE).execute(&pool).await?;
    if table == Table::Notify {
        sqlx::raw_sql(NOTIFY_TABLE).execute(&pool).await?;
    }
    let payload = sample.payload.clone();
    let personal = sample.personal.clone();
    let event_type = sample.event_type.clone();
    let p = pool.clone();
    let phase = closed_loop(connections, duration, move |worker, _| {
        let (pool, payload, personal, event_type) = (
            p.clone(),
            payload.clone(),
            personal.clone(),
            event_type.clone(),
        );
        async move {
            insert_one(&pool, table, worker, &event_type, &payload, &personal).await?;
            Ok::<_, OpError>(0)
        }
    })
    .await?;
    pool.close().await;
    Ok(InsertFigure {
        connections,
        rows: phase.completed,
        rows_per_s: rate(phase.completed, phase.elapsed),
        errors: phase.errors,
    })
}

async fn insert_one(
    pool: &PgPool,
    table: Table,
    worker: usize,
    event_type: &str,
    payload: &Value,
    personal: &Option<Value>,
) -> Result<(), sqlx::Error> {
    sqlx::query(match table {
        Table::Plain => {
            "INSERT INTO bench_rows (stream_id, event_type, payload, personal) VALUES ($1, $2, $3, $4)"
        }
        Table::Notify => {
            "INSERT INTO bench_rows_notify (stream_id, event_type, payload, personal)
             VALUES ($1, $2, $3, $4)"
        }
    })
    .bind(format!("bench-{worker}"))
    .bind(event_type)
    .bind(payload)
    .bind(personal)
    .execute(pool)
    .await?;
    Ok(())
}

/// One COPY of `rows` such rows.
pub async fn copy(url: &str, sample: &NewEvent, rows: usize) -> anyhow::Result<CopyFigure> {
    let pool = db::connect(url, 1).await?;
    sqlx::query(TABLE).execute(&pool).await?;
    let mut line = String::from("bench-copy\t");
    line.push_str(&sample.event_type);
    line.push('\t');
    super::corpus::escape_copy(&sample.payload.to_string(), &mut line);
    line.push('\t');
    match &sample.personal {
        Some(p) => super::corpus::escape_copy(&p.to_string(), &mut line),
        None => line.push_str("\\N"),
    }
    line.push('\n');
    let body = line.repeat(rows);
    let mut conn = pool.acquire().await?;
    let start = Instant::now();
    let mut sink = conn
        .copy_in_raw("COPY bench_rows (stream_id, event_type, payload, personal) FROM STDIN")
        .await?;
    sink.send(body.into_bytes()).await?;
    let copied = sink.finish().await? as usize;
    let elapsed = start.elapsed();
    drop(conn);
    pool.close().await;
    Ok(CopyFigure {
        rows: copied,
        rows_per_s: rate(copied, elapsed),
    })
}
