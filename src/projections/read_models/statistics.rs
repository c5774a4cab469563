//! Read model `statistics` (`rm_stats_portfolios`): the pilot evaluation, pseudonymous.
//! DDL: `projections/statistics.sql`.
//!
//! Each portfolio event re-derives its portfolio's row from the whole stream ([`PortfolioStats`],
//! a pure function of the events and the rules; the fold of the events before it is cached per
//! version and reused under the same rules only, see `StatsFold`), so "how far did this student
//! ever get" can look at every intermediate state, not only the last. The query functions aggregate the rows per program or
//! overall; none of them returns anything that identifies a student.

use super::batch::{BatchRules, Pending};
use super::stream::{
    FOLD_CACHE_STREAMS, Personal, ProgramFolds, Until, decode_portfolio_event, read_stream,
};
use super::{ReadError, serde_name};
use crate::domain::portfolio::{
    Portfolio, PortfolioEvent, ReflectionFormat, ReflectionStatus, Review,
};
use crate::domain::rules::ProgramRules;
use crate::domain::{PortfolioState, ProgramId, portfolio};
use crate::log;
use crate::log::{FoldCache, StreamKind, stream_kind};
use crate::store::{ActorRole, RecordedEvent, Upcasters};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

/// The steps of the student's path, in order (`docs/domain.md`, "The student's path").
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The portfolio was opened.
    Started,
    /// At least one activity logged.
    ActivityLogged,
    /// As many activities as the program requires (counted like the rules count).
    ActivitiesLogged,
    /// A reflection submitted for each required activity.
    ReflectionsSubmitted,
    /// The required reflections approved.
    ReflectionsApproved,
    FinalReflectionSubmitted,
    FinalReflectionApproved,
    Applied,
    /// A certificate was approved (revoked later or not).
    Certified,
}

impl Step {
    pub const ALL: [Step; 9] = [
        Step::Started,
        Step::ActivityLogged,
        Step::ActivitiesLogged,
        Step::ReflectionsSubmitted,
        Step::ReflectionsApproved,
        Step::FinalReflectionSubmitted,
        Step::FinalReflectionApproved,
        Step::Applied,
        Step::Certified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Started => "started",
            Step::ActivityLogged => "activity_logged",
            Step::ActivitiesLogged => "activities_logged",
            Step::ReflectionsSubmitted => "reflections_submitted",
            Step::ReflectionsApproved => "reflections_approved",
            Step::FinalReflectionSubmitted => "final_reflection_submitted",
            Step::FinalReflectionApproved => "final_reflection_approved",
            Step::Applied => "applied",
            Step::Certified => "certified",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Step::ALL.into_iter().find(|step| step.as_str() == s)
    }

    /// Whether the portfolio meets this step now.
    fn holds(self, p: &Portfolio, rules: &ProgramRules) -> bool {
        let required = u32::from(rules.required_activities);
        match self {
            Step::Started => true,
            Step::ActivityLogged => p.active_activities().next().is_some(),
            Step::ActivitiesLogged => p.count_counting(rules, |_| true) >= required,
            Step::ReflectionsSubmitted => p.reflected_count(rules) >= required,
            Step::ReflectionsApproved => p.approved_count(rules) >= required,
            Step::FinalReflectionSubmitted => !p.final_attempts.is_empty(),
            Step::FinalReflectionApproved => p.final_status() == ReflectionStatus::Approved,
            Step::Applied => p.applications > 0,
            Step::Certified => p.certificate.is_some(),
        }
    }

    /// The furthest step the portfolio meets now.
    fn current(p: &Portfolio, rules: &ProgramRules) -> Step {
        Step::ALL
            .into_iter()
            .rev()
            .find(|step| step.holds(p, rules))
            .unwrap_or(Step::Started)
    }
}

/// One row of `rm_stats_portfolios`: nothing in it identifies the student.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortfolioStats {
    pub program_id: ProgramId,
    pub opened_at: DateTime<Utc>,
    pub last_event_at: DateTime<Utc>,
    pub last_student_event_at: Option<DateTime<Utc>>,
    /// Indexed like [`Step::ALL`].
    pub reached: [bool; 9],
    pub current_step: Step,
    pub activities_logged: u32,
    pub activities_withdrawn: u32,
    pub reflections_submitted: u32,
    pub reflections_returned: u32,
    pub reflections_approved: u32,
    pub written_reflections: u32,
    pub oral_reflections: u32,
    pub instagram_reflections: u32,
    pub final_submitted: u32,
    pub final_returned: u32,
    pub final_format: Option<String>,
    pub applications: u32,
    pub rejections: u32,
    pub catalog_items: Vec<String>,
    pub first_activity_on: Option<NaiveDate>,
    pub approved_on: Option<NaiveDate>,
    pub revoked_on: Option<NaiveDate>,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// [`PortfolioStats::derive`] in steps: what the row needs from the events folded so far, under
/// the rules it was folded with. Cached by the projection per stream and version, and reused only
/// for the same rules, since `reached` judges every intermediate state by them.
#[derive(Debug, Clone, Default)]
pub(super) struct StatsFold {
    state: PortfolioState,
    reached: [bool; 9],
    /// The program named by the stream's first event when it opens the portfolio (`None` before
    /// the first event, or when the first event is anything else).
    program_id: Option<ProgramId>,
    opened_at: Option<DateTime<Utc>>,
    last_event_at: Option<DateTime<Utc>>,
    last_student_event_at: Option<DateTime<Utc>>,
}

impl StatsFold {
    /// Folds the next event of the stream under `rules`.
    fn step(&mut self, event: &RecordedEvent, rules: &ProgramRules) -> Result<(), ReadError> {
        let decoded = decode_portfolio_event(event)?;
        if self.last_event_at.is_none()
            && let PortfolioEvent::PortfolioOpened(opened) = &decoded
        {
            self.program_id = Some(opened.program_id);
        }
        self.state = portfolio::evolve(std::mem::take(&mut self.state), &decoded);
        self.last_event_at = Some(event.recorded_at);
        if event.actor_role == ActorRole::Student {
            self.last_student_event_at = Some(event.recorded_at);
        }
        if let Some(p) = self.state.opened() {
            self.opened_at.get_or_insert(event.recorded_at);
            for (i, step) in Step::ALL.into_iter().enumerate() {
                self.reached[i] |= step.holds(p, rules);
            }
        }
        Ok(())
    }

    fn of<'a>(
        events: impl IntoIterator<Item = &'a RecordedEvent>,
        rules: &ProgramRules,
    ) -> Result<Self, ReadError> {
        let mut fold = StatsFold::default();
        for event in events {
            fold.step(event, rules)?;
        }
        Ok(fold)
    }
}

impl PortfolioStats {
    /// Derives the row from a portfolio's events in order (opening first) under the program's
    /// rules. `None` when the events never open the portfolio. Pure.
    pub fn derive<'a>(
        events: impl IntoIterator<Item = &'a RecordedEvent>,
        rules: &ProgramRules,
    ) -> Result<Option<Self>, ReadError> {
        Self::of_fold(&StatsFold::of(events, rules)?, rules)
    }

    /// The row of the events folded into `fold` under `rules`.
    fn of_fold(fold: &StatsFold, rules: &ProgramRules) -> Result<Option<Self>, ReadError> {
        let reached = fold.reached;
        let last_student_event_at = fold.last_student_event_at;
        let (Some(p), Some(opened_at), Some(last_event_at)) =
            (fold.state.opened(), fold.opened_at, fold.last_event_at)
        else {
            return Ok(None);
        };
        let attempts = || p.activities.iter().flat_map(|a| a.attempts.iter());
        let returned = attempts()
            .filter(|t| matches!(t.review, Some(Review::Returned { .. })))
            .count();
        let approved = attempts()
            .filter(|t| matches!(t.review, Some(Review::Approved { .. })))
            .count();
        let formats: Vec<ReflectionFormat> = p
            .active_activities()
            .filter_map(|a| a.reflection_format())
            .collect();
        let of_format = |f: ReflectionFormat| count(formats.iter().filter(|x| **x == f).count());
        let first_activity_on = p.activities.iter().map(|a| a.logged.started_on).min();
        Ok(Some(PortfolioStats {
            program_id: p.program_id,
            opened_at,
            last_event_at,
            last_student_event_at,
            reached,
            current_step: Step::current(p, rules),
            activities_logged: count(p.activities.len()),
            activities_withdrawn: count(p.activities.iter().filter(|a| a.withdrawn).count()),
            reflections_submitted: count(attempts().count()),
            reflections_returned: count(returned),
            reflections_approved: count(approved),
            written_reflections: of_format(ReflectionFormat::Written),
            oral_reflections: of_format(ReflectionFormat::Oral),
            instagram_reflections: of_format(ReflectionFormat::Instagram),
            final_submitted: count(p.final_attempts.len()),
            final_returned: count(
                p.final_attempts
                    .iter()
                    .filter(|t| matches!(t.review, Some(Review::Returned { .. })))
                    .count(),
            ),
            final_format: p
                .final_attempts
                .last()
                .map(|t| serde_name(t.submitted.format)),
            applications: p.applications,
            rejections: count(p.rejections.len()),
            catalog_items: p
                .active_activities()
                .map(|a| a.item().as_str().to_owned())
                .collect(),
            first_activity_on,
            approved_on: p.certificate.as_ref().map(|c| c.decided_on),
            revoked_on: p.revocation.as_ref().map(|r| r.revoked_on),
        }))
    }

    /// The furthest step ever reached.
    pub fn furthest_step(&self) -> Step {
        Step::ALL
            .into_iter()
            .zip(self.reached)
            .rev()
            .find(|(_, reached)| *reached)
            .map_or(Step::Started, |(step, _)| step)
    }

    pub fn days_to_approval(&self) -> Option<i64> {
        Some((self.approved_on? - self.first_activity_on?).num_days())
    }
}

/// The `statistics` projection, with the folds it made (see "Fold cache" in `stream.rs`), each
/// with the rules it was folded under.
#[derive(Debug)]
pub struct StatisticsProjection {
    upcasters: Upcasters,
    folds: FoldCache<(StatsFold, ProgramRules)>,
    programs: ProgramFolds,
}

impl StatisticsProjection {
    pub fn new() -> Self {
        Self {
            upcasters: log::upcasters(),
            folds: FoldCache::new(FOLD_CACHE_STREAMS),
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
            if let StreamKind::Portfolio(portfolio_id) = stream_kind(&event.stream_id)
                && let Some(stats) = self.stats_after(conn, &mut rules, event).await?
            {
                rows.put(portfolio_id, (stats, event.recorded_at));
            }
            rules.saw(event);
        }
        rows::write(conn, &mut rows).await
    }

    /// The row of a portfolio after `event`, one of its stream's events; `None` for a stream that
    /// opens no portfolio.
    async fn stats_after(
        &self,
        conn: &mut PgConnection,
        rules: &mut BatchRules<'_>,
        event: &RecordedEvent,
    ) -> Result<Option<PortfolioStats>, ReadError> {
        let cached = self.folds.take(&event.stream_id, event.version - 1);
        // On a miss the events before this one are read once, for the program and the fold.
        let mut before = None;
        let program_id = match &cached {
            Some((fold, _)) => fold.program_id,
            None => {
                let events = self.events_before(conn, event).await?;
                // The program is named by the opening event (version 1).
                let program_id = opening_program(events.first().unwrap_or(event))?;
                before = Some(events);
                program_id
            }
        };
        let Some(program_id) = program_id else {
            return Ok(None);
        };
        let rules = rules.before(conn, program_id, event).await?.clone();
        let mut fold = match (cached, before) {
            // `reached` of the cached fold judged the earlier states by these very rules.
            (Some((fold, folded_under)), _) if folded_under == rules => fold,
            (_, Some(events)) => StatsFold::of(&events, &rules)?,
            (_, None) => StatsFold::of(&self.events_before(conn, event).await?, &rules)?,
        };
        fold.step(event, &rules)?;
        let stats = PortfolioStats::of_fold(&fold, &rules)?;
        self.folds
            .put(&event.stream_id, event.version, (fold, rules));
        Ok(stats)
    }

    /// The events of `event`'s stream before it, from the log.
    async fn events_before(
        &self,
        conn: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<Vec<RecordedEvent>, ReadError> {
        read_stream(
            conn,
            &self.upcasters,
            &event.stream_id,
            Until::BeforeVersion(event.version),
            Personal::Omit,
        )
        .await
    }
}

/// The program a stream's first event opens the portfolio in; `None` when it is another event
/// (a damaged log: such a stream gets no row).
fn opening_program(first: &RecordedEvent) -> Result<Option<ProgramId>, ReadError> {
    Ok(match decode_portfolio_event(first)? {
        PortfolioEvent::PortfolioOpened(opened) => Some(opened.program_id),
        _ => None,
    })
}

read_model! {
    StatisticsProjection {
        name: "statistics",
        version: 1,
        definition: "statistics.sql",
        tables: ["rm_stats_portfolios"],
    }
}

mod queries;
mod rows;

pub use queries::*;
