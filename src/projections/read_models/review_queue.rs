//! Read model `review_queue` (`rm_review_queue`): what waits for a coordinator, per program.
//! DDL: `projections/review_queue.sql`.
//!
//! Maintained incrementally: the submitting event inserts a row, the settling event deletes it.
//! Only the insert needs context the event does not carry (the portfolio's program, the activity's
//! catalog name), so only then is the portfolio's stream folded.

use super::stream::{PortfolioFolds, decode_portfolio_event};
use super::{ReadError, clamp_limit, serde_name, undecodable};
use crate::domain::portfolio::PortfolioEvent;
use crate::domain::values::RecordingKind;
use crate::domain::{ActivityId, PortfolioId, PortfolioState, ProgramId};
use crate::log;
use crate::log::{StreamKind, stream_kind};
use crate::store::{RecordedEvent, Upcasters};
use changes::Changes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};

/// The `review_queue` projection, with the states it folded (see "Fold cache" in `stream.rs`).
#[derive(Debug)]
pub struct ReviewQueueProjection {
    upcasters: Upcasters,
    folds: PortfolioFolds,
}

/// What kind of thing waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueItemKind {
    Reflection,
    FinalReflection,
    Application,
    /// A proposed expected completion date, waiting for acceptance or decline.
    CompletionProposal,
    /// The date the student gave at enrolment, waiting for a coordinator to confirm or set it.
    CompletionConfirmation,
}

impl QueueItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueItemKind::Reflection => "reflection",
            QueueItemKind::FinalReflection => "final_reflection",
            QueueItemKind::Application => "application",
            QueueItemKind::CompletionProposal => "completion_proposal",
            QueueItemKind::CompletionConfirmation => "completion_confirmation",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "reflection" => QueueItemKind::Reflection,
            "final_reflection" => QueueItemKind::FinalReflection,
            "application" => QueueItemKind::Application,
            "completion_proposal" => QueueItemKind::CompletionProposal,
            "completion_confirmation" => QueueItemKind::CompletionConfirmation,
            _ => return None,
        })
    }
}

/// A row to insert; measurements are absent for applications.
struct Waiting<'a> {
    kind: QueueItemKind,
    activity_id: Option<ActivityId>,
    attempt: u32,
    item_name: Option<&'a str>,
    format: Option<String>,
    word_count: Option<u32>,
    duration_s: Option<u32>,
    duration_measured: Option<bool>,
    recording: Option<RecordingKind>,
    link_count: Option<u32>,
}

impl Waiting<'_> {
    /// An application, a completion proposal or confirmation: a number and nothing measured.
    fn numbered(kind: QueueItemKind, number: u32) -> Self {
        Waiting {
            kind,
            activity_id: None,
            attempt: number,
            item_name: None,
            format: None,
            word_count: None,
            duration_s: None,
            duration_measured: None,
            recording: None,
            link_count: None,
        }
    }
}

/// The events whose row needs the portfolio's state before them (`Self::state_before`).
fn needs_state(event: &PortfolioEvent) -> bool {
    matches!(
        event,
        PortfolioEvent::ReflectionSubmitted(_)
            | PortfolioEvent::FinalReflectionSubmitted(_)
            | PortfolioEvent::ApplicationSubmitted(_)
    )
}

impl ReviewQueueProjection {
    pub fn new() -> Self {
        Self {
            upcasters: log::upcasters(),
            folds: PortfolioFolds::new(),
        }
    }

    /// The portfolio before `event`, from the fold cache or the log; the state after it is
    /// remembered for the next event of the stream.
    async fn state_before(
        &self,
        conn: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<PortfolioState, ReadError> {
        Ok(self.folds.around(conn, &self.upcasters, event).await?.0)
    }

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ReadError> {
        let mut changes = Changes::default();
        for event in events {
            self.apply_event(conn, &mut changes, event).await?;
        }
        changes.write(conn).await
    }

    /// Notes in `changes` what `event` does to the queue.
    async fn apply_event(
        &self,
        conn: &mut PgConnection,
        changes: &mut Changes,
        event: &RecordedEvent,
    ) -> Result<(), ReadError> {
        let StreamKind::Portfolio(portfolio_id) = stream_kind(&event.stream_id) else {
            return Ok(());
        };
        use PortfolioEvent as E;
        use QueueItemKind as K;
        let decoded = decode_portfolio_event(event)?;
        if !needs_state(&decoded) {
            // Keeps a cached state current without reading the log, so that the next submission
            // of this portfolio finds it.
            self.folds.advance_if_cached(event, &decoded);
        }
        match decoded {
            E::ReflectionSubmitted(s) => {
                let before = self.state_before(conn, event).await?;
                let Some(p) = before.opened() else {
                    return Ok(());
                };
                let item_name = p
                    .activity(s.activity_id)
                    .map(|a| a.logged.item_name.as_str());
                let waiting = Waiting {
                    kind: K::Reflection,
                    activity_id: Some(s.activity_id),
                    attempt: s.attempt,
                    item_name,
                    format: Some(serde_name(s.format)),
                    word_count: s.word_count,
                    duration_s: s.duration_s,
                    duration_measured: s.duration_measured,
                    recording: s.recording,
                    link_count: s.link_count,
                };
                changes.insert(event, p.program_id, portfolio_id, &waiting)
            }
            E::ReflectionApproved(e) => {
                changes.settle(portfolio_id, K::Reflection, Some(e.activity_id))
            }
            E::ReflectionReturned(e) => {
                changes.settle(portfolio_id, K::Reflection, Some(e.activity_id))
            }
            E::ActivityWithdrawn(e) => {
                changes.settle(portfolio_id, K::Reflection, Some(e.activity_id))
            }
            E::FinalReflectionSubmitted(s) => {
                let before = self.state_before(conn, event).await?;
                let Some(p) = before.opened() else {
                    return Ok(());
                };
                let waiting = Waiting {
                    kind: K::FinalReflection,
                    activity_id: None,
                    attempt: s.attempt,
                    item_name: None,
                    format: Some(serde_name(s.format)),
                    word_count: s.word_count,
                    duration_s: s.duration_s,
                    duration_measured: s.duration_measured,
                    recording: s.recording,
                    link_count: None,
                };
                changes.insert(event, p.program_id, portfolio_id, &waiting)?;
                // The date no longer matters once the final reflection is in (logs from before the
                // rule hold such portfolios with the date unconfirmed).
                changes.settle(portfolio_id, K::CompletionConfirmation, None)
            }
            E::FinalReflectionApproved(_) | E::FinalReflectionReturned(_) => {
                changes.settle(portfolio_id, K::FinalReflection, None)
            }
            E::ApplicationSubmitted(a) => {
                let before = self.state_before(conn, event).await?;
                let Some(p) = before.opened() else {
                    return Ok(());
                };
                let waiting = Waiting::numbered(K::Application, a.application);
                changes.insert(event, p.program_id, portfolio_id, &waiting)
            }
            E::ApplicationRejected(_) => changes.settle(portfolio_id, K::Application, None),
            // A portfolio decided or erased no longer needs its date (logs from before the rule
            // can reach a certificate with the date unconfirmed).
            E::CertificateApproved(_) => {
                changes.settle(portfolio_id, K::Application, None)?;
                changes.settle(portfolio_id, K::CompletionConfirmation, None)
            }
            E::CertificateRevoked(_) | E::PersonalDataErased(_) => {
                changes.settle(portfolio_id, K::CompletionConfirmation, None)
            }
            E::PortfolioOpened(e) => {
                let waiting = Waiting::numbered(K::CompletionConfirmation, 1);
                changes.insert(event, e.program_id, portfolio_id, &waiting)
            }
            E::ExpectedCompletionSet(_) | E::ExpectedCompletionConfirmed(_) => {
                changes.settle(portfolio_id, K::CompletionConfirmation, None)
            }
            E::ExpectedCompletionProposed(e) => {
                let before = self.state_before(conn, event).await?;
                let Some(p) = before.opened() else {
                    return Ok(());
                };
                // A newer proposal replaces the one waiting.
                changes.settle(portfolio_id, K::CompletionProposal, None)?;
                let waiting = Waiting::numbered(K::CompletionProposal, e.proposal);
                changes.insert(event, p.program_id, portfolio_id, &waiting)
            }
            E::ExpectedCompletionProposalAccepted(_) => {
                changes.settle(portfolio_id, K::CompletionProposal, None)?;
                changes.settle(portfolio_id, K::CompletionConfirmation, None)
            }
            E::ExpectedCompletionProposalDeclined(_) => {
                changes.settle(portfolio_id, K::CompletionProposal, None)
            }
            E::ExpectedCompletionChanged(_)
            | E::IdentityCheckedInLadok(_)
            | E::ActivityLogged(_)
            | E::ExtensionGranted(_) => Ok(()),
        }
    }
}

mod changes;

read_model! {
    ReviewQueueProjection {
        name: "review_queue",
        // 2: the `recording` column (upload, link or declared) and completion proposals.
        // 3: dates given at enrolment wait for confirmation (`completion_confirmation`).
        version: 3,
        definition: "review_queue.sql",
        tables: ["rm_review_queue"],
    }
}

/// One item in a coordinator's inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueueEntry {
    /// The submitting event's position: a stable id of the entry.
    pub position: i64,
    pub program_id: ProgramId,
    pub portfolio_id: PortfolioId,
    pub kind: QueueItemKind,
    pub activity_id: Option<ActivityId>,
    /// Attempt number, or application number for applications.
    pub attempt: u32,
    pub item_name: Option<String>,
    pub format: Option<String>,
    pub word_count: Option<u32>,
    pub duration_s: Option<u32>,
    pub duration_measured: Option<bool>,
    /// `upload`, `link` or `declared` for oral reflections: whether there is a recording to check.
    pub recording: Option<String>,
    pub link_count: Option<u32>,
    pub submitted_at: DateTime<Utc>,
    /// How long it has waited at the `now` of the query, in whole seconds (never negative).
    pub waited_seconds: i64,
    /// The same in whole days, for display.
    pub waited_days: i64,
}

/// Where a page of the queue ends: the queue's order is (submission time, position).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuePosition {
    pub submitted_at: DateTime<Utc>,
    pub position: i64,
}

fn uint(n: Option<i32>) -> Option<u32> {
    n.and_then(|n| u32::try_from(n).ok())
}

/// The items waiting in `program`, oldest first, after the page that ended at `after`, at most
/// `limit`, with how long each has waited at `now`.
pub async fn review_queue(
    pool: &PgPool,
    program: ProgramId,
    now: DateTime<Utc>,
    after: Option<QueuePosition>,
    limit: i64,
) -> Result<Vec<QueueEntry>, ReadError> {
    // The row comparison walks `rm_review_queue_program_idx` in its own order.
    let rows = sqlx::query!(
        "SELECT position, program_id, portfolio_id, item_kind, activity_id, attempt, item_name,
                format, word_count, duration_s, duration_measured, link_count, submitted_at,
                recording
         FROM rm_review_queue
         WHERE program_id = $1
           AND ($2::timestamptz IS NULL OR (submitted_at, position) > ($2, $3))
         ORDER BY submitted_at, position
         LIMIT $4",
        program.as_uuid(),
        after.map(|a| a.submitted_at),
        after.map_or(0, |a| a.position),
        clamp_limit(limit),
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            let kind = QueueItemKind::parse(&row.item_kind).ok_or_else(|| {
                let kind = &row.item_kind;
                undecodable(format!("unknown item kind {kind:?} in rm_review_queue"))
            })?;
            let waited_seconds = (now - row.submitted_at).num_seconds().max(0);
            Ok(QueueEntry {
                position: row.position,
                program_id: ProgramId::new(row.program_id),
                portfolio_id: PortfolioId::new(row.portfolio_id),
                kind,
                activity_id: row.activity_id.map(ActivityId::new),
                attempt: uint(Some(row.attempt)).unwrap_or(0),
                item_name: row.item_name,
                format: row.format,
                word_count: uint(row.word_count),
                duration_s: uint(row.duration_s),
                duration_measured: row.duration_measured,
                recording: row.recording,
                link_count: uint(row.link_count),
                submitted_at: row.submitted_at,
                waited_seconds,
                waited_days: waited_seconds / 86_400,
            })
        })
        .collect()
}
