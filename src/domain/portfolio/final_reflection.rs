//! The final reflection, its review, and deadline extensions.

use chrono::NaiveDate;

use super::activities::next_attempt;
use super::commands::{FinalContent, MAX_STAFF_TEXT_LEN};
use super::content::judge_final;
use super::decide::{Ctx, check_len, require_collecting};
use super::events::*;
use super::state::ReflectionStatus;
use crate::domain::errors::DomainError;
use crate::domain::ids::StaffId;
use crate::domain::values::NonEmptyText;

/// The deadline binds the first submission only: once the student has met it, a coordinator's request
/// for changes must not lock them out.
pub(super) fn submit(
    ctx: &Ctx<'_>,
    content: FinalContent,
    resubmission: bool,
) -> Result<PortfolioEvent, DomainError> {
    require_collecting(ctx.portfolio)?;
    let p = ctx.portfolio;
    let rules = ctx.rules();
    match (resubmission, p.final_status()) {
        (false, ReflectionStatus::NotSubmitted) | (true, ReflectionStatus::Returned) => {}
        (false, _) => return Err(DomainError::FinalReflectionAlreadySubmitted),
        (true, _) => return Err(DomainError::FinalReflectionNotReturned),
    }
    let mut deadline = None;
    let mut extended = false;
    if !resubmission {
        let required = u32::from(rules.required_activities);
        let with_reflection = p.reflected_count(rules);
        if with_reflection < required {
            return Err(DomainError::FinalReflectionTooEarly {
                with_reflection,
                required,
            });
        }
        // The deadline binds only once its date comes from a trusted source (docs/rules.md).
        if !p.completion_confirmed {
            return Err(DomainError::ExpectedCompletionUnconfirmed {
                expected_completion: p.expected_completion,
            });
        }
        let due = p.deadline(rules);
        if ctx.today > due.date {
            return Err(DomainError::FinalReflectionPastDeadline {
                deadline: due.date,
                expected_completion: p.expected_completion,
                offset_days: rules.final_deadline_offset_days,
                extended: due.extended,
            });
        }
        deadline = Some(due.date);
        extended = due.extended;
    }
    let judged = judge_final(content, rules)?;
    Ok(FinalReflectionSubmitted {
        attempt: next_attempt(p.final_attempts.len()),
        format: judged.format,
        word_count: judged.word_count,
        duration_s: judged.duration_s,
        duration_measured: judged.duration_measured,
        recording: judged.recording,
        language: judged.language.map(|(lang, _)| lang.to_owned()),
        language_confidence: judged.language.map(|(_, confidence)| confidence),
        rules_version: ctx.program.rules_version,
        band: judged.band,
        submitted_on: ctx.today,
        deadline,
        extended,
        personal: Some(judged.personal),
    }
    .into())
}

pub(super) fn approve(ctx: &Ctx<'_>, by: StaffId) -> Result<PortfolioEvent, DomainError> {
    let attempt = awaiting_review(ctx)?;
    Ok(FinalReflectionApproved { attempt, by }.into())
}

pub(super) fn return_for_revision(
    ctx: &Ctx<'_>,
    by: StaffId,
    feedback: NonEmptyText,
) -> Result<PortfolioEvent, DomainError> {
    let attempt = awaiting_review(ctx)?;
    check_len(&feedback, "feedback", MAX_STAFF_TEXT_LEN)?;
    Ok(FinalReflectionReturned {
        attempt,
        by,
        personal: Some(FeedbackPersonal { feedback }),
    }
    .into())
}

/// The number of the attempt that waits for review.
fn awaiting_review(ctx: &Ctx<'_>) -> Result<u32, DomainError> {
    require_collecting(ctx.portfolio)?;
    match ctx.portfolio.final_attempts.last() {
        Some(attempt) if attempt.review.is_none() => Ok(attempt.submitted.attempt),
        _ => Err(DomainError::FinalReflectionNotAwaitingReview),
    }
}

/// An extension only makes sense before the first submission (later ones are not deadline-bound), must
/// still lie ahead, and must actually move the deadline.
pub(super) fn grant_extension(
    ctx: &Ctx<'_>,
    until: NaiveDate,
    reason: NonEmptyText,
    by: StaffId,
) -> Result<PortfolioEvent, DomainError> {
    require_collecting(ctx.portfolio)?;
    if ctx.portfolio.final_status() != ReflectionStatus::NotSubmitted {
        return Err(DomainError::FinalReflectionAlreadySubmitted);
    }
    if until < ctx.today {
        return Err(DomainError::ExtensionInPast {
            until,
            today: ctx.today,
        });
    }
    let deadline = ctx.portfolio.deadline(ctx.rules()).date;
    if until <= deadline {
        return Err(DomainError::ExtensionNotLater { until, deadline });
    }
    check_len(&reason, "reason", MAX_STAFF_TEXT_LEN)?;
    Ok(ExtensionGranted {
        until,
        by,
        personal: Some(ReasonPersonal { reason }),
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{FinalContent, PortfolioCommand, PortfolioState, Review, decide};
    use super::*;
    use crate::domain::program::{ProgramCommand, ProgramState};
    use crate::domain::rules::ProgramRules;
    use chrono::{DateTime, Utc};

    fn oral_final(duration_s: u32) -> PortfolioCommand {
        PortfolioCommand::SubmitFinalReflection {
            content: FinalContent::Oral {
                media: Some(media()),
                link: None,
                duration_s,
                duration_measured: true,
            },
        }
    }

    fn extension(until: NaiveDate) -> PortfolioCommand {
        PortfolioCommand::GrantExtension {
            until,
            reason: text("Illness in the family."),
            by: coordinator(),
        }
    }

    fn submitted(
        state: &PortfolioState,
        prog: &ProgramState,
        cmd: PortfolioCommand,
        at: DateTime<Utc>,
    ) -> FinalReflectionSubmitted {
        match decide(state, prog, cmd, at).unwrap().remove(0) {
            PortfolioEvent::FinalReflectionSubmitted(e) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_final_reflection_waits_for_a_reflection_on_every_required_activity() {
        let prog = program();
        let state = with_activities(&prog, 2, false);
        assert_eq!(
            refuse(&state, &prog, final_written()),
            DomainError::FinalReflectionTooEarly {
                with_reflection: 2,
                required: 3
            }
        );
        // Submitted is enough: neither approval nor a pending review blocks it.
        let state = run(state, &prog, log_cmd(3, 2));
        let state = run(state, &prog, submit_cmd(3));
        assert!(decide(&state, &prog, final_written(), now()).is_ok());
    }

    #[test]
    fn repeated_items_count_once_when_the_program_does_not_allow_repeats() {
        let repeats = program_with(
            program(),
            ProgramCommand::ChangeRules {
                rules: ProgramRules {
                    allow_repeat_items: true,
                    ..ProgramRules::default()
                },
            },
        );
        let mut state = opened(&repeats);
        for n in 1..=3 {
            state = run(state, &repeats, log_cmd(n, 0));
            state = run(state, &repeats, submit_cmd(n));
        }
        assert!(decide(&state, &repeats, final_written(), now()).is_ok());
        let strict = program_with(
            repeats,
            ProgramCommand::ChangeRules {
                rules: ProgramRules::default(),
            },
        );
        assert_eq!(
            refuse(&state, &strict, final_written()),
            DomainError::FinalReflectionTooEarly {
                with_reflection: 1,
                required: 3
            }
        );
    }

    #[test]
    fn the_deadline_day_counts_in_stockholm_and_the_next_day_does_not() {
        let prog = program();
        let state = with_activities(&prog, 3, false);
        // Expected completion 2026-07-01, 28 days before: 2026-06-03 (summer time, UTC+2).
        let last_minute = stockholm(2026, 6, 3, 23, 59, 59);
        let e = submitted(&state, &prog, oral_final(300), last_minute);
        assert_eq!(
            (e.submitted_on, e.deadline, e.extended),
            (date(2026, 6, 3), Some(date(2026, 6, 3)), false)
        );
        let err = refuse_at(
            &state,
            &prog,
            oral_final(300),
            stockholm(2026, 6, 4, 0, 0, 0),
        );
        assert_eq!(
            err.to_string(),
            "the final reflection was due on 2026-06-03 (4 weeks before your expected completion on 2026-07-01); ask your coordinator for an extension"
        );
    }

    #[test]
    fn the_deadline_follows_changes_of_the_expected_completion_and_of_the_offset() {
        let prog = program();
        let state = with_activities(&prog, 3, false);
        let late = stockholm(2026, 6, 10, 12, 0, 0);
        assert_eq!(
            refuse_at(&state, &prog, oral_final(300), late).code(),
            "final_reflection_past_deadline"
        );
        let later = run(
            state.clone(),
            &prog,
            PortfolioCommand::SetExpectedCompletion {
                expected_completion: date(2026, 7, 8),
                reason: text("Study plan."),
                by: coordinator(),
            },
        );
        assert!(decide(&later, &prog, oral_final(300), late).is_ok());
        let short_offset = program_with(
            prog,
            ProgramCommand::ChangeRules {
                rules: ProgramRules {
                    final_deadline_offset_days: 14,
                    ..ProgramRules::default()
                },
            },
        );
        assert!(decide(&state, &short_offset, oral_final(300), late).is_ok());
    }

    #[test]
    fn an_extension_moves_the_deadline() {
        let prog = program();
        let state = run(
            with_activities(&prog, 3, false),
            &prog,
            extension(date(2026, 6, 20)),
        );
        let e = submitted(
            &state,
            &prog,
            oral_final(300),
            stockholm(2026, 6, 20, 23, 0, 0),
        );
        assert_eq!((e.deadline, e.extended), (Some(date(2026, 6, 20)), true));
        let err = refuse_at(
            &state,
            &prog,
            oral_final(300),
            stockholm(2026, 6, 21, 0, 0, 1),
        );
        assert!(err.to_string().contains("extended deadline"));
        // Moving completion later than the extension makes the regular deadline the one that counts.
        let moved = run(
            state,
            &prog,
            PortfolioCommand::SetExpectedCompletion {
                expected_completion: date(2026, 8, 1),
                reason: text("Study plan."),
                by: coordinator(),
            },
        );
        let e = submitted(
            &moved,
            &prog,
            oral_final(300),
            stockholm(2026, 7, 4, 12, 0, 0),
        );
        assert_eq!((e.deadline, e.extended), (Some(date(2026, 7, 4)), false));
    }

    #[test]
    fn extensions_must_lie_ahead_move_the_deadline_and_precede_the_submission() {
        let prog = program();
        let state = with_activities(&prog, 3, false);
        assert_eq!(
            refuse(&state, &prog, extension(date(2026, 3, 1))),
            DomainError::ExtensionInPast {
                until: date(2026, 3, 1),
                today: today()
            }
        );
        assert_eq!(
            refuse(&state, &prog, extension(date(2026, 6, 3))),
            DomainError::ExtensionNotLater {
                until: date(2026, 6, 3),
                deadline: date(2026, 6, 3)
            }
        );
        let extended = run(state.clone(), &prog, extension(date(2026, 6, 20)));
        assert_eq!(
            refuse(&extended, &prog, extension(date(2026, 6, 19))).code(),
            "extension_not_later"
        );
        assert!(decide(&extended, &prog, extension(date(2026, 6, 25)), now()).is_ok());
        let submitted = run(state, &prog, oral_final(300));
        assert_eq!(
            refuse(&submitted, &prog, extension(date(2026, 6, 20))),
            DomainError::FinalReflectionAlreadySubmitted
        );
        let by_stranger = PortfolioCommand::GrantExtension {
            until: date(2026, 6, 20),
            reason: text("x"),
            by: stranger(),
        };
        assert_eq!(
            refuse(&with_activities(&prog, 3, false), &prog, by_stranger),
            DomainError::NotACoordinator
        );
    }

    #[test]
    fn written_finals_must_be_english_and_record_the_detection() {
        let prog = program();
        let state = with_activities(&prog, 3, false);
        let e = submitted(&state, &prog, final_written(), now());
        assert_eq!(
            (e.word_count, e.language.as_deref()),
            (Some(3000), Some("eng"))
        );
        assert!(e.language_confidence.unwrap() > 0.9);
        let swedish = PortfolioCommand::SubmitFinalReflection {
            content: FinalContent::Written {
                text: swedish_text(3000),
            },
        };
        assert_eq!(
            refuse(&state, &prog, swedish).code(),
            "final_reflection_not_english"
        );
    }

    #[test]
    fn the_final_reflection_is_reviewed_and_resubmitted_without_the_deadline() {
        let prog = program();
        let state = run(with_activities(&prog, 3, false), &prog, oral_final(320));
        assert_eq!(
            refuse(&state, &prog, oral_final(320)),
            DomainError::FinalReflectionAlreadySubmitted
        );
        let resubmit = PortfolioCommand::ResubmitFinalReflection {
            content: FinalContent::Written {
                text: english_text(2800),
            },
        };
        assert_eq!(
            refuse(&state, &prog, resubmit.clone()),
            DomainError::FinalReflectionNotReturned
        );
        let state = run(
            state,
            &prog,
            PortfolioCommand::ReturnFinalReflection {
                by: coordinator(),
                feedback: text("Connect it to the workplace."),
            },
        );
        // Long after the deadline: a resubmission after a return is still accepted.
        let late = stockholm(2026, 6, 30, 12, 0, 0);
        let e = submitted(&state, &prog, resubmit.clone(), late);
        assert_eq!((e.attempt, e.deadline), (2, None));
        let state = run_at(state, &prog, resubmit, late);
        let approve = PortfolioCommand::ApproveFinalReflection { by: coordinator() };
        let state = run_at(state, &prog, approve.clone(), late);
        let p = portfolio(&state);
        assert_eq!(p.final_attempts.len(), 2);
        assert!(matches!(
            p.final_attempts[0].review,
            Some(Review::Returned { .. })
        ));
        assert_eq!(p.final_status(), ReflectionStatus::Approved);
        assert_eq!(
            refuse(&state, &prog, approve),
            DomainError::FinalReflectionNotAwaitingReview
        );
    }

    #[test]
    fn reviewing_a_final_reflection_needs_one_waiting() {
        let prog = program();
        let state = with_activities(&prog, 3, false);
        assert_eq!(
            refuse(
                &state,
                &prog,
                PortfolioCommand::ApproveFinalReflection { by: coordinator() }
            ),
            DomainError::FinalReflectionNotAwaitingReview
        );
        assert_eq!(
            refuse(
                &state,
                &prog,
                PortfolioCommand::ReturnFinalReflection {
                    by: coordinator(),
                    feedback: text("x")
                }
            ),
            DomainError::FinalReflectionNotAwaitingReview
        );
        let state = run(state, &prog, oral_final(300));
        assert_eq!(
            refuse(
                &state,
                &prog,
                PortfolioCommand::ApproveFinalReflection { by: stranger() }
            ),
            DomainError::NotACoordinator
        );
    }

    #[test]
    fn final_content_is_judged_after_the_deadline_and_order_checks() {
        let prog = program();
        let state = with_activities(&prog, 3, false);
        assert_eq!(
            refuse(&state, &prog, oral_final(299)).code(),
            "final_reflection_too_short"
        );
        // Too late wins over too short: the student must first talk to the coordinator.
        let late = stockholm(2026, 6, 10, 12, 0, 0);
        assert_eq!(
            refuse_at(&state, &prog, oral_final(299), late).code(),
            "final_reflection_past_deadline"
        );
    }
}
