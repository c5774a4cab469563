//! Reading a stream back from `events` inside a projection's batch transaction (or a query's
//! connection), upcast and decoded exactly like the command handler does.
//!
//! The projections need a portfolio's previous state and its program's rules to build a row. They
//! fold them from the log rather than keep copies, so the log stays the only source of truth; the
//! bounds in [`Until`] make sure that a live run and a rebuild fold exactly the same events.
//!
//! Performance note: every portfolio event re-reads its stream (and its program's stream). A
//! per-batch cache keyed by stream id (state + version, dropped when the batch transaction ends)
//! would go in front of [`read_stream`]; it is left out until measurements ask for it, because a
//! cache that outlived a rolled-back batch would make the read model differ from the log.

use super::ReadError;
use crate::app::{decode_portfolio, decode_program};
use crate::domain::rules::ProgramRules;
use crate::domain::{
    PortfolioEvent, PortfolioId, PortfolioState, ProgramEvent, ProgramId, ProgramState, portfolio,
    program,
};
use crate::store::keys::{SubjectKeys, sealed_subjects};
use crate::store::{ActorRole, Checkpoint, RecordedEvent, Upcasters};
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

/// The columns of `events` that make a [`RecordedEvent`], under the names [`recorded_from_row`]
/// reads. `$2` decides whether the personal column is read at all: folds for read models never
/// read it, so nothing personal can end up in a row by accident.
pub(super) const EVENT_COLUMNS: &str = "e.position, e.transaction_id::text::bigint AS xid, \
     e.stream_id, e.version, e.event_id, e.event_type, e.schema_version, e.payload, \
     CASE WHEN $2::boolean THEN e.personal END AS personal, e.data_subject, e.actor_id, \
     e.actor_role, e.correlation_id, e.causation_id, e.command_id, e.recorded_at";

/// Which part of a stream to read. Every bound is stable: the events it selects can no longer
/// change once the event being applied is readable, which is what makes rebuild = live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Until {
    /// Versions below this one: the stream as it stood before the event of that version.
    BeforeVersion(i32),
    /// Versions up to and including this one: the state a stored row was built from.
    Version(i32),
    /// Events recorded at or before this instant: time travel.
    RecordedAt(DateTime<Utc>),
    /// Events before this point of the global order. A projection applies events in that order, so
    /// this is "the stream as the projection has seen it so far"; every transaction below the
    /// checkpoint's has ended, so the set is final.
    Before(Checkpoint),
}

/// Whether to read the personal column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Personal {
    /// For read-model rows: never copy personal data.
    Omit,
    /// For query functions that show personal content to someone entitled to see it.
    Include,
}

/// The events of `stream_id` within `until`, in version order, upcast.
pub(super) async fn read_stream(
    conn: &mut PgConnection,
    upcasters: &Upcasters,
    stream_id: &str,
    until: Until,
    personal: Personal,
) -> Result<Vec<RecordedEvent>, ReadError> {
    let bound = match until {
        Until::BeforeVersion(_) => "e.version < $3",
        Until::Version(_) => "e.version <= $3",
        Until::RecordedAt(_) => "e.recorded_at <= $3",
        Until::Before(_) => "(e.transaction_id, e.position) < ($3::bigint::text::xid8, $4::bigint)",
    };
    // Served by the unique (stream_id, version) index; streams are short.
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events e WHERE e.stream_id = $1 AND {bound} ORDER BY e.version"
    );
    let query = sqlx::query(&sql)
        .bind(stream_id)
        .bind(personal == Personal::Include);
    let query = match until {
        Until::BeforeVersion(v) | Until::Version(v) => query.bind(v),
        Until::RecordedAt(at) => query.bind(at),
        Until::Before(c) => query.bind(c.transaction_id).bind(c.position),
    };
    let rows = query.fetch_all(&mut *conn).await?;
    let keys = keys_for_rows(&mut *conn, &rows).await?;
    rows.iter()
        .map(|row| recorded_from_row(row, upcasters, &keys))
        .collect()
}

/// The subject keys that the sealed personal values among `rows` need (nothing is queried when
/// the rows were read without the personal column).
pub(super) async fn keys_for_rows(
    conn: &mut PgConnection,
    rows: &[PgRow],
) -> Result<SubjectKeys, ReadError> {
    let mut pairs = Vec::with_capacity(rows.len());
    for row in rows {
        let subject: Option<uuid::Uuid> = row.try_get("data_subject")?;
        let personal: Option<serde_json::Value> = row.try_get("personal")?;
        pairs.push((subject, personal));
    }
    let subjects = sealed_subjects(pairs.iter().map(|(s, p)| (*s, p.as_ref())));
    SubjectKeys::load(conn, &subjects)
        .await
        .map_err(ReadError::from)
}

/// A row selected with [`EVENT_COLUMNS`] as a [`RecordedEvent`], upcast like every read path of the
/// store (`store::row`), so an upcaster can never be forgotten here.
pub(super) fn recorded_from_row(
    row: &PgRow,
    upcasters: &Upcasters,
    keys: &SubjectKeys,
) -> Result<RecordedEvent, ReadError> {
    let position: i64 = row.try_get("position")?;
    let event_type: String = row.try_get("event_type")?;
    let corrupt = |reason: String| ReadError::Corrupt {
        position,
        event_type: event_type.clone(),
        reason,
    };
    let role: String = row.try_get("actor_role")?;
    let actor_role = ActorRole::parse(&role).ok_or_else(|| corrupt("unknown actor role".into()))?;
    let stored_schema_version: i16 = row.try_get("schema_version")?;
    // Opened before upcasting: upcasters work on plaintext.
    let personal = keys.open(
        position,
        row.try_get("event_id")?,
        row.try_get("data_subject")?,
        row.try_get("personal")?,
    )?;
    let (schema_version, payload, personal) = upcasters
        .upcast(
            &event_type,
            stored_schema_version,
            row.try_get("payload")?,
            personal,
        )
        .map_err(|reason| corrupt(format!("upcasting failed: {reason}")))?;
    Ok(RecordedEvent {
        checkpoint: Checkpoint {
            transaction_id: row.try_get("xid")?,
            position,
        },
        stream_id: row.try_get("stream_id")?,
        version: row.try_get("version")?,
        event_id: row.try_get("event_id")?,
        event_type: event_type.clone(),
        schema_version,
        stored_schema_version,
        payload,
        personal,
        data_subject: row.try_get("data_subject")?,
        actor_id: row.try_get("actor_id")?,
        actor_role,
        correlation_id: row.try_get("correlation_id")?,
        causation_id: row.try_get("causation_id")?,
        command_id: row.try_get("command_id")?,
        recorded_at: row.try_get("recorded_at")?,
    })
}

/// What a stream id names, by its prefix (`store` streams are `<aggregate>-<uuid>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StreamKind {
    Portfolio(PortfolioId),
    Program(ProgramId),
    /// Export batches and anything added later: the read models here ignore them.
    Other,
}

pub(super) fn stream_kind(stream_id: &str) -> StreamKind {
    if let Some(id) = stream_id.strip_prefix("portfolio-") {
        if let Ok(id) = id.parse() {
            return StreamKind::Portfolio(id);
        }
    } else if let Some(id) = stream_id.strip_prefix("program-")
        && let Ok(id) = id.parse()
    {
        return StreamKind::Program(id);
    }
    StreamKind::Other
}

pub(super) fn decode_portfolio_event(event: &RecordedEvent) -> Result<PortfolioEvent, ReadError> {
    decode_portfolio(event).map_err(|e| ReadError::Corrupt {
        position: event.position(),
        event_type: event.event_type.clone(),
        // The Display of a PayloadError names the type only; its source may quote stored values.
        reason: e.to_string(),
    })
}

pub(super) fn decode_program_event(event: &RecordedEvent) -> Result<ProgramEvent, ReadError> {
    decode_program(event).map_err(|e| ReadError::Corrupt {
        position: event.position(),
        event_type: event.event_type.clone(),
        reason: e.to_string(),
    })
}

/// Folds portfolio events onto `state`.
pub(super) fn fold_portfolio<'a>(
    state: PortfolioState,
    events: impl IntoIterator<Item = &'a RecordedEvent>,
) -> Result<PortfolioState, ReadError> {
    events.into_iter().try_fold(state, |state, event| {
        Ok(portfolio::evolve(state, &decode_portfolio_event(event)?))
    })
}

fn fold_program<'a>(
    events: impl IntoIterator<Item = &'a RecordedEvent>,
) -> Result<ProgramState, ReadError> {
    events
        .into_iter()
        .try_fold(ProgramState::default(), |state, event| {
            Ok(program::evolve(state, &decode_program_event(event)?))
        })
}

/// The portfolio's state just before `event` (which must be one of its stream's events), without
/// personal data.
pub(super) async fn portfolio_before(
    conn: &mut PgConnection,
    upcasters: &Upcasters,
    event: &RecordedEvent,
) -> Result<PortfolioState, ReadError> {
    let before = read_stream(
        conn,
        upcasters,
        &event.stream_id,
        Until::BeforeVersion(event.version),
        Personal::Omit,
    )
    .await?;
    fold_portfolio(PortfolioState::default(), &before)
}

/// The program's rules within `until`; the defaults when the program is not (yet) registered, which
/// `decide` never lets happen for a portfolio, so it only guards against a damaged log.
pub(super) async fn program_rules(
    conn: &mut PgConnection,
    upcasters: &Upcasters,
    program_id: ProgramId,
    until: Until,
) -> Result<ProgramRules, ReadError> {
    let events = read_stream(
        conn,
        upcasters,
        &program_id.stream_id(),
        until,
        Personal::Omit,
    )
    .await?;
    Ok(rules_in_force(&fold_program(&events)?))
}

/// The rules a program's state holds; the defaults while it is not registered (see
/// [`program_rules`]).
pub(super) fn rules_in_force(program: &ProgramState) -> ProgramRules {
    program.registered().map(|p| p.rules).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn stream_ids_are_classified_by_prefix() {
        let id = Uuid::from_u128(7);
        assert_eq!(
            stream_kind(&format!("portfolio-{id}")),
            StreamKind::Portfolio(PortfolioId::new(id))
        );
        assert_eq!(
            stream_kind(&format!("program-{id}")),
            StreamKind::Program(ProgramId::new(id))
        );
        assert_eq!(stream_kind(&format!("batch-{id}")), StreamKind::Other);
        assert_eq!(stream_kind("portfolio-not-a-uuid"), StreamKind::Other);
    }
}
