//! What the student must do next: the steps shown with a portfolio, derived from its state.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::domain::ActivityId;
use crate::domain::portfolio::{Phase, Portfolio, ReflectionStatus};
use crate::domain::rules::ProgramRules;

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
    /// The final reflection waits for a coordinator to confirm the expected completion date.
    AwaitCompletionConfirmation,
    Apply,
    AwaitReview,
    AwaitDecision,
    None,
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
pub(super) fn next_steps(
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
        ReflectionStatus::NotSubmitted
            if p.reflected_count(rules) >= required && !p.completion_confirmed =>
        {
            steps.push(step(
                C::AwaitCompletionConfirmation,
                format!(
                    "Your coordinator has not yet confirmed your expected completion date ({}); you can submit your final reflection once they have.",
                    p.expected_completion
                ),
            ));
        }
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
