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
    Activity, ActivityPersonal, CertifiedActivity, FinalAttempt, FinalFormat, Phase, Portfolio,
    PortfolioState, ReflectionAttempt, ReflectionFormat, ReflectionPersonal, ReflectionStatus,
    Review, StudentDetails,
};
use crate::domain::rules::{AppliedBand, ProgramRules};
use crate::domain::values::{NonEmptyText, RecordingKind};
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
    pub phase: PhaseName,
    /// Set by a coordinator (the trusted source); the deadline is computed from it.
    pub expected_completion: NaiveDate,
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

/// Something the student must do (or wait for), with a stable code for the client and an English
/// sentence for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NextStep {
    pub code: NextStepCode,
    pub sentence: String,
    /// The activity the step is about, for `submit_reflection` and `revise_reflection`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_id: Option<ActivityId>,
    /// The last day for it, for `submit_final_reflection`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<NaiveDate>,
}

/// Stable codes of [`NextStep`]s; clients switch on these, never on the sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NextStepCode {
    ReviseReflection,
    SubmitReflection,
    LogActivity,
    ReviseFinalReflection,
    SubmitFinalReflection,
    Apply,
    AwaitReview,
    AwaitDecision,
    None,
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
            phase: p.phase.into(),
            expected_completion: p.expected_completion,
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

fn step(code: NextStepCode, sentence: String) -> NextStep {
    NextStep {
        code,
        sentence,
        activity_id: None,
        due: None,
    }
}

/// What the student must do next, most urgent first. Mirrors the rules of `domain::portfolio`
/// (what `decide` would accept now), so a step shown is a command that will not be refused for
/// being out of order.
fn next_steps(
    p: &Portfolio,
    rules: &ProgramRules,
    deadline: NaiveDate,
    extended: bool,
) -> Vec<NextStep> {
    use NextStepCode as C;
    match p.phase {
        Phase::Applied { .. } => {
            return vec![step(
                C::AwaitDecision,
                "Your application waits for the program's decision.".into(),
            )];
        }
        Phase::Certified => {
            let on = p.certificate.as_ref().map(|c| c.decided_on);
            let sentence = match on {
                Some(on) => format!("Nothing: your certificate was approved on {on}."),
                None => "Nothing: your certificate was approved.".into(),
            };
            return vec![step(C::None, sentence)];
        }
        Phase::Revoked => {
            let on = p.revocation.as_ref().map(|r| r.revoked_on);
            let sentence = match on {
                Some(on) => {
                    format!(
                        "Nothing: the certificate was revoked on {on} and this portfolio is closed."
                    )
                }
                None => "Nothing: the certificate was revoked and this portfolio is closed.".into(),
            };
            return vec![step(C::None, sentence)];
        }
        Phase::Collecting => {}
    }
    let required = u32::from(rules.required_activities);
    let mut steps = Vec::new();
    for wanted in [ReflectionStatus::Returned, ReflectionStatus::NotSubmitted] {
        for a in p.active_activities().filter(|a| a.status() == wanted) {
            let (code, sentence) = if wanted == ReflectionStatus::Returned {
                (
                    C::ReviseReflection,
                    format!(
                        "Revise your reflection on \u{201c}{}\u{201d} as your coordinator asked, and submit it again.",
                        a.logged.item_name
                    ),
                )
            } else {
                (
                    C::SubmitReflection,
                    format!(
                        "Submit a reflection on \u{201c}{}\u{201d}.",
                        a.logged.item_name
                    ),
                )
            };
            steps.push(NextStep {
                activity_id: Some(a.id()),
                ..step(code, sentence)
            });
        }
    }
    let counted = p.count_counting(rules, |_| true);
    if counted < required {
        let missing = required - counted;
        let noun = if missing == 1 {
            "activity"
        } else {
            "activities"
        };
        let distinct = match (rules.allow_repeat_items, counted) {
            (true, _) => "",
            (false, 0) => ", each a different item",
            (false, _) => ", each a different item from the ones you have logged",
        };
        steps.push(step(
            C::LogActivity,
            format!("Log {missing} more {noun} from your program's catalog{distinct}."),
        ));
    }
    let final_status = p.final_status();
    match final_status {
        ReflectionStatus::Returned => steps.push(step(
            C::ReviseFinalReflection,
            "Revise your final reflection as your coordinator asked, and submit it again.".into(),
        )),
        ReflectionStatus::NotSubmitted if p.reflected_count(rules) >= required => {
            let extension = if extended { " (extended)" } else { "" };
            steps.push(NextStep {
                due: Some(deadline),
                ..step(
                    C::SubmitFinalReflection,
                    format!("Submit your final reflection, in English, by {deadline}{extension}."),
                )
            });
        }
        _ => {}
    }
    if final_status == ReflectionStatus::Approved && p.approved_count(rules) >= required {
        let sentence = if p.rejections.is_empty() {
            "Apply for the certificate."
        } else {
            "Make the changes your coordinator asked for, then apply for the certificate again."
        };
        steps.push(step(C::Apply, sentence.into()));
    }
    let awaiting = p
        .active_activities()
        .filter(|a| a.status() == ReflectionStatus::AwaitingReview)
        .count()
        + usize::from(final_status == ReflectionStatus::AwaitingReview);
    if awaiting > 0 {
        let sentence = if awaiting == 1 {
            "One reflection waits for your coordinator's review.".to_owned()
        } else {
            format!("{awaiting} reflections wait for your coordinator's review.")
        };
        steps.push(step(C::AwaitReview, sentence));
    }
    if steps.is_empty() {
        steps.push(step(C::None, "Nothing to do right now.".into()));
    }
    steps
}

/// The personal content of a portfolio, for the student themself and their coordinators. Built
/// from a state folded *with* the personal column; every field is `None`/empty once erased.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PortfolioPersonal {
    pub student: Option<StudentDetails>,
    pub activities: Vec<ActivityPersonalView>,
    pub final_attempts: Vec<AttemptPersonal>,
    /// In the order of [`DeadlineView::extensions`].
    pub extension_reasons: Vec<Option<NonEmptyText>>,
    pub rejection_reasons: Vec<RejectionReason>,
    pub revocation_reason: Option<NonEmptyText>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActivityPersonalView {
    pub activity_id: ActivityId,
    pub details: Option<ActivityPersonal>,
    pub attempts: Vec<AttemptPersonal>,
}

/// What the student handed in for one attempt, and the feedback they got on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttemptPersonal {
    pub attempt: u32,
    pub content: Option<ReflectionPersonal>,
    pub feedback: Option<NonEmptyText>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RejectionReason {
    pub application: u32,
    pub reason: Option<NonEmptyText>,
}

fn feedback_of(review: Option<&Review>) -> Option<NonEmptyText> {
    match review {
        Some(Review::Returned {
            personal: Some(p), ..
        }) => Some(p.feedback.clone()),
        _ => None,
    }
}

impl PortfolioPersonal {
    /// Pure, like [`PortfolioView::build`].
    pub fn build(p: &Portfolio) -> Self {
        PortfolioPersonal {
            student: p.student.clone(),
            activities: p
                .activities
                .iter()
                .map(|a| ActivityPersonalView {
                    activity_id: a.id(),
                    details: a.logged.personal.clone(),
                    attempts: a
                        .attempts
                        .iter()
                        .map(|t| AttemptPersonal {
                            attempt: t.submitted.attempt,
                            content: t.submitted.personal.clone(),
                            feedback: feedback_of(t.review.as_ref()),
                        })
                        .collect(),
                })
                .collect(),
            final_attempts: p
                .final_attempts
                .iter()
                .map(|t| AttemptPersonal {
                    attempt: t.submitted.attempt,
                    content: t.submitted.personal.clone(),
                    feedback: feedback_of(t.review.as_ref()),
                })
                .collect(),
            extension_reasons: p
                .extensions
                .iter()
                .map(|e| e.personal.as_ref().map(|r| r.reason.clone()))
                .collect(),
            rejection_reasons: p
                .rejections
                .iter()
                .map(|r| RejectionReason {
                    application: r.application,
                    reason: r.personal.as_ref().map(|p| p.reason.clone()),
                })
                .collect(),
            revocation_reason: p
                .revocation
                .as_ref()
                .and_then(|r| r.personal.as_ref().map(|p| p.reason.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::portfolio::{
        ActivityLogged, ApplicationRejected, ApplicationSubmitted, FinalReflectionApproved,
        FinalReflectionSubmitted, PortfolioEvent, PortfolioOpened, ReflectionApproved,
        ReflectionReturned, ReflectionSubmitted, evolve,
    };
    use crate::domain::rules::WordBand;
    use uuid::Uuid;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn aid(n: u128) -> ActivityId {
        ActivityId::new(Uuid::from_u128(n))
    }

    fn staff() -> StaffId {
        StaffId::parse("coord-1").unwrap()
    }

    fn opened() -> PortfolioEvent {
        PortfolioOpened {
            portfolio_id: PortfolioId::new(Uuid::from_u128(1)),
            program_id: ProgramId::new(Uuid::from_u128(2)),
            student_uid: StudentUid::new(Uuid::from_u128(3)),
            expected_completion: date(2026, 6, 30),
            personal: None,
        }
        .into()
    }

    fn logged(n: u128, item: &str) -> PortfolioEvent {
        ActivityLogged {
            activity_id: aid(n),
            item: CatalogItemId::parse(item).unwrap(),
            item_name: format!("Item {item}"),
            started_on: date(2025, 9, 1),
            ended_on: date(2025, 9, 2),
            has_evidence: false,
            personal: None,
        }
        .into()
    }

    fn submitted(n: u128, attempt: u32) -> PortfolioEvent {
        ReflectionSubmitted {
            activity_id: aid(n),
            attempt,
            format: ReflectionFormat::Written,
            word_count: Some(1000),
            duration_s: None,
            duration_measured: None,
            recording: None,
            link_count: None,
            rules_version: 1,
            band: AppliedBand::Words(WordBand {
                min: 900,
                max: 1100,
            }),
            personal: None,
        }
        .into()
    }

    fn approved(n: u128, attempt: u32) -> PortfolioEvent {
        ReflectionApproved {
            activity_id: aid(n),
            attempt,
            by: staff(),
        }
        .into()
    }

    fn final_submitted(attempt: u32) -> PortfolioEvent {
        FinalReflectionSubmitted {
            attempt,
            format: FinalFormat::Written,
            word_count: Some(3000),
            duration_s: None,
            duration_measured: None,
            recording: None,
            language: Some("eng".into()),
            language_confidence: Some(0.987_654_321),
            rules_version: 1,
            band: AppliedBand::Words(WordBand {
                min: 2700,
                max: 3300,
            }),
            submitted_on: date(2026, 5, 1),
            deadline: Some(date(2026, 6, 2)),
            extended: false,
            personal: None,
        }
        .into()
    }

    fn view(events: &[PortfolioEvent]) -> PortfolioView {
        let state = events.iter().fold(PortfolioState::default(), evolve);
        PortfolioView::from_state(&state, &ProgramRules::default()).unwrap()
    }

    fn codes(v: &PortfolioView) -> Vec<NextStepCode> {
        v.next_steps.iter().map(|s| s.code).collect()
    }

    #[test]
    fn a_new_portfolio_asks_for_three_different_activities() {
        let v = view(&[opened()]);
        assert_eq!(codes(&v), [NextStepCode::LogActivity]);
        assert_eq!(
            v.next_steps[0].sentence,
            "Log 3 more activities from your program's catalog, each a different item."
        );
        assert_eq!(v.deadline.date, date(2026, 6, 2));
        assert!(v.deadline.binding);
        assert_eq!(v.days_left(date(2026, 5, 31)), Some(2));
        assert_eq!(v.days_left(date(2026, 6, 3)), Some(-1));
        assert_eq!(
            PortfolioView::from_state(&PortfolioState::default(), &ProgramRules::default()),
            None
        );
    }

    #[test]
    fn steps_follow_the_path_to_the_application() {
        let mut events = vec![opened(), logged(1, "tedx")];
        let v = view(&events);
        assert_eq!(
            codes(&v),
            [NextStepCode::SubmitReflection, NextStepCode::LogActivity]
        );
        assert_eq!(v.next_steps[0].activity_id, Some(aid(1)));
        assert_eq!(
            v.next_steps[0].sentence,
            "Submit a reflection on \u{201c}Item tedx\u{201d}."
        );

        events.extend([logged(2, "language-cafe"), logged(3, "student-ambassador")]);
        events.extend([submitted(1, 1), submitted(2, 1), submitted(3, 1)]);
        let v = view(&events);
        assert_eq!(
            codes(&v),
            [
                NextStepCode::SubmitFinalReflection,
                NextStepCode::AwaitReview
            ]
        );
        assert_eq!(v.next_steps[0].due, Some(date(2026, 6, 2)));
        assert_eq!(
            v.next_steps[1].sentence,
            "3 reflections wait for your coordinator's review."
        );

        events.push(
            ReflectionReturned {
                activity_id: aid(2),
                attempt: 1,
                by: staff(),
                personal: None,
            }
            .into(),
        );
        let v = view(&events);
        assert_eq!(
            codes(&v),
            [
                NextStepCode::ReviseReflection,
                NextStepCode::SubmitFinalReflection,
                NextStepCode::AwaitReview
            ]
        );
        events.extend([
            submitted(2, 2),
            approved(1, 1),
            approved(2, 2),
            approved(3, 1),
        ]);
        events.push(final_submitted(1));
        let v = view(&events);
        assert_eq!(codes(&v), [NextStepCode::AwaitReview]);
        assert!(!v.deadline.binding);
        assert_eq!(v.days_left(date(2026, 5, 1)), None);
        assert_eq!(v.activities[1].attempts.len(), 2, "every attempt is kept");
        assert_eq!(
            v.final_reflection.attempts[0].language_confidence_pct,
            Some(99)
        );

        events.push(
            FinalReflectionApproved {
                attempt: 1,
                by: staff(),
            }
            .into(),
        );
        assert_eq!(codes(&view(&events)), [NextStepCode::Apply]);
        events.push(
            ApplicationSubmitted {
                application: 1,
                activity_ids: vec![aid(1), aid(2), aid(3)],
            }
            .into(),
        );
        let v = view(&events);
        assert_eq!(codes(&v), [NextStepCode::AwaitDecision]);
        assert_eq!(v.phase, PhaseName::Applied);
        assert_eq!(v.application.pending, Some(1));
        events.push(
            ApplicationRejected {
                application: 1,
                by: staff(),
                personal: None,
            }
            .into(),
        );
        let v = view(&events);
        assert_eq!(codes(&v), [NextStepCode::Apply]);
        assert!(v.next_steps[0].sentence.contains("again"));
    }

    #[test]
    fn the_view_round_trips_through_json() {
        let v = view(&[
            opened(),
            logged(1, "tedx"),
            submitted(1, 1),
            final_submitted(1),
        ]);
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(serde_json::from_value::<PortfolioView>(json).unwrap(), v);
    }
}
