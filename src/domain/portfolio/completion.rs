//! The expected completion date, from which the final reflection's deadline is computed.
//!
//! The deadline binds the student, so the student cannot move the date: the date they give at
//! enrolment binds nothing until a coordinator confirms it or sets another (Ladok's student
//! information carries no planned end of studies, so the program is the trusted source); the first
//! final reflection waits for that. After it, the student may only propose another date with a reason,
//! which a coordinator accepts or declines with a reason. Every step is an event with who (and, for a
//! change, why), so the audit shows how the deadline moved.

use chrono::NaiveDate;

use super::decide::{Ctx, check_len, check_not_past};
use super::events::*;
use super::state::Phase;
use crate::domain::errors::DomainError;
use crate::domain::ids::StaffId;
use crate::domain::portfolio::commands::MAX_STAFF_TEXT_LEN;
use crate::domain::values::NonEmptyText;

/// The date matters while collecting and while an application is pending (studies may be prolonged
/// at any time); a decided certificate no longer depends on it.
fn require_undecided(ctx: &Ctx<'_>) -> Result<(), DomainError> {
    match ctx.portfolio.phase {
        Phase::Collecting | Phase::Applied { .. } => Ok(()),
        Phase::Certified => Err(DomainError::CertificateAlreadyIssued),
        Phase::Revoked => Err(DomainError::PortfolioClosed),
    }
}

/// A new date must differ from the one in force and must not be in the past.
fn check_new_date(ctx: &Ctx<'_>, date: NaiveDate) -> Result<(), DomainError> {
    if date == ctx.portfolio.expected_completion {
        return Err(DomainError::NoChange {
            what: "expected completion date",
        });
    }
    check_not_past(date, ctx.today)
}

fn reason(reason: NonEmptyText) -> Result<Option<ReasonPersonal>, DomainError> {
    check_len(&reason, "reason", MAX_STAFF_TEXT_LEN)?;
    Ok(Some(ReasonPersonal { reason }))
}

/// A coordinator sets the date directly (e.g. from the study plan). A pending proposal stays pending:
/// the student asked for something and deserves an answer to it.
pub(super) fn set(
    ctx: &Ctx<'_>,
    expected_completion: NaiveDate,
    why: NonEmptyText,
    by: StaffId,
) -> Result<PortfolioEvent, DomainError> {
    require_undecided(ctx)?;
    check_new_date(ctx, expected_completion)?;
    Ok(ExpectedCompletionSet {
        expected_completion,
        previous: ctx.portfolio.expected_completion,
        by,
        personal: reason(why)?,
    }
    .into())
}

/// A coordinator confirms the date the student gave at enrolment. A date already confirmed (or set
/// by a coordinator) is refused as no change; a past date must be set anew, not confirmed.
pub(super) fn confirm(ctx: &Ctx<'_>, by: StaffId) -> Result<PortfolioEvent, DomainError> {
    require_undecided(ctx)?;
    if ctx.portfolio.completion_confirmed {
        return Err(DomainError::NoChange {
            what: "confirmation of the expected completion date (it is already confirmed)",
        });
    }
    check_not_past(ctx.portfolio.expected_completion, ctx.today)?;
    Ok(ExpectedCompletionConfirmed {
        expected_completion: ctx.portfolio.expected_completion,
        by,
    }
    .into())
}

pub(super) fn propose(
    ctx: &Ctx<'_>,
    expected_completion: NaiveDate,
    why: NonEmptyText,
) -> Result<PortfolioEvent, DomainError> {
    require_undecided(ctx)?;
    check_new_date(ctx, expected_completion)?;
    Ok(ExpectedCompletionProposed {
        proposal: ctx.portfolio.completion_proposals + 1,
        expected_completion,
        current: ctx.portfolio.expected_completion,
        personal: reason(why)?,
    }
    .into())
}

/// Accepting re-checks the date against today: a proposal left waiting may have become past.
pub(super) fn accept(
    ctx: &Ctx<'_>,
    by: StaffId,
    why: NonEmptyText,
) -> Result<PortfolioEvent, DomainError> {
    require_undecided(ctx)?;
    let proposal = ctx
        .portfolio
        .completion_proposal
        .as_ref()
        .ok_or(DomainError::NoPendingCompletionProposal)?;
    check_not_past(proposal.expected_completion, ctx.today)?;
    Ok(ExpectedCompletionProposalAccepted {
        proposal: proposal.proposal,
        expected_completion: proposal.expected_completion,
        previous: ctx.portfolio.expected_completion,
        by,
        personal: reason(why)?,
    }
    .into())
}

/// Declining changes no date, so it is possible in every phase (a proposal left over from before
/// the certificate can still be answered).
pub(super) fn decline(
    ctx: &Ctx<'_>,
    by: StaffId,
    why: NonEmptyText,
) -> Result<PortfolioEvent, DomainError> {
    let proposal = ctx
        .portfolio
        .completion_proposal
        .as_ref()
        .ok_or(DomainError::NoPendingCompletionProposal)?;
    Ok(ExpectedCompletionProposalDeclined {
        proposal: proposal.proposal,
        by,
        personal: reason(why)?,
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::state::PortfolioState;
    use super::super::{PortfolioCommand, decide, evolve};
    use super::*;

    fn set_cmd(to: NaiveDate) -> PortfolioCommand {
        PortfolioCommand::SetExpectedCompletion {
            expected_completion: to,
            reason: text("Study plan updated by the program office."),
            by: coordinator(),
        }
    }

    fn propose_cmd(to: NaiveDate) -> PortfolioCommand {
        PortfolioCommand::ProposeExpectedCompletion {
            expected_completion: to,
            reason: text("My clinical placement moved to the autumn."),
        }
    }

    fn accept_cmd() -> PortfolioCommand {
        PortfolioCommand::AcceptExpectedCompletion {
            by: coordinator(),
            reason: text("Confirmed with the placement office."),
        }
    }

    fn decline_cmd() -> PortfolioCommand {
        PortfolioCommand::DeclineExpectedCompletion {
            by: coordinator(),
            reason: text("The study plan still ends in June."),
        }
    }

    fn p(state: &PortfolioState) -> &super::super::state::Portfolio {
        portfolio(state)
    }

    #[test]
    fn a_coordinator_sets_the_date_with_who_and_why() {
        let prog = program();
        let events = decide(&opened(&prog), &prog, set_cmd(date(2027, 1, 15)), now()).unwrap();
        let [PortfolioEvent::ExpectedCompletionSet(e)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(
            (e.expected_completion, e.previous, &e.by),
            (date(2027, 1, 15), completion(), &coordinator())
        );
        assert!(e.personal.is_some());
        let state = run(opened(&prog), &prog, set_cmd(date(2027, 1, 15)));
        assert_eq!(p(&state).expected_completion, date(2027, 1, 15));
        // Today itself is not in the past.
        assert!(decide(&opened(&prog), &prog, set_cmd(today()), now()).is_ok());
    }

    #[test]
    fn the_date_given_at_enrolment_binds_only_once_a_coordinator_confirms_it() {
        let prog = program();
        let mut state = opened_unconfirmed(&prog);
        for n in 1..=3u128 {
            state = run(state, &prog, log_cmd(n, n as usize - 1));
            state = run(state, &prog, submit_cmd(n));
        }
        assert!(!p(&state).completion_confirmed);
        // The student's own date does not yet set a deadline they could have chosen themselves.
        assert_eq!(
            refuse(&state, &prog, final_written()),
            DomainError::ExpectedCompletionUnconfirmed {
                expected_completion: completion()
            }
        );
        assert_eq!(
            refuse(&state, &prog, confirm_cmd_by(stranger())),
            DomainError::NotACoordinator
        );
        let events = decide(&state, &prog, confirm_cmd(), now()).unwrap();
        let [PortfolioEvent::ExpectedCompletionConfirmed(e)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(
            (e.expected_completion, &e.by),
            (completion(), &coordinator())
        );
        let confirmed = run(state.clone(), &prog, confirm_cmd());
        assert!(p(&confirmed).completion_confirmed);
        assert!(decide(&confirmed, &prog, final_written(), now()).is_ok());
        assert!(matches!(
            refuse(&confirmed, &prog, confirm_cmd()),
            DomainError::NoChange { .. }
        ));
        // Setting another date, or accepting a proposal, confirms too.
        let set = run(state.clone(), &prog, set_cmd(date(2027, 1, 15)));
        assert!(p(&set).completion_confirmed);
        let proposed = run(state, &prog, propose_cmd(date(2027, 1, 15)));
        assert!(!p(&proposed).completion_confirmed);
        assert!(p(&run(proposed, &prog, accept_cmd())).completion_confirmed);
    }

    #[test]
    fn a_past_date_is_set_anew_not_confirmed() {
        let prog = program();
        let state = run(
            PortfolioState::default(),
            &prog,
            open_command_with(date(2026, 4, 1)),
        );
        let later = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 5, 1, 10, 0, 0).unwrap();
        assert!(matches!(
            decide(&state, &prog, confirm_cmd(), later).unwrap_err(),
            DomainError::ExpectedCompletionInPast { .. }
        ));
    }

    fn confirm_cmd_by(by: StaffId) -> PortfolioCommand {
        PortfolioCommand::ConfirmExpectedCompletion { by }
    }

    #[test]
    fn only_a_coordinator_of_the_program_sets_or_decides() {
        let prog = program();
        let stranger_sets = PortfolioCommand::SetExpectedCompletion {
            expected_completion: date(2027, 1, 15),
            reason: text("Because."),
            by: stranger(),
        };
        assert_eq!(
            refuse(&opened(&prog), &prog, stranger_sets),
            DomainError::NotACoordinator
        );
        let pending = run(opened(&prog), &prog, propose_cmd(date(2027, 1, 15)));
        let stranger_accepts = PortfolioCommand::AcceptExpectedCompletion {
            by: stranger(),
            reason: text("Because."),
        };
        assert_eq!(
            refuse(&pending, &prog, stranger_accepts),
            DomainError::NotACoordinator
        );
    }

    #[test]
    fn a_proposal_changes_nothing_until_accepted() {
        let prog = program();
        let pending = run(opened(&prog), &prog, propose_cmd(date(2027, 1, 15)));
        assert_eq!(p(&pending).expected_completion, completion());
        assert_eq!(
            p(&pending)
                .deadline(&prog.registered().unwrap().rules)
                .regular,
            date(2026, 6, 3)
        );
        let proposal = p(&pending).completion_proposal.clone().unwrap();
        assert_eq!((proposal.proposal, proposal.current), (1, completion()));

        let accepted = run(pending.clone(), &prog, accept_cmd());
        assert_eq!(p(&accepted).expected_completion, date(2027, 1, 15));
        assert_eq!(p(&accepted).completion_proposal, None);
        let events = decide(&pending, &prog, accept_cmd(), now()).unwrap();
        assert!(matches!(
            events.as_slice(),
            [PortfolioEvent::ExpectedCompletionProposalAccepted(e)]
                if e.proposal == 1 && e.previous == completion() && e.by == coordinator()
        ));

        let declined = run(pending, &prog, decline_cmd());
        assert_eq!(p(&declined).expected_completion, completion());
        assert_eq!(p(&declined).completion_proposal, None);
    }

    #[test]
    fn a_newer_proposal_replaces_the_pending_one_and_is_numbered() {
        let prog = program();
        let first = run(opened(&prog), &prog, propose_cmd(date(2027, 1, 15)));
        let second = run(first, &prog, propose_cmd(date(2027, 2, 1)));
        let proposal = p(&second).completion_proposal.clone().unwrap();
        assert_eq!(
            (proposal.proposal, proposal.expected_completion),
            (2, date(2027, 2, 1))
        );
        let accepted = run(second, &prog, accept_cmd());
        assert_eq!(p(&accepted).expected_completion, date(2027, 2, 1));
    }

    #[test]
    fn deciding_needs_a_pending_proposal() {
        let prog = program();
        for cmd in [accept_cmd(), decline_cmd()] {
            assert_eq!(
                refuse(&opened(&prog), &prog, cmd.clone()).code(),
                "no_pending_proposal"
            );
        }
        let decided = run(
            run(opened(&prog), &prog, propose_cmd(date(2027, 1, 15))),
            &prog,
            decline_cmd(),
        );
        assert_eq!(
            refuse(&decided, &prog, accept_cmd()),
            DomainError::NoPendingCompletionProposal
        );
    }

    #[test]
    fn same_and_past_dates_are_refused_also_at_acceptance() {
        let prog = program();
        let state = opened(&prog);
        for cmd in [set_cmd(completion()), propose_cmd(completion())] {
            assert_eq!(refuse(&state, &prog, cmd).code(), "no_change");
        }
        for cmd in [set_cmd(date(2026, 3, 1)), propose_cmd(date(2026, 3, 1))] {
            assert_eq!(
                refuse(&state, &prog, cmd).code(),
                "expected_completion_in_past"
            );
        }
        // Proposed for 2026-04-01, accepted only on 2026-04-02: the date is past by then.
        let pending = run(state, &prog, propose_cmd(date(2026, 4, 1)));
        let later = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 4, 2, 10, 0, 0).unwrap();
        assert_eq!(
            refuse_at(&pending, &prog, accept_cmd(), later).code(),
            "expected_completion_in_past"
        );
    }

    #[test]
    fn the_date_may_change_while_applied_but_not_after_the_decision() {
        let prog = program();
        assert!(decide(&applied(&prog), &prog, set_cmd(date(2027, 1, 1)), now()).is_ok());
        assert!(decide(&applied(&prog), &prog, propose_cmd(date(2027, 1, 1)), now()).is_ok());
        for cmd in [set_cmd(date(2027, 1, 1)), propose_cmd(date(2027, 1, 1))] {
            assert_eq!(
                refuse(&certified(&prog), &prog, cmd),
                DomainError::CertificateAlreadyIssued
            );
        }
    }

    #[test]
    fn old_student_changes_still_fold() {
        let prog = program();
        let legacy: PortfolioEvent = ExpectedCompletionChanged {
            expected_completion: date(2027, 3, 1),
            previous: completion(),
        }
        .into();
        let (event_type, payload) = legacy.to_payload();
        let read = PortfolioEvent::from_payload(event_type, &payload).unwrap();
        let state = evolve(opened(&prog), &read);
        assert_eq!(p(&state).expected_completion, date(2027, 3, 1));
    }
}
