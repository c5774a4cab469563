//! Read model `portfolio` (`rm_portfolios`): each student's portfolio as it stands, and what they
//! must do next. DDL: `projections/portfolio.sql`.
//!
//! On every portfolio event the projection folds the portfolio's stream up to that event (onto the
//! state it cached for the version before, see "Fold cache" in `stream.rs`) and the program's rules
//! as the log stood at that point, and stores [`PortfolioView::build`] of the
//! result. A `RulesChanged` of a program rebuilds the views of that program's portfolios, because
//! the deadline and the requirements shown depend on the rules in force.
//!
//! Which events change a row, and how, is decided once, by `view_change`,
//! `StoredPortfolio::after` and `StoredPortfolio::rerendered`; the audit's time travel
//! replays the same decisions in memory (`RowReplay`), so the portfolio "as of" a moment is the
//! row this projection held once it had applied the events recorded by then.

use super::batch::{BatchRules, Pending};
use super::stream::{
    Personal, PortfolioFolds, ProgramFolds, Until, decode_portfolio_event, decode_program_event,
    fold_portfolio, read_stream, rules_in_force,
};
use super::view::{NextStepCode, PhaseName, PortfolioPersonal, PortfolioView};
use super::{ReadError, clamp_limit, undecodable};
use crate::domain::portfolio::Portfolio;
use crate::domain::rules::ProgramRules;
use crate::domain::{
    PortfolioId, PortfolioState, ProgramEvent, ProgramId, ProgramState, StudentUid, portfolio,
    program,
};
use crate::log;
use crate::log::{StreamKind, stream_kind};
use crate::store::{RecordedEvent, Upcasters};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// What an event does to the rows of `rm_portfolios`: the one decision that the live projection
/// and the audit's time travel share, so that both show the same row.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum ViewChange {
    /// An event of this portfolio's own stream: its row is built anew at the event's version, under
    /// the program's rules as the log stood before the event, and dated by the event
    /// ([`StoredPortfolio::after`]).
    Portfolio(PortfolioId),
    /// A rules change of this program: the row of each of its portfolios is re-rendered under these
    /// rules at the version it shows, and dated by the event only if its view changed
    /// ([`StoredPortfolio::rerendered`]).
    Rules(ProgramId, ProgramRules),
    /// No row changes: other streams, and program events the view does not show. An activity keeps
    /// the catalog name it was logged under, so catalog additions, renames and retirements change
    /// no view; neither does who coordinates the program; a portfolio is opened only in a program
    /// already registered.
    Nothing,
}

/// See [`ViewChange`].
pub(super) fn view_change(event: &RecordedEvent) -> Result<ViewChange, ReadError> {
    Ok(match stream_kind(&event.stream_id) {
        StreamKind::Portfolio(id) => ViewChange::Portfolio(id),
        // Every variant is named, so a new program event needs a decision here.
        StreamKind::Program(id) => match decode_program_event(event)? {
            ProgramEvent::RulesChanged(changed) => ViewChange::Rules(id, changed.rules),
            ProgramEvent::ProgramRegistered(_)
            | ProgramEvent::CatalogItemAdded(_)
            | ProgramEvent::CatalogItemRenamed(_)
            | ProgramEvent::CatalogItemRetired(_)
            | ProgramEvent::CoordinatorAssigned(_)
            | ProgramEvent::CoordinatorUnassigned(_) => ViewChange::Nothing,
        },
        StreamKind::Batch(_) | StreamKind::Other => ViewChange::Nothing,
    })
}

impl StoredPortfolio {
    /// The row right after `event`, an event of the portfolio's stream that leaves it as `p`;
    /// `rules` are the program's rules as the log stood before the event.
    pub(super) fn after(p: &Portfolio, rules: &ProgramRules, event: &RecordedEvent) -> Self {
        StoredPortfolio {
            view: PortfolioView::build(p, rules),
            version: event.version,
            updated_at: event.recorded_at,
        }
    }

    /// The row after the rules change `event` to `rules`, `p` being the portfolio at this row's
    /// version. `None` when the view stays the same: the row and its `updated_at` are left alone,
    /// so a rules change that does not affect a portfolio does not pretend it did.
    pub(super) fn rerendered(
        &self,
        p: &Portfolio,
        rules: &ProgramRules,
        event: &RecordedEvent,
    ) -> Option<Self> {
        let view = PortfolioView::build(p, rules);
        if view == self.view {
            return None;
        }
        Some(StoredPortfolio {
            view,
            version: self.version,
            updated_at: event.recorded_at,
        })
    }
}

/// The projection's row of one portfolio, replayed in memory: [`RowReplay::apply`] takes events of
/// the portfolio's stream and of its program's stream in the log's global order (others are
/// ignored), and [`RowReplay::row`] is then what `rm_portfolios` held for the portfolio once the
/// projection had applied exactly those events. Folds whatever it is given, personal data
/// included, for the caller to show.
#[derive(Debug, Clone)]
pub(super) struct RowReplay {
    portfolio_id: PortfolioId,
    program_id: ProgramId,
    state: PortfolioState,
    program: ProgramState,
    /// The row, and the portfolio at its version.
    row: Option<(StoredPortfolio, Portfolio)>,
}

impl RowReplay {
    pub(super) fn new(portfolio_id: PortfolioId, program_id: ProgramId) -> Self {
        RowReplay {
            portfolio_id,
            program_id,
            state: PortfolioState::default(),
            program: ProgramState::default(),
            row: None,
        }
    }

    pub(super) fn apply(&mut self, event: &RecordedEvent) -> Result<(), ReadError> {
        match view_change(event)? {
            ViewChange::Portfolio(id) if id == self.portfolio_id => {
                let state = std::mem::take(&mut self.state);
                self.state = portfolio::evolve(state, &decode_portfolio_event(event)?);
                // Like the projection: an event before the opening one leaves no row.
                if let Some(p) = self.state.opened() {
                    let rules = rules_in_force(&self.program);
                    self.row = Some((StoredPortfolio::after(p, &rules, event), p.clone()));
                }
            }
            ViewChange::Rules(program_id, rules) => {
                if let Some((shown, p)) = &self.row
                    && shown.view.program_id == program_id
                    && let Some(row) = shown.rerendered(p, &rules, event)
                {
                    self.row = Some((row, p.clone()));
                }
            }
            ViewChange::Portfolio(_) | ViewChange::Nothing => {}
        }
        if stream_kind(&event.stream_id) == StreamKind::Program(self.program_id) {
            let program = std::mem::take(&mut self.program);
            self.program = program::evolve(program, &decode_program_event(event)?);
        }
        Ok(())
    }

    /// The row and the portfolio at its version; `None` while the projection would hold no row.
    pub(super) fn row(&self) -> Option<(&StoredPortfolio, &Portfolio)> {
        self.row.as_ref().map(|(row, p)| (row, p))
    }
}

/// The `portfolio` projection. Holds the upcasters it folds streams with, and the states it folded
/// (see "Fold cache" in `stream.rs`).
#[derive(Debug)]
pub struct PortfolioProjection {
    upcasters: Upcasters,
    folds: PortfolioFolds,
    programs: ProgramFolds,
}

impl PortfolioProjection {
    pub fn new() -> Self {
        Self {
            upcasters: log::upcasters(),
            folds: PortfolioFolds::new(),
            programs: ProgramFolds::new(),
        }
    }

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ReadError> {
        let mut rules = BatchRules::new(&self.programs, &self.upcasters);
        let mut rows = Pending::new();
        for event in events {
            match view_change(event)? {
                ViewChange::Portfolio(id) => {
                    if let Some(row) = self.portfolio_changed(conn, &mut rules, event).await? {
                        rows.put(id, row);
                    }
                }
                ViewChange::Rules(program_id, changed) => {
                    // The re-render starts from the stored rows: this batch's go in first.
                    write(conn, &mut rows).await?;
                    self.rules_changed(conn, program_id, &changed, event)
                        .await?;
                }
                ViewChange::Nothing => {}
            }
            rules.saw(event);
        }
        write(conn, &mut rows).await
    }

    /// The row after `event`, an event of a portfolio's stream.
    async fn portfolio_changed(
        &self,
        conn: &mut PgConnection,
        rules: &mut BatchRules<'_>,
        event: &RecordedEvent,
    ) -> Result<Option<StoredPortfolio>, ReadError> {
        let before = self.folds.before(conn, &self.upcasters, event).await?;
        let state = portfolio::evolve(before, &decode_portfolio_event(event)?);
        let row = match state.opened() {
            Some(p) => {
                let rules = rules.before(conn, p.program_id, event).await?;
                Some(StoredPortfolio::after(p, rules, event))
            }
            // An event before the opening one: `decide` never writes it; nothing to show.
            None => None,
        };
        // The state after the event is a fact of the log whatever becomes of this batch.
        self.folds.remember(event, state);
        Ok(row)
    }

    /// Re-renders every portfolio of the program under the new rules, at the version each row
    /// already shows. Rare (an admin action), so a fold per portfolio is acceptable.
    async fn rules_changed(
        &self,
        conn: &mut PgConnection,
        program_id: ProgramId,
        rules: &ProgramRules,
        event: &RecordedEvent,
    ) -> Result<(), ReadError> {
        let rows = sqlx::query!(
            r#"SELECT view AS "view: Json<PortfolioView>", version, updated_at
             FROM rm_portfolios WHERE program_id = $1
             ORDER BY portfolio_id"#,
            program_id.as_uuid()
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut rerendered = Pending::new();
        for row in rows {
            let (Json(view), version) = (row.view, row.version);
            let shown = StoredPortfolio {
                view,
                version,
                updated_at: row.updated_at,
            };
            let events = read_stream(
                conn,
                &self.upcasters,
                &shown.view.portfolio_id.stream_id(),
                Until::Version(version),
                Personal::Omit,
            )
            .await?;
            let state = fold_portfolio(PortfolioState::default(), &events)?;
            if let Some(p) = state.opened()
                && let Some(row) = shown.rerendered(p, rules, event)
            {
                rerendered.put(row.view.portfolio_id, row);
            }
        }
        write(conn, &mut rerendered).await
    }
}

mod rows;
use rows::write;

read_model! {
    PortfolioProjection {
        name: "portfolio",
        // 2: the view shows a pending proposal of another expected completion date.
        // 3: the view says whether a coordinator confirmed the date (the next step waits for it) and
        //    what Ladok said of the identity number.
        // 4: the view is compressed with lz4.
        version: 4,
        definition: "portfolio.sql",
        tables: ["rm_portfolios"],
    }
}

/// One row of `rm_portfolios` as stored: no personal data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPortfolio {
    pub view: PortfolioView,
    /// The stream version the view was built from (the API's ETag).
    pub version: i32,
    pub updated_at: DateTime<Utc>,
}

/// A portfolio as its student (or a coordinator of its program) opens it: the stored view, the
/// days left computed for `today`, and the personal content folded from the log at the view's
/// version. Authorisation is the caller's job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PortfolioPage {
    pub view: PortfolioView,
    pub version: i32,
    pub updated_at: DateTime<Utc>,
    /// See [`PortfolioView::days_left`].
    pub days_left: Option<i64>,
    pub personal: PortfolioPersonal,
}

/// One line of a list of portfolios: the key columns and the codes of the next steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PortfolioSummary {
    pub portfolio_id: PortfolioId,
    pub program_id: ProgramId,
    pub student_uid: StudentUid,
    pub phase: PhaseName,
    pub deadline: NaiveDate,
    pub deadline_extended: bool,
    /// Days left for `today` while the deadline binds.
    pub days_left: Option<i64>,
    pub next_steps: Vec<NextStepCode>,
    pub version: i32,
    pub updated_at: DateTime<Utc>,
}

/// The stored, non-personal view of one portfolio.
pub async fn stored_portfolio(
    pool: &PgPool,
    id: PortfolioId,
) -> Result<Option<StoredPortfolio>, ReadError> {
    let row = sqlx::query!(
        r#"SELECT view AS "view: Json<PortfolioView>", version, updated_at
         FROM rm_portfolios WHERE portfolio_id = $1"#,
        id.as_uuid()
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|row| StoredPortfolio {
        view: row.view.0,
        version: row.version,
        updated_at: row.updated_at,
    }))
}

/// The portfolio page for `today` (the Stockholm date of the request, see
/// `domain::stockholm_date`), personal content included.
pub async fn portfolio_page(
    pool: &PgPool,
    id: PortfolioId,
    today: NaiveDate,
) -> Result<Option<PortfolioPage>, ReadError> {
    let Some(stored) = stored_portfolio(pool, id).await? else {
        return Ok(None);
    };
    let mut conn = pool.acquire().await?;
    let upcasters = log::upcasters();
    let events = read_stream(
        &mut conn,
        &upcasters,
        &id.stream_id(),
        Until::Version(stored.version),
        Personal::Include,
    )
    .await?;
    let state = fold_portfolio(PortfolioState::default(), &events)?;
    let personal = state.opened().map(PortfolioPersonal::build);
    Ok(personal.map(|personal| PortfolioPage {
        days_left: stored.view.days_left(today),
        view: stored.view,
        version: stored.version,
        updated_at: stored.updated_at,
        personal,
    }))
}

type SummaryRow = (
    Uuid,
    Uuid,
    Uuid,
    String,
    NaiveDate,
    bool,
    bool,
    Json<Vec<NextStepCode>>,
    i32,
    DateTime<Utc>,
);

const SUMMARY_COLUMNS: &str = "portfolio_id, program_id, student_uid, phase, deadline, \
     deadline_extended, deadline_binding, \
     COALESCE(jsonb_path_query_array(view, '$.next_steps[*].code'), '[]'::jsonb), version, \
     updated_at";

fn summary(row: SummaryRow, today: NaiveDate) -> Result<PortfolioSummary, ReadError> {
    let (
        portfolio_id,
        program_id,
        student_uid,
        phase,
        deadline,
        extended,
        binding,
        steps,
        version,
        at,
    ) = row;
    let phase = PhaseName::parse(&phase)
        .ok_or_else(|| undecodable(format!("unknown phase {phase:?} in rm_portfolios")))?;
    Ok(PortfolioSummary {
        portfolio_id: PortfolioId::new(portfolio_id),
        program_id: ProgramId::new(program_id),
        student_uid: StudentUid::new(student_uid),
        phase,
        deadline,
        deadline_extended: extended,
        days_left: binding.then(|| (deadline - today).num_days()),
        next_steps: steps.0,
        version,
        updated_at: at,
    })
}

/// The portfolios of one student (usually one; a revoked portfolio stays beside a new one), by
/// portfolio id with keyset pagination like [`portfolios_of_program`].
pub async fn portfolios_of_student(
    pool: &PgPool,
    student: StudentUid,
    after: Option<PortfolioId>,
    limit: i64,
    today: NaiveDate,
) -> Result<Vec<PortfolioSummary>, ReadError> {
    // Runtime-checked: the shared `SUMMARY_COLUMNS`, decoded as `SummaryRow` by `summary`.
    let rows: Vec<SummaryRow> = sqlx::query_as(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM rm_portfolios
         WHERE student_uid = $1
           AND ($2::uuid IS NULL OR portfolio_id > $2)
         ORDER BY portfolio_id
         LIMIT $3"
    ))
    .bind(student.as_uuid())
    .bind(after.map(|a| *a.as_uuid()))
    .bind(clamp_limit(limit))
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(|r| summary(r, today)).collect()
}

/// A coordinator's list of one program's portfolios, optionally of one phase, by portfolio id with
/// keyset pagination: pass the last id of a page as `after` to get the next.
pub async fn portfolios_of_program(
    pool: &PgPool,
    program: ProgramId,
    phase: Option<PhaseName>,
    after: Option<PortfolioId>,
    limit: i64,
    today: NaiveDate,
) -> Result<Vec<PortfolioSummary>, ReadError> {
    // Runtime-checked: the shared `SUMMARY_COLUMNS` (see `portfolios_of_student`).
    let rows: Vec<SummaryRow> = sqlx::query_as(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM rm_portfolios
         WHERE program_id = $1
           AND ($2::text IS NULL OR phase = $2)
           AND ($3::uuid IS NULL OR portfolio_id > $3)
         ORDER BY portfolio_id
         LIMIT $4"
    ))
    .bind(program.as_uuid())
    .bind(phase.map(PhaseName::as_str))
    .bind(after.map(|a| *a.as_uuid()))
    .bind(clamp_limit(limit))
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(|r| summary(r, today)).collect()
}
