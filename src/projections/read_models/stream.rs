//! Reading a stream back from `events` inside a projection's batch transaction (or a query's
//! connection), upcast and decoded exactly like the command handler does.
//!
//! The projections need a portfolio's previous state and its program's rules to build a row. They
//! fold them from the log rather than keep copies, so the log stays the only source of truth; the
//! bounds in [`Until`] make sure that a live run and a rebuild fold exactly the same events.
//!
//! # Fold cache
//!
//! Folding a portfolio's stream again for every one of its events is quadratic in the stream's
//! length and costs a round trip per event, so the projections that need the state keep the folds
//! they made in a [`FoldCache`]: "stream S folded up to version v". Applying the event of version v
//! looks up version v - 1 and, on a hit, folds just that one event; on a miss it folds from the log
//! as before ([`PortfolioFolds::before`]). Why such an entry is valid forever, not only for the
//! batch transaction it was made in:
//!
//! - the non-personal ([`Personal::Omit`]) fold of a stream up to version v depends only on the
//!   events of that stream at versions <= v, and those can never change: `UNIQUE (stream_id,
//!   version)` means there is one event per version, a projection only ever sees committed events
//!   (and `BeforeVersion(v)` reads the stream only once the event of version v is readable, when
//!   every lower version is committed too: an append checks the stream's current version), and the
//!   only update of `events` (erasure) touches the personal column, which these folds never read;
//! - the fold itself is deterministic: upcasters and `evolve` are pure functions;
//! - so a rolled-back batch, a retry, a restarted rebuild or another process taking the projection
//!   over re-applies the same events and finds the same states. An entry is keyed by the exact
//!   version it holds, so applying events in another order than the cache saw them (a rebuild from
//!   position 0, a resume after a takeover, two transactions committing versions out of the global
//!   order) is a miss, never a wrong state.
//!
//! A program's rules are needed as the log stood before the event being applied
//! (`Until::Before(checkpoint)`), a bound of the global order rather than of a version, so
//! [`ProgramFolds`] still asks the database which versions of the program lie before the
//! checkpoint (one short query returning one row); the rules folded up to that version come from
//! the cache by the same argument. Telling without a query that no program event lies between a
//! cached checkpoint and a new one would need to know that this instance saw every event in
//! between, which a rolled-back batch or a takeover by another process breaks.
//!
//! Folds with other bounds (time travel's [`Until::RecordedAt`], [`Until::Version`] for a page or
//! a rules change) do not go through the cache: they are queries or rare, and a time bound is not
//! a version.

use super::ReadError;
use crate::domain::rules::ProgramRules;
use crate::domain::{
    PortfolioEvent, PortfolioState, ProgramEvent, ProgramId, ProgramState, portfolio, program,
};
use crate::log::{FoldCache, decode_portfolio, decode_program};
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
    // Nothing lies before a stream's first event: no need to ask (a rebuild asks this once for
    // every stream it meets).
    if let Until::BeforeVersion(v) = until
        && v <= 1
    {
        return Ok(Vec::new());
    }
    let bound = match until {
        Until::BeforeVersion(_) => "e.version < $3",
        Until::Version(_) => "e.version <= $3",
        Until::RecordedAt(_) => "e.recorded_at <= $3",
        Until::Before(_) => "(e.transaction_id, e.position) < ($3::bigint::text::xid8, $4::bigint)",
    };
    // The stream comes whole from the unique (stream_id, version) index (streams are short), and
    // the bound is applied to it afterwards. Left to itself, the planner ANDs a bound of the global
    // order with a range scan of `events_tail_idx`, which visits every event of the log before the
    // bound: a fold then costs time in proportion to the whole log (found by `cim-bench soak`,
    // whose p99 grew fivefold in twenty minutes). MATERIALIZED keeps the two apart.
    // Dynamic: the bound (and its parameters) depends on `until`.
    let sql = format!(
        "WITH e AS MATERIALIZED (SELECT * FROM events WHERE stream_id = $1)
         SELECT {EVENT_COLUMNS} FROM e WHERE {bound} ORDER BY e.version"
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

/// How many streams a [`FoldCache`] of portfolio folds remembers. An entry costs about 9 KiB of
/// resident memory in a debug build and 5 KiB in a release build with a portfolio's typical 20
/// events (no personal data: the projections read the log without it), so the three such caches
/// (`portfolio`, `review_queue`, `statistics`) level off near 60 MiB, which `cim-bench soak`
/// shows once about 4,000 portfolios have been active. That is far more than the portfolios a live
/// service advances at once; a rebuild goes through the log in the order it was written, so it
/// works on the streams active at one time, and a stream evicted meanwhile costs one fold from the
/// log again, not a wrong state.
pub(super) const FOLD_CACHE_STREAMS: usize = 4_000;

/// A [`FoldCache`] of portfolio states, with the fallback to the log.
#[derive(Debug)]
pub(super) struct PortfolioFolds {
    cache: FoldCache<PortfolioState>,
}

impl PortfolioFolds {
    pub(super) fn new() -> Self {
        PortfolioFolds {
            cache: FoldCache::new(FOLD_CACHE_STREAMS),
        }
    }

    /// The portfolio's state just before `event` (one of its stream's events), without personal
    /// data: from the cache when it holds version `event.version - 1`, else folded from the log.
    /// Pass the state after the event to [`PortfolioFolds::remember`].
    pub(super) async fn before(
        &self,
        conn: &mut PgConnection,
        upcasters: &Upcasters,
        event: &RecordedEvent,
    ) -> Result<PortfolioState, ReadError> {
        match self.cache.take(&event.stream_id, event.version - 1) {
            Some(state) => Ok(state),
            None => portfolio_before(conn, upcasters, event).await,
        }
    }

    /// The state before and after `event`, for callers that need both: `after` is evolved from
    /// `before` and remembered.
    pub(super) async fn around(
        &self,
        conn: &mut PgConnection,
        upcasters: &Upcasters,
        event: &RecordedEvent,
    ) -> Result<(PortfolioState, PortfolioState), ReadError> {
        let before = self.before(conn, upcasters, event).await?;
        let after = portfolio::evolve(before.clone(), &decode_portfolio_event(event)?);
        self.remember(event, after.clone());
        Ok((before, after))
    }

    /// Folds `event` onto the cached state before it, if there is one, without reading the log: for
    /// events whose state the caller does not need, so that the next one still finds its state.
    /// `decoded` is `event` decoded.
    ///
    /// A stream's first event starts a state of its own, so a stream met from its start is cached
    /// from then on: without it, the first event that needs the state folds the stream from the
    /// log, a round trip per stream that bounded the `review_queue` rebuild.
    pub(super) fn advance_if_cached(&self, event: &RecordedEvent, decoded: &PortfolioEvent) {
        let before = if event.version == 1 {
            Some(PortfolioState::default())
        } else {
            self.cache.take(&event.stream_id, event.version - 1)
        };
        if let Some(before) = before {
            self.remember(event, portfolio::evolve(before, decoded));
        }
    }

    /// Remembers `state` as the portfolio after `event`.
    pub(super) fn remember(&self, event: &RecordedEvent, state: PortfolioState) {
        self.cache.put(&event.stream_id, event.version, state);
    }
}

/// The portfolio's state just before `event` (which must be one of its stream's events), without
/// personal data, folded from the log. Projections go through [`PortfolioFolds::before`].
async fn portfolio_before(
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

/// How many programs a [`ProgramFolds`] remembers: there are a handful.
const PROGRAM_CACHE_STREAMS: usize = 1_000;

/// A [`FoldCache`] of program rules, keyed by the program stream's version they were folded up to.
#[derive(Debug)]
pub(super) struct ProgramFolds {
    cache: FoldCache<ProgramRules>,
}

impl ProgramFolds {
    pub(super) fn new() -> Self {
        ProgramFolds {
            cache: FoldCache::new(PROGRAM_CACHE_STREAMS),
        }
    }

    /// The program's rules within `Until::Before(checkpoint)`, for a projection applying the event at
    /// `checkpoint`. The events before a point of the global order are not bounded by a version,
    /// so one query still asks how far the program's stream reaches there; only when that is a
    /// whole prefix `1..=v` of the stream (always, since an append builds on a committed version,
    /// but checked rather than assumed) is the fold up to version v taken from the cache, which
    /// saves reading and decoding the stream.
    pub(super) async fn rules_before(
        &self,
        conn: &mut PgConnection,
        upcasters: &Upcasters,
        program_id: ProgramId,
        checkpoint: Checkpoint,
    ) -> Result<ProgramRules, ReadError> {
        let stream_id = program_id.stream_id();
        // The bound of `Until::Before`, applied to the stream as read from the (stream_id, version)
        // index: MATERIALIZED for the reason given in `read_stream`.
        let row = sqlx::query!(
            r#"WITH e AS MATERIALIZED (
                 SELECT version, transaction_id, position FROM events WHERE stream_id = $1
             )
             SELECT COALESCE(max(version), 0) AS "last!", count(*) AS "count!" FROM e
             WHERE (e.transaction_id, e.position) < ($2::bigint::text::xid8, $3::bigint)"#,
            stream_id,
            checkpoint.transaction_id,
            checkpoint.position,
        )
        .fetch_one(&mut *conn)
        .await?;
        let (last, count) = (row.last, row.count);
        let prefix = i64::from(last) == count;
        if prefix && let Some(rules) = self.cache.get(&stream_id, last) {
            return Ok(rules);
        }
        let events = read_stream(
            conn,
            upcasters,
            &stream_id,
            Until::Before(checkpoint),
            Personal::Omit,
        )
        .await?;
        let rules = rules_in_force(&fold_program(&events)?);
        // Remembered under the version it was folded up to, if what was read is a whole prefix.
        if let Some(read_up_to) = events.last().map(|e| e.version)
            && usize::try_from(read_up_to).ok() == Some(events.len())
        {
            self.cache.put(&stream_id, read_up_to, rules.clone());
        }
        Ok(rules)
    }
}

/// The rules a program's state holds; the defaults when the program is not (yet) registered, which
/// `decide` never lets happen for a portfolio, so it only guards against a damaged log.
pub(super) fn rules_in_force(program: &ProgramState) -> ProgramRules {
    program
        .registered()
        .map(|p| p.rules.clone())
        .unwrap_or_default()
}
