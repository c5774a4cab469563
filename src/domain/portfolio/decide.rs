//! Deciding portfolio commands: dispatch, enrolment and the checks every command shares.

use chrono::{DateTime, NaiveDate, Utc};

use super::commands::PortfolioCommand;
use super::events::*;
use super::state::{Phase, Portfolio, PortfolioState};
use super::{activities, application, completion, final_reflection, identity};
use crate::domain::calendar::stockholm_date;
use crate::domain::errors::DomainError;
use crate::domain::ids::StaffId;
use crate::domain::program::{Program, ProgramState};
use crate::domain::rules::ProgramRules;
use crate::domain::values::{NonEmptyText, TextError};

/// What every rule may look at: the portfolio, its program as it is now, and today's Stockholm date.
pub(super) struct Ctx<'a> {
    pub portfolio: &'a Portfolio,
    pub program: &'a Program,
    pub today: NaiveDate,
}

impl Ctx<'_> {
    pub fn rules(&self) -> &ProgramRules {
        &self.program.rules
    }
}

/// Decides a command against the portfolio and the current state of its program.
///
/// `now` is the only clock: it becomes the Stockholm date by which activity dates, the final
/// reflection's deadline and the certificate's decision date are judged.
pub fn decide(
    state: &PortfolioState,
    program: &ProgramState,
    cmd: PortfolioCommand,
    now: DateTime<Utc>,
) -> Result<Vec<PortfolioEvent>, DomainError> {
    let program = program
        .registered()
        .ok_or(DomainError::ProgramNotRegistered)?;
    let today = stockholm_date(now);
    let portfolio = match state {
        PortfolioState::NotOpened => return open(program, cmd, today).map(|e| vec![e]),
        PortfolioState::Opened(portfolio) => portfolio,
    };
    if portfolio.program_id != program.id {
        return Err(DomainError::WrongProgram);
    }
    if let Some(by) = staff_of(&cmd)
        && !program.is_coordinator(by)
    {
        return Err(DomainError::NotACoordinator);
    }
    let ctx = Ctx {
        portfolio,
        program,
        today,
    };
    use PortfolioCommand as C;
    let event = match cmd {
        C::OpenPortfolio { .. } => return Err(DomainError::PortfolioAlreadyOpened),
        C::SetExpectedCompletion {
            expected_completion,
            reason,
            by,
        } => completion::set(&ctx, expected_completion, reason, by)?,
        C::ProposeExpectedCompletion {
            expected_completion,
            reason,
        } => completion::propose(&ctx, expected_completion, reason)?,
        C::CheckIdentityInLadok { record } => identity::check(&ctx, record)?,
        C::ConfirmExpectedCompletion { by } => completion::confirm(&ctx, by)?,
        C::AcceptExpectedCompletion { by, reason } => completion::accept(&ctx, by, reason)?,
        C::DeclineExpectedCompletion { by, reason } => completion::decline(&ctx, by, reason)?,
        C::LogActivity {
            activity_id,
            item,
            started_on,
            ended_on,
            description,
            evidence,
        } => activities::log(
            &ctx,
            activity_id,
            item,
            (started_on, ended_on),
            description,
            evidence,
        )?,
        C::WithdrawActivity { activity_id } => activities::withdraw(&ctx, activity_id)?,
        C::SubmitReflection {
            activity_id,
            content,
        } => activities::submit(&ctx, activity_id, content, false)?,
        C::ResubmitReflection {
            activity_id,
            content,
        } => activities::submit(&ctx, activity_id, content, true)?,
        C::ApproveReflection { activity_id, by } => activities::approve(&ctx, activity_id, by)?,
        C::ReturnReflection {
            activity_id,
            by,
            feedback,
        } => activities::return_for_revision(&ctx, activity_id, by, feedback)?,
        C::SubmitFinalReflection { content } => final_reflection::submit(&ctx, content, false)?,
        C::ResubmitFinalReflection { content } => final_reflection::submit(&ctx, content, true)?,
        C::ApproveFinalReflection { by } => final_reflection::approve(&ctx, by)?,
        C::ReturnFinalReflection { by, feedback } => {
            final_reflection::return_for_revision(&ctx, by, feedback)?
        }
        C::GrantExtension { until, reason, by } => {
            final_reflection::grant_extension(&ctx, until, reason, by)?
        }
        C::Apply => application::apply(&ctx)?,
        C::ApproveApplication { certificate_id, by } => {
            application::approve(&ctx, certificate_id, by)?
        }
        C::RejectApplication { by, reason } => application::reject(&ctx, by, reason)?,
        C::RevokeCertificate { by, reason } => application::revoke(&ctx, by, reason)?,
    };
    Ok(vec![event])
}

/// The staff member a coordinator-only command is issued by.
fn staff_of(cmd: &PortfolioCommand) -> Option<&StaffId> {
    use PortfolioCommand as C;
    match cmd {
        C::SetExpectedCompletion { by, .. }
        | C::ConfirmExpectedCompletion { by }
        | C::AcceptExpectedCompletion { by, .. }
        | C::DeclineExpectedCompletion { by, .. }
        | C::ApproveReflection { by, .. }
        | C::ReturnReflection { by, .. }
        | C::ApproveFinalReflection { by }
        | C::ReturnFinalReflection { by, .. }
        | C::GrantExtension { by, .. }
        | C::ApproveApplication { by, .. }
        | C::RejectApplication { by, .. }
        | C::RevokeCertificate { by, .. } => Some(by),
        _ => None,
    }
}

fn open(
    program: &Program,
    cmd: PortfolioCommand,
    today: NaiveDate,
) -> Result<PortfolioEvent, DomainError> {
    let PortfolioCommand::OpenPortfolio {
        portfolio_id,
        student_uid,
        identity_number,
        name,
        email,
        expected_completion,
        identity_check,
    } = cmd
    else {
        return Err(DomainError::PortfolioNotOpened);
    };
    check_not_past(expected_completion, today)?;
    Ok(PortfolioOpened {
        portfolio_id,
        program_id: program.id,
        student_uid,
        expected_completion,
        identity_check,
        personal: Some(StudentDetails {
            identity_number,
            name,
            email,
        }),
    }
    .into())
}

/// Judged against the Stockholm date: "today" is not in the past.
pub(super) fn check_not_past(date: NaiveDate, today: NaiveDate) -> Result<(), DomainError> {
    if date < today {
        return Err(DomainError::ExpectedCompletionInPast { date, today });
    }
    Ok(())
}

/// The portfolio's content can change only while collecting: it is frozen while an application is
/// decided and after a certificate exists.
pub(super) fn require_collecting(portfolio: &Portfolio) -> Result<(), DomainError> {
    match portfolio.phase {
        Phase::Collecting => Ok(()),
        Phase::Applied { .. } => Err(DomainError::ApplicationPending),
        Phase::Certified => Err(DomainError::CertificateAlreadyIssued),
        Phase::Revoked => Err(DomainError::PortfolioClosed),
    }
}

/// Free text typed by staff or students, within the field's limit.
pub(super) fn check_len(
    text: &NonEmptyText,
    field: &'static str,
    max: usize,
) -> Result<(), DomainError> {
    let len = text.as_str().chars().count();
    if len > max {
        return Err(TextError::TooLong { field, len, max }.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::domain::ids::ProgramId;
    use crate::domain::program::ProgramCommand;
    use chrono::TimeZone;
    use uuid::Uuid;

    #[test]
    fn opening_records_the_program_and_keeps_personal_data_apart() {
        let prog = program();
        let events = decide(&PortfolioState::default(), &prog, open_command(), now()).unwrap();
        let [PortfolioEvent::PortfolioOpened(e)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(e.program_id, program_id());
        assert_eq!(e.expected_completion, completion());
        let personal = e.personal.as_ref().unwrap();
        assert_eq!(personal.identity_number.as_str(), "198112189876");
        assert_eq!(personal.email.as_str(), "anna.berg@stud.ki.se");
        let state = opened(&prog);
        assert_eq!(portfolio(&state).phase, Phase::Collecting);
    }

    #[test]
    fn opening_needs_a_registered_program_and_a_future_completion() {
        let refused = decide(
            &PortfolioState::default(),
            &ProgramState::default(),
            open_command(),
            now(),
        );
        assert_eq!(refused, Err(DomainError::ProgramNotRegistered));

        let PortfolioCommand::OpenPortfolio {
            portfolio_id,
            student_uid,
            identity_number,
            name,
            email,
            ..
        } = open_command()
        else {
            unreachable!()
        };
        let past = PortfolioCommand::OpenPortfolio {
            portfolio_id,
            student_uid,
            identity_number,
            name,
            email,
            expected_completion: date(2026, 3, 1),
            identity_check: None,
        };
        assert_eq!(
            refuse(&PortfolioState::default(), &program(), past),
            DomainError::ExpectedCompletionInPast {
                date: date(2026, 3, 1),
                today: today()
            }
        );
    }

    #[test]
    fn a_portfolio_is_opened_once_and_nothing_happens_before() {
        let prog = program();
        assert_eq!(
            refuse(&PortfolioState::default(), &prog, log_cmd(1, 0)),
            DomainError::PortfolioNotOpened
        );
        assert_eq!(
            refuse(&opened(&prog), &prog, open_command()),
            DomainError::PortfolioAlreadyOpened
        );
    }

    #[test]
    fn commands_against_another_program_are_refused() {
        let other = program_with(
            ProgramState::default(),
            ProgramCommand::RegisterProgram {
                id: ProgramId::new(Uuid::from_u128(0xF)),
                name: text("Other"),
                code: crate::domain::ids::ProgramCode::parse("other").unwrap(),
            },
        );
        let state = opened(&program());
        assert_eq!(
            refuse(&state, &other, log_cmd(1, 0)),
            DomainError::WrongProgram
        );
    }

    #[test]
    fn only_coordinators_of_the_program_review() {
        let prog = program();
        let state = with_activities(&prog, 1, false);
        let by_stranger = PortfolioCommand::ApproveReflection {
            activity_id: aid(1),
            by: stranger(),
        };
        assert_eq!(
            refuse(&state, &prog, by_stranger),
            DomainError::NotACoordinator
        );
        let unassigned = program_with(
            prog.clone(),
            ProgramCommand::UnassignCoordinator {
                staff: coordinator(),
            },
        );
        assert_eq!(
            refuse(&state, &unassigned, approve_cmd(1)),
            DomainError::NotACoordinator
        );
        assert!(decide(&state, &prog, approve_cmd(1), now()).is_ok());
    }

    #[test]
    fn the_portfolio_is_frozen_while_applied_and_after_the_decision() {
        let prog = program();
        let state = applied(&prog);
        assert_eq!(
            refuse(&state, &prog, log_cmd(9, 5)),
            DomainError::ApplicationPending
        );
        assert_eq!(
            refuse(&state, &prog, PortfolioCommand::Apply),
            DomainError::ApplicationPending
        );
        let state = certified(&prog);
        assert_eq!(
            refuse(&state, &prog, log_cmd(9, 5)),
            DomainError::CertificateAlreadyIssued
        );
        let revoked = run(
            state,
            &prog,
            PortfolioCommand::RevokeCertificate {
                by: coordinator(),
                reason: text("Issued in error."),
            },
        );
        assert_eq!(
            refuse(&revoked, &prog, log_cmd(9, 5)),
            DomainError::PortfolioClosed
        );
        let set = PortfolioCommand::SetExpectedCompletion {
            expected_completion: date(2027, 1, 1),
            reason: text("Study plan."),
            by: coordinator(),
        };
        assert_eq!(refuse(&revoked, &prog, set), DomainError::PortfolioClosed);
    }

    #[test]
    fn today_is_the_stockholm_date() {
        let prog = program();
        // 23:30 UTC on 1 March is 00:30 on 2 March in Stockholm: an activity ending on 2 March is done.
        let late = Utc.with_ymd_and_hms(2026, 3, 1, 23, 30, 0).unwrap();
        let cmd = PortfolioCommand::LogActivity {
            activity_id: aid(1),
            item: item(0),
            started_on: date(2026, 3, 2),
            ended_on: date(2026, 3, 2),
            description: text("Same-day event."),
            evidence: None,
        };
        assert!(decide(&opened(&prog), &prog, cmd.clone(), late).is_ok());
        let earlier = Utc.with_ymd_and_hms(2026, 3, 1, 22, 30, 0).unwrap();
        assert_eq!(
            refuse_at(&opened(&prog), &prog, cmd, earlier).code(),
            "activity_in_future"
        );
    }
}
