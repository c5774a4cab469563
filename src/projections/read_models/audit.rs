//! Read model `audit` (`rm_audit`, `rm_audit_streams`): an index over the log for the coordinator's
//! audit. DDL: `projections/audit.sql`.
//!
//! The index holds metadata only; content (payload and personal data) is joined from `events` when
//! a query runs, so an erasure in `events` is all it takes for the audit to stop showing personal
//! data. Three questions are answered:
//! - [`portfolio_history`]: every event of one portfolio, in order, with actor, role, time,
//!   correlation id and content;
//! - [`portfolio_as_of`]: the portfolio as it stood at a past moment, replayed through the live
//!   read model's own decisions (`portfolio::RowReplay`): the row the read model held then;
//! - [`program_log`]: one program's events filtered by time, actor and type, with keyset pages.
//!
//! Both lists export as CSV ([`audit_csv`]).

use super::portfolio::{PortfolioPage, RowReplay};
use super::stream::{
    EVENT_COLUMNS, Personal, Until, fold_portfolio, keys_for_rows, read_stream, recorded_from_row,
};
use super::view::PortfolioPersonal;
use super::{ReadError, clamp_limit};
use crate::domain::{PERSONAL_FIELD, PortfolioId, PortfolioState, ProgramId, stockholm_date};
use crate::log;
use crate::store::keys::SubjectKeys;
use crate::store::{ActorRole, Checkpoint, RecordedEvent, Upcasters};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use uuid::Uuid;

/// The `audit` projection.
#[derive(Debug)]
pub struct AuditProjection;

impl AuditProjection {
    pub fn new() -> Self {
        Self
    }
}

mod apply;

read_model! {
    AuditProjection {
        name: "audit",
        version: 1,
        definition: "audit.sql",
        tables: ["rm_audit", "rm_audit_streams"],
    }
}

/// One event as the audit shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub position: i64,
    pub transaction_id: i64,
    pub stream_id: String,
    pub stream_version: i32,
    pub portfolio_id: Option<PortfolioId>,
    pub program_id: Option<ProgramId>,
    pub event_type: String,
    /// The schema version the content is shown in (after upcasting).
    pub schema_version: i16,
    pub actor_id: String,
    pub actor_role: ActorRole,
    pub recorded_at: DateTime<Utc>,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    /// The payload with the personal data put back under `personal` (absent once erased).
    pub content: serde_json::Value,
}

fn entry(row: &PgRow, upcasters: &Upcasters, keys: &SubjectKeys) -> Result<AuditEntry, ReadError> {
    let event = recorded_from_row(row, upcasters, keys)?;
    let mut content = event.payload;
    if let (Some(personal), Some(fields)) = (event.personal, content.as_object_mut()) {
        fields.insert(PERSONAL_FIELD.to_owned(), personal);
    }
    Ok(AuditEntry {
        position: event.checkpoint.position,
        transaction_id: event.checkpoint.transaction_id,
        stream_id: event.stream_id,
        stream_version: event.version,
        portfolio_id: row
            .try_get::<Option<Uuid>, _>("audit_portfolio_id")?
            .map(PortfolioId::new),
        program_id: row
            .try_get::<Option<Uuid>, _>("audit_program_id")?
            .map(ProgramId::new),
        event_type: event.event_type,
        schema_version: event.schema_version,
        actor_id: event.actor_id,
        actor_role: event.actor_role,
        recorded_at: event.recorded_at,
        correlation_id: event.correlation_id,
        causation_id: event.causation_id,
        content,
    })
}

/// Every event of one portfolio, in stream order, with its content.
pub async fn portfolio_history(
    pool: &PgPool,
    portfolio: PortfolioId,
) -> Result<Vec<AuditEntry>, ReadError> {
    portfolio_history_page(pool, portfolio, None, None).await
}

/// The events of one portfolio after stream version `after` (from the start when `None`), in stream
/// order, at most `limit` of them (all when `None`).
pub async fn portfolio_history_page(
    pool: &PgPool,
    portfolio: PortfolioId,
    after: Option<i32>,
    limit: Option<i64>,
) -> Result<Vec<AuditEntry>, ReadError> {
    // `LIMIT NULL` is no limit. Runtime-checked: the columns are the shared `EVENT_COLUMNS`, decoded
    // from the row by name by the same code as `stream.rs`.
    let rows = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS}, a.portfolio_id AS audit_portfolio_id,
                a.program_id AS audit_program_id
         FROM rm_audit a JOIN events e ON e.position = a.position
         WHERE a.portfolio_id = $1 AND a.stream_version > $3
         ORDER BY a.stream_version
         LIMIT $4"
    ))
    .bind(portfolio.as_uuid())
    .bind(true)
    .bind(after.unwrap_or(0))
    .bind(limit.map(clamp_limit))
    .fetch_all(pool)
    .await?;
    let keys = keys_for_rows(&mut *pool.acquire().await?, &rows).await?;
    let upcasters = log::upcasters();
    rows.iter()
        .map(|row| entry(row, &upcasters, &keys))
        .collect()
}

/// Which events of a program's log to list. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    /// Recorded at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Recorded before this instant.
    pub until: Option<DateTime<Utc>>,
    pub actor_id: Option<String>,
    /// Any of these event types (e.g. `ReflectionReturned`).
    pub event_types: Vec<String>,
}

/// One page of a program's log. Pass `next` back as `after` for the following page; `None` means
/// this was the last page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next: Option<Checkpoint>,
}

/// One program's log (its own events and its portfolios'), in the log's global order, filtered, in
/// pages of `limit` after the cursor `after` (`None` for the first page).
///
/// The cursor is the (transaction id, position) of the last entry, the order the projection
/// applies events in, so an event that becomes visible later always sorts after every page
/// already read.
pub async fn program_log(
    pool: &PgPool,
    program: ProgramId,
    filter: &AuditFilter,
    after: Option<Checkpoint>,
    limit: i64,
) -> Result<AuditPage, ReadError> {
    let limit = clamp_limit(limit);
    let after = after.unwrap_or(Checkpoint::START);
    // Runtime-checked: the shared `EVENT_COLUMNS`, decoded by name as in `portfolio_history_page`.
    let rows = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS}, a.portfolio_id AS audit_portfolio_id,
                a.program_id AS audit_program_id
         FROM rm_audit a JOIN events e ON e.position = a.position
         WHERE a.program_id = $1
           AND (a.transaction_id, a.position) > ($3, $4)
           AND ($5::timestamptz IS NULL OR a.recorded_at >= $5)
           AND ($6::timestamptz IS NULL OR a.recorded_at < $6)
           AND ($7::text IS NULL OR a.actor_id = $7)
           AND (cardinality($8::text[]) = 0 OR a.event_type = ANY($8))
         ORDER BY a.transaction_id, a.position
         LIMIT $9"
    ))
    .bind(program.as_uuid())
    .bind(true)
    .bind(after.transaction_id)
    .bind(after.position)
    .bind(filter.from)
    .bind(filter.until)
    .bind(filter.actor_id.as_deref())
    .bind(&filter.event_types)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let keys = keys_for_rows(&mut *pool.acquire().await?, &rows).await?;
    let upcasters = log::upcasters();
    let entries = rows
        .iter()
        .map(|row| entry(row, &upcasters, &keys))
        .collect::<Result<Vec<_>, _>>()?;
    let next = match entries.last() {
        Some(last) if entries.len() as i64 == limit => Some(Checkpoint {
            transaction_id: last.transaction_id,
            position: last.position,
        }),
        _ => None,
    };
    Ok(AuditPage { entries, next })
}

/// The portfolio as it stood at `at` ("time travel"): the row the live read model held once it had
/// applied every event of the portfolio's stream and of its program's stream recorded at or before
/// `at`. Those events are replayed in the log's global order through the projection's own
/// decisions (`portfolio::RowReplay`), so a rules change re-renders the view (and dates it) exactly
/// as it does live, and `updated_at` is the time of the last event that changed the view. Comes
/// with the personal content of the time (as far as it has not been erased since). Days left are
/// those of `at`'s Stockholm date. `None` when the portfolio did not exist yet.
///
/// While transactions commit in the order their events were recorded (the log's normal course),
/// the events recorded by `at` are a prefix of the global order, and this is the live row right
/// after the last of them. Otherwise it is the row the projection would have built from exactly
/// those events.
pub async fn portfolio_as_of(
    pool: &PgPool,
    portfolio: PortfolioId,
    at: DateTime<Utc>,
) -> Result<Option<PortfolioPage>, ReadError> {
    let mut conn = pool.acquire().await?;
    let upcasters = log::upcasters();
    let own = read_stream(
        &mut conn,
        &upcasters,
        &portfolio.stream_id(),
        Until::RecordedAt(at),
        Personal::Include,
    )
    .await?;
    let Some(program_id) = fold_portfolio(PortfolioState::default(), &own)?
        .opened()
        .map(|p| p.program_id)
    else {
        return Ok(None);
    };
    let program = read_stream(
        &mut conn,
        &upcasters,
        &program_id.stream_id(),
        Until::RecordedAt(at),
        Personal::Omit,
    )
    .await?;
    let mut events: Vec<&RecordedEvent> = own.iter().chain(&program).collect();
    events.sort_by_key(|e| e.checkpoint);
    let mut replay = RowReplay::new(portfolio, program_id);
    for event in events {
        replay.apply(event)?;
    }
    let Some((row, p)) = replay.row() else {
        return Ok(None);
    };
    Ok(Some(PortfolioPage {
        days_left: row.view.days_left(stockholm_date(at)),
        view: row.view.clone(),
        version: row.version,
        updated_at: row.updated_at,
        personal: PortfolioPersonal::build(p),
    }))
}

/// The columns of an audit export, in order.
pub const CSV_COLUMNS: [&str; 7] = [
    "position",
    "recorded_at",
    "event_type",
    "actor_role",
    "actor_id",
    "correlation_id",
    "content",
];

/// The entries as CSV (RFC 4180, header row first), for the program's evaluation. The content column
/// is the event's JSON, personal data included as far as not erased: an export is personal data and
/// must be handled as such.
pub fn audit_csv(entries: &[AuditEntry]) -> String {
    write_csv(
        &CSV_COLUMNS,
        entries.iter().map(|e| {
            [
                e.position.to_string(),
                e.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
                e.event_type.clone(),
                e.actor_role.as_str().to_owned(),
                e.actor_id.clone(),
                e.correlation_id.to_string(),
                e.content.to_string(),
            ]
        }),
    )
}

/// The one place CSV is written (with the `csv` crate): RFC 4180 with CRLF line ends; a field is
/// quoted when it holds a comma, a quote or a line break, and quotes inside it are doubled.
fn write_csv<const N: usize>(
    header: &[&str; N],
    rows: impl Iterator<Item = [String; N]>,
) -> String {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::new());
    // Writing into memory cannot fail, and every field is a Rust string (valid UTF-8).
    writer.write_record(header).expect("CSV into memory");
    for row in rows {
        writer.write_record(&row).expect("CSV into memory");
    }
    let bytes = writer.into_inner().expect("CSV into memory");
    String::from_utf8(bytes).expect("CSV of UTF-8 fields is UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed_and_lines_end_in_crlf() {
        let csv = write_csv(
            &["a", "b", "c"],
            [
                [
                    "plain".to_owned(),
                    "with,comma".to_owned(),
                    "say \"hi\"".to_owned(),
                ],
                [
                    "line\nbreak".to_owned(),
                    " padded".to_owned(),
                    String::new(),
                ],
            ]
            .into_iter(),
        );
        assert_eq!(
            csv,
            "a,b,c\r\nplain,\"with,comma\",\"say \"\"hi\"\"\"\r\n\"line\nbreak\", padded,\r\n"
        );
    }
}
