//! A portfolio as the student and the coordinator see it, built by pure functions from the domain
//! state, so that the live read model and the audit's time travel show the very same thing.
//!
//! Two parts, kept apart on purpose:
//! - [`PortfolioView`]: every non-personal fact (activities, attempts, measurements, reviews,
//!   deadline, phase, next steps). This is what `rm_portfolios` stores.
//! - [`PortfolioPersonal`]: the personal content (who the student is, descriptions, reflection
//!   texts, feedback, reasons). Never stored in a read model; query functions fold it from the log
//!   when someone entitled asks, so erasing it from `events` erases it everywhere.
//!
//! Nothing here depends on "today": the stored view must be the same whenever it is (re)built.
//! [`PortfolioView::days_left`] takes today as an argument at query time.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::domain::portfolio::{
    Activity, CertifiedActivity, FinalAttempt, FinalFormat, IdentityCheck, Phase, Portfolio,
    PortfolioState, ReflectionAttempt, ReflectionFormat, ReflectionStatus, Review,
};
use crate::domain::rules::{AppliedBand, ProgramRules};
use crate::domain::values::RecordingKind;
use crate::domain::{
    ActivityId, CatalogItemId, CertificateId, PortfolioId, ProgramId, StaffId, StudentUid,
};

/// Everything non-personal about one portfolio, as it stands after some event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PortfolioView {
    pub portfolio_id: PortfolioId,
    pub program_id: ProgramId,
    /// Ladok's UID: the key the student and the registrar are known by, not a name.
    pub student_uid: StudentUid,
    /// What Ladok said of the identity number (`docs/identity.md`); `null` while it is the number
    /// typed at enrolment, not yet checked.
    #[serde(default)]
    pub identity_check: Option<IdentityCheck>,
    pub phase: PhaseName,
    /// Given by the student at enrolment, confirmed or set by a coordinator (the trusted source); the
    /// deadline is computed from it.
    pub expected_completion: NaiveDate,
    /// Whether a coordinator has confirmed or set `expected_completion`; until then the first final
    /// reflection cannot be submitted (`docs/rules.md`).
    #[serde(default)]
    pub expected_completion_confirmed: bool,
    /// The student's proposal of another date, waiting for a coordinator: `expected_completion` and
    /// the deadline do not move until it is accepted. Its reason is personal and is not shown here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_proposal: Option<CompletionProposalView>,
    pub deadline: DeadlineView,
    pub requirements: Requirements,
    /// In the order logged, withdrawn ones included (marked), so nothing the student did vanishes.
    pub activities: Vec<ActivityView>,
    pub final_reflection: FinalReflectionView,
    pub application: ApplicationView,
    pub certificate: Option<CertificateView>,
    /// What the student must do next, most urgent first; never empty (`none` when nothing is left).
    pub next_steps: Vec<NextStep>,
}

/// The phase as a stable lower-case name (also the `phase` column of `rm_portfolios`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PhaseName {
    Collecting,
    Applied,
    Certified,
    Revoked,
}

impl PhaseName {
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseName::Collecting => "collecting",
            PhaseName::Applied => "applied",
            PhaseName::Certified => "certified",
            PhaseName::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "collecting" => PhaseName::Collecting,
            "applied" => PhaseName::Applied,
            "certified" => PhaseName::Certified,
            "revoked" => PhaseName::Revoked,
            _ => return None,
        })
    }
}

impl From<Phase> for PhaseName {
    fn from(phase: Phase) -> Self {
        match phase {
            Phase::Collecting => PhaseName::Collecting,
            Phase::Applied { .. } => PhaseName::Applied,
            Phase::Certified => PhaseName::Certified,
            Phase::Revoked => PhaseName::Revoked,
        }
    }
}

/// The final reflection's deadline. `binding` is false once the first final reflection is in (the
/// deadline binds only that one) or the portfolio left the collecting phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeadlineView {
    pub date: NaiveDate,
    /// Expected completion minus the program's offset, before any extension.
    pub regular: NaiveDate,
    pub extended: bool,
    pub binding: bool,
    pub extensions: Vec<ExtensionView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CompletionProposalView {
    /// Numbered from 1 per portfolio, as in the audit's `ExpectedCompletionProposed` events.
    pub proposal: u32,
    pub expected_completion: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExtensionView {
    pub until: NaiveDate,
    pub by: StaffId,
}

/// The program's requirements in force and how far the portfolio meets them, counted the way the
/// rules count (distinct catalog items unless the program allows repeats).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Requirements {
    pub required_activities: u8,
    pub distinct_items: bool,
    pub activities_counted: u32,
    pub reflected: u32,
    pub approved: u32,
}

/// Where a reflection stands (its latest attempt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    NotSubmitted,
    AwaitingReview,
    Returned,
    Approved,
}

impl ReviewStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::NotSubmitted => "not_submitted",
            ReviewStatus::AwaitingReview => "awaiting_review",
            ReviewStatus::Returned => "returned",
            ReviewStatus::Approved => "approved",
        }
    }
}

impl From<ReflectionStatus> for ReviewStatus {
    fn from(status: ReflectionStatus) -> Self {
        match status {
            ReflectionStatus::NotSubmitted => ReviewStatus::NotSubmitted,
            ReflectionStatus::AwaitingReview => ReviewStatus::AwaitingReview,
            ReflectionStatus::Returned => ReviewStatus::Returned,
            ReflectionStatus::Approved => ReviewStatus::Approved,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActivityView {
    pub activity_id: ActivityId,
    pub item: CatalogItemId,
    /// The item's name when the activity was logged (later renames do not rewrite it).
    pub item_name: String,
    pub started_on: NaiveDate,
    pub ended_on: NaiveDate,
    pub has_evidence: bool,
    pub withdrawn: bool,
    pub status: ReviewStatus,
    /// Every attempt, oldest first: earlier attempts and their reviews are never lost.
    pub attempts: Vec<AttemptView>,
}

/// One attempt at an activity reflection: what was measured and by which rules it was judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttemptView {
    pub attempt: u32,
    pub format: ReflectionFormat,
    pub word_count: Option<u32>,
    pub duration_s: Option<u32>,
    /// `Some(false)`: the server could not measure the recording; the coordinator should check it.
    pub duration_measured: Option<bool>,
    /// What an oral reflection rests on: `upload`, `link` (to the video platform) or `declared`
    /// (the duration alone, where the rules allow it). Absent for attempts from before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<RecordingKind>,
    pub link_count: Option<u32>,
    pub rules_version: u32,
    pub band: AppliedBand,
    pub review: Option<ReviewView>,
}

/// A coordinator's review of one attempt. The feedback text itself is personal
/// ([`AttemptPersonal::feedback`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReviewView {
    Approved { by: StaffId },
    Returned { by: StaffId },
}

impl ReviewView {
    fn of(review: &Review) -> Self {
        match review {
            Review::Approved { by } => ReviewView::Approved { by: by.clone() },
            Review::Returned { by, .. } => ReviewView::Returned { by: by.clone() },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FinalReflectionView {
    pub status: ReviewStatus,
    pub attempts: Vec<FinalAttemptView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FinalAttemptView {
    pub attempt: u32,
    pub format: FinalFormat,
    pub word_count: Option<u32>,
    pub duration_s: Option<u32>,
    pub duration_measured: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<RecordingKind>,
    /// ISO 639-3 code the language check detected in a written text.
    pub language: Option<String>,
    /// The check's confidence in whole percent. Rounded on purpose: a float would not survive the
    /// trip through JSONB bit for bit, and rebuild = live must hold byte for byte.
    pub language_confidence_pct: Option<u8>,
    pub rules_version: u32,
    pub band: AppliedBand,
    pub submitted_on: NaiveDate,
    /// The deadline the first submission was judged against (`None` for resubmissions).
    pub deadline: Option<NaiveDate>,
    pub extended: bool,
    pub review: Option<ReviewView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApplicationView {
    /// Applications made so far (1 for the first, counting up after rejections).
    pub applications: u32,
    /// The application waiting for the program's decision, if any.
    pub pending: Option<u32>,
    pub rejections: Vec<RejectionView>,
}

/// A rejection; its reason is personal ([`PortfolioPersonal::rejection_reasons`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RejectionView {
    pub application: u32,
    pub by: StaffId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CertificateView {
    pub certificate_id: CertificateId,
    pub application: u32,
    pub decided_on: NaiveDate,
    pub decided_by: StaffId,
    pub final_format: FinalFormat,
    pub activities: Vec<CertifiedActivity>,
    pub revoked: Option<RevocationView>,
}

/// A revocation; its reason is personal ([`PortfolioPersonal::revocation_reason`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RevocationView {
    pub revoked_on: NaiveDate,
    pub by: StaffId,
}

impl PortfolioView {
    /// The view of an opened portfolio under the program's rules in force. Pure.
    pub fn build(p: &Portfolio, rules: &ProgramRules) -> Self {
        let deadline = p.deadline(rules);
        let final_status = p.final_status();
        let collecting = p.phase == Phase::Collecting;
        PortfolioView {
            portfolio_id: p.id,
            program_id: p.program_id,
            student_uid: p.student_uid,
            identity_check: p.identity_check,
            phase: p.phase.into(),
            expected_completion: p.expected_completion,
            expected_completion_confirmed: p.completion_confirmed,
            completion_proposal: p
                .completion_proposal
                .as_ref()
                .map(|c| CompletionProposalView {
                    proposal: c.proposal,
                    expected_completion: c.expected_completion,
                }),
            deadline: DeadlineView {
                date: deadline.date,
                regular: deadline.regular,
                extended: deadline.extended,
                binding: collecting && final_status == ReflectionStatus::NotSubmitted,
                extensions: p
                    .extensions
                    .iter()
                    .map(|e| ExtensionView {
                        until: e.until,
                        by: e.by.clone(),
                    })
                    .collect(),
            },
            requirements: Requirements {
                required_activities: rules.required_activities,
                distinct_items: !rules.allow_repeat_items,
                activities_counted: p.count_counting(rules, |_| true),
                reflected: p.reflected_count(rules),
                approved: p.approved_count(rules),
            },
            activities: p.activities.iter().map(activity_view).collect(),
            final_reflection: FinalReflectionView {
                status: final_status.into(),
                attempts: p.final_attempts.iter().map(final_attempt_view).collect(),
            },
            application: ApplicationView {
                applications: p.applications,
                pending: match p.phase {
                    Phase::Applied { application } => Some(application),
                    _ => None,
                },
                rejections: p
                    .rejections
                    .iter()
                    .map(|r| RejectionView {
                        application: r.application,
                        by: r.by.clone(),
                    })
                    .collect(),
            },
            certificate: p.certificate.as_ref().map(|c| CertificateView {
                certificate_id: c.certificate_id,
                application: c.application,
                decided_on: c.decided_on,
                decided_by: c.decided_by.clone(),
                final_format: c.final_format,
                activities: c.activities.clone(),
                revoked: p.revocation.as_ref().map(|r| RevocationView {
                    revoked_on: r.revoked_on,
                    by: r.by.clone(),
                }),
            }),
            next_steps: next_steps(p, rules, deadline.date, deadline.extended),
        }
    }

    /// [`build`](Self::build) for a state; `None` before the portfolio is opened.
    pub fn from_state(state: &PortfolioState, rules: &ProgramRules) -> Option<Self> {
        state.opened().map(|p| Self::build(p, rules))
    }

    /// Days from `today` (the Stockholm date) to the final reflection's deadline, inclusive of the
    /// deadline day being "0 days left"; negative once it has passed. `None` when the deadline no
    /// longer binds. Computed at query time: a stored figure would be wrong tomorrow.
    pub fn days_left(&self, today: NaiveDate) -> Option<i64> {
        self.deadline
            .binding
            .then(|| (self.deadline.date - today).num_days())
    }
}

fn review_of(review: Option<&Review>) -> Option<ReviewView> {
    review.map(ReviewView::of)
}

fn activity_view(a: &Activity) -> ActivityView {
    ActivityView {
        activity_id: a.id(),
        item: a.logged.item.clone(),
        item_name: a.logged.item_name.clone(),
        started_on: a.logged.started_on,
        ended_on: a.logged.ended_on,
        has_evidence: a.logged.has_evidence,
        withdrawn: a.withdrawn,
        status: a.status().into(),
        attempts: a.attempts.iter().map(attempt_view).collect(),
    }
}

fn attempt_view(t: &ReflectionAttempt) -> AttemptView {
    let s = &t.submitted;
    AttemptView {
        attempt: s.attempt,
        format: s.format,
        word_count: s.word_count,
        duration_s: s.duration_s,
        duration_measured: s.duration_measured,
        recording: s.recording,
        link_count: s.link_count,
        rules_version: s.rules_version,
        band: s.band,
        review: review_of(t.review.as_ref()),
    }
}

fn final_attempt_view(t: &FinalAttempt) -> FinalAttemptView {
    let s = &t.submitted;
    FinalAttemptView {
        attempt: s.attempt,
        format: s.format,
        word_count: s.word_count,
        duration_s: s.duration_s,
        duration_measured: s.duration_measured,
        recording: s.recording,
        language: s.language.clone(),
        language_confidence_pct: s
            .language_confidence
            .map(|c| (c.clamp(0.0, 1.0) * 100.0).round() as u8),
        rules_version: s.rules_version,
        band: s.band,
        submitted_on: s.submitted_on,
        deadline: s.deadline,
        extended: s.extended,
        review: review_of(t.review.as_ref()),
    }
}

mod next_steps;
mod personal;

use next_steps::next_steps;
pub use next_steps::{NextStep, NextStepCode};
pub use personal::{ActivityPersonalView, AttemptPersonal, PortfolioPersonal, RejectionReason};

#[cfg(test)]
mod tests;
