//! Applying a batch to the audit's index: one row per event, written with one statement per table.

use super::super::ReadError;
use super::super::batch::json_rows;
use super::super::stream::decode_portfolio_event;
use super::AuditProjection;
use crate::domain::portfolio::PortfolioEvent;
use crate::domain::{PortfolioId, ProgramId};
use crate::log::{StreamKind, stream_kind};
use crate::store::RecordedEvent;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

/// A row of `rm_audit` under its column names.
#[derive(Serialize)]
struct Row<'a> {
    position: i64,
    transaction_id: i64,
    stream_id: &'a str,
    stream_version: i32,
    portfolio_id: Option<PortfolioId>,
    program_id: Option<ProgramId>,
    event_type: &'a str,
    actor_id: &'a str,
    actor_role: &'static str,
    recorded_at: DateTime<Utc>,
    correlation_id: Uuid,
    causation_id: Option<Uuid>,
}

/// A row of `rm_audit_streams`: the program a portfolio stream was opened in.
#[derive(Serialize)]
struct Opened<'a> {
    stream_id: &'a str,
    program_id: ProgramId,
}

impl AuditProjection {
    pub(super) async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ReadError> {
        let stored = stored_programs(conn, events).await?;
        let mut opened: Vec<Opened<'_>> = Vec::new();
        // The streams this batch opened so far: an event sees only what came before it.
        let mut opened_here: HashMap<&str, ProgramId> = HashMap::new();
        let mut rows = Vec::with_capacity(events.len());
        for event in events {
            let (portfolio_id, program_id) = match stream_kind(&event.stream_id) {
                StreamKind::Portfolio(portfolio_id) => {
                    let program = if event.event_type == "PortfolioOpened" {
                        let program = opened_in(event)?;
                        if let Some(program_id) = program {
                            opened_here.insert(&event.stream_id, program_id);
                            opened.push(Opened {
                                stream_id: &event.stream_id,
                                program_id,
                            });
                        }
                        program
                    } else {
                        opened_here
                            .get(event.stream_id.as_str())
                            .or_else(|| stored.get(event.stream_id.as_str()))
                            .copied()
                    };
                    (Some(portfolio_id), program)
                }
                StreamKind::Program(program_id) => (None, Some(program_id)),
                StreamKind::Batch(_) | StreamKind::Other => (None, None),
            };
            rows.push(Row {
                position: event.position(),
                transaction_id: event.checkpoint.transaction_id,
                stream_id: &event.stream_id,
                stream_version: event.version,
                portfolio_id,
                program_id,
                event_type: &event.event_type,
                actor_id: &event.actor_id,
                actor_role: event.actor_role.as_str(),
                recorded_at: event.recorded_at,
                correlation_id: event.correlation_id,
                causation_id: event.causation_id,
            });
        }
        if !opened.is_empty() {
            // DO NOTHING: a stream keeps the program it was first opened in.
            sqlx::query!(
                "INSERT INTO rm_audit_streams (stream_id, program_id)
                 SELECT stream_id, program_id
                 FROM jsonb_to_recordset($1::text::jsonb) AS r(stream_id TEXT, program_id UUID)
                 ON CONFLICT (stream_id) DO NOTHING",
                json_rows(&opened)?,
            )
            .execute(&mut *conn)
            .await?;
        }
        if !rows.is_empty() {
            sqlx::query!(
                "INSERT INTO rm_audit
                     (position, transaction_id, stream_id, stream_version, portfolio_id,
                      program_id, event_type, actor_id, actor_role, recorded_at, correlation_id,
                      causation_id)
                 SELECT position, transaction_id, stream_id, stream_version, portfolio_id,
                        program_id, event_type, actor_id, actor_role, recorded_at,
                        correlation_id, causation_id
                 FROM jsonb_to_recordset($1::text::jsonb) AS r(
                     position BIGINT, transaction_id BIGINT, stream_id TEXT,
                     stream_version INTEGER, portfolio_id UUID, program_id UUID, event_type TEXT,
                     actor_id TEXT, actor_role TEXT, recorded_at TIMESTAMPTZ,
                     correlation_id UUID, causation_id UUID)",
                json_rows(&rows)?,
            )
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// The programs, as stored by earlier batches, of the portfolio streams whose events in `events`
/// are not their opening: one query for the batch.
async fn stored_programs(
    conn: &mut PgConnection,
    events: &[RecordedEvent],
) -> Result<HashMap<String, ProgramId>, ReadError> {
    let mut streams: Vec<&str> = events
        .iter()
        .filter(|e| {
            e.event_type != "PortfolioOpened"
                && matches!(stream_kind(&e.stream_id), StreamKind::Portfolio(_))
        })
        .map(|e| e.stream_id.as_str())
        .collect();
    if streams.is_empty() {
        return Ok(HashMap::new());
    }
    streams.sort_unstable();
    streams.dedup();
    // A join on the unnested list, not `stream_id = ANY($1)`: that plan rechecks every row found
    // against the whole list, and with a few hundred streams a batch the comparisons were a tenth
    // of the server's time in a rebuild of the audit alone (`perf`).
    let rows = sqlx::query!(
        r#"SELECT s.stream_id AS "stream_id!", s.program_id AS "program_id!"
           FROM unnest($1::text[]) AS wanted(stream_id)
           JOIN rm_audit_streams s ON s.stream_id = wanted.stream_id"#,
        &streams as &[&str],
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.stream_id, ProgramId::new(r.program_id)))
        .collect())
}

/// The program a portfolio's opening event opens it in.
fn opened_in(event: &RecordedEvent) -> Result<Option<ProgramId>, ReadError> {
    Ok(match decode_portfolio_event(event)? {
        PortfolioEvent::PortfolioOpened(opened) => Some(opened.program_id),
        _ => None,
    })
}
