//! Applying for the certificate, the program's decision, and revocation.

use super::commands::MAX_STAFF_TEXT_LEN;
use super::decide::{Ctx, check_len, require_collecting};
use super::events::*;
use super::state::{Phase, Portfolio, ReflectionStatus};
use crate::domain::errors::DomainError;
use crate::domain::ids::{CertificateId, StaffId};
use crate::domain::rules::ProgramRules;
use crate::domain::values::NonEmptyText;

/// We require the final reflection to be *approved* (not only submitted) before applying: the
/// coordinator reviews it like the others, and the application then asks for one decision only, on a
/// portfolio that is complete.
pub(super) fn apply(ctx: &Ctx<'_>) -> Result<PortfolioEvent, DomainError> {
    require_collecting(ctx.portfolio)?;
    check_requirements(ctx.portfolio, ctx.rules())?;
    Ok(ApplicationSubmitted {
        application: ctx.portfolio.applications + 1,
        activity_ids: approved_activities(ctx.portfolio)
            .map(|a| a.activity_id)
            .collect(),
    }
    .into())
}

/// Re-checks the requirements under the rules in force at the decision: a program that raised its
/// requirements while the application waited must not issue a certificate below them.
pub(super) fn approve(
    ctx: &Ctx<'_>,
    certificate_id: CertificateId,
    by: StaffId,
) -> Result<PortfolioEvent, DomainError> {
    let application = pending_application(ctx.portfolio)?;
    let p = ctx.portfolio;
    check_requirements(p, ctx.rules())?;
    let final_format = p
        .final_attempts
        .last()
        .map(|a| a.submitted.format)
        .ok_or(DomainError::FinalReflectionNotApproved)?;
    let activities = p
        .active_activities()
        .filter(|a| a.status() == ReflectionStatus::Approved)
        .filter_map(|a| {
            Some(CertifiedActivity {
                activity_id: a.id(),
                item: a.logged.item.clone(),
                item_name: a.logged.item_name.clone(),
                started_on: a.logged.started_on,
                ended_on: a.logged.ended_on,
                reflection_format: a.reflection_format()?,
            })
        })
        .collect();
    Ok(CertificateApproved {
        certificate_id,
        portfolio_id: p.id,
        program_id: ctx.program.id,
        program_code: ctx.program.code.clone(),
        program_name: ctx.program.name.to_string(),
        student_uid: p.student_uid,
        application,
        activities,
        final_format,
        decided_on: ctx.today,
        decided_by: by,
        personal: p.student.as_ref().map(|s| CertificateHolder {
            identity_number: s.identity_number.clone(),
            name: s.name.clone(),
        }),
    }
    .into())
}

/// The student can change the portfolio and apply again; what has to change is for the coordinator to
/// say in the reason, not for the domain to guess.
pub(super) fn reject(
    ctx: &Ctx<'_>,
    by: StaffId,
    reason: NonEmptyText,
) -> Result<PortfolioEvent, DomainError> {
    let application = pending_application(ctx.portfolio)?;
    check_len(&reason, "reason", MAX_STAFF_TEXT_LEN)?;
    Ok(ApplicationRejected {
        application,
        by,
        personal: Some(ReasonPersonal { reason }),
    }
    .into())
}

pub(super) fn revoke(
    ctx: &Ctx<'_>,
    by: StaffId,
    reason: NonEmptyText,
) -> Result<PortfolioEvent, DomainError> {
    let certificate = match (ctx.portfolio.phase, &ctx.portfolio.certificate) {
        (Phase::Certified, Some(certificate)) => certificate,
        (Phase::Revoked, _) => return Err(DomainError::PortfolioClosed),
        _ => return Err(DomainError::NoCertificate),
    };
    check_len(&reason, "reason", MAX_STAFF_TEXT_LEN)?;
    Ok(CertificateRevoked {
        certificate_id: certificate.certificate_id,
        by,
        revoked_on: ctx.today,
        personal: Some(ReasonPersonal { reason }),
    }
    .into())
}

fn pending_application(portfolio: &Portfolio) -> Result<u32, DomainError> {
    match portfolio.phase {
        Phase::Applied { application } => Ok(application),
        Phase::Collecting => Err(DomainError::NoApplicationPending),
        Phase::Certified => Err(DomainError::CertificateAlreadyIssued),
        Phase::Revoked => Err(DomainError::PortfolioClosed),
    }
}

pub(super) fn check_requirements(p: &Portfolio, rules: &ProgramRules) -> Result<(), DomainError> {
    let required = u32::from(rules.required_activities);
    let approved = p.approved_count(rules);
    if approved < required {
        return Err(DomainError::NotEnoughApprovedReflections {
            approved,
            required,
            distinct: !rules.allow_repeat_items,
        });
    }
    if p.final_status() != ReflectionStatus::Approved {
        return Err(DomainError::FinalReflectionNotApproved);
    }
    Ok(())
}

fn approved_activities(p: &Portfolio) -> impl Iterator<Item = &ActivityLogged> {
    p.active_activities()
        .filter(|a| a.status() == ReflectionStatus::Approved)
        .map(|a| &a.logged)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{PortfolioCommand, PortfolioState, decide};
    use super::*;
    use crate::domain::program::{ProgramCommand, ProgramState};
    use uuid::Uuid;

    fn certificate_id() -> CertificateId {
        CertificateId::new(Uuid::from_u128(0xCE))
    }

    fn approve_app(by: StaffId) -> PortfolioCommand {
        PortfolioCommand::ApproveApplication {
            certificate_id: certificate_id(),
            by,
        }
    }

    fn reject_app() -> PortfolioCommand {
        PortfolioCommand::RejectApplication {
            by: coordinator(),
            reason: text("Reflection 2 does not describe the activity."),
        }
    }

    fn revoke() -> PortfolioCommand {
        PortfolioCommand::RevokeCertificate {
            by: coordinator(),
            reason: text("Activity could not be verified."),
        }
    }

    fn only_event(
        state: &PortfolioState,
        prog: &ProgramState,
        cmd: PortfolioCommand,
    ) -> PortfolioEvent {
        decide(state, prog, cmd, now()).unwrap().remove(0)
    }

    #[test]
    fn applying_needs_the_required_approved_reflections() {
        let prog = program();
        let state = with_activities(&prog, 3, false);
        let state = run(state, &prog, approve_cmd(1));
        let state = run(state, &prog, approve_cmd(2));
        let err = refuse(&state, &prog, PortfolioCommand::Apply);
        assert_eq!(
            err,
            DomainError::NotEnoughApprovedReflections {
                approved: 2,
                required: 3,
                distinct: true
            }
        );
        assert_eq!(
            err.to_string(),
            "the certificate needs 3 approved activity reflections on different activities; there are 2"
        );
    }

    #[test]
    fn applying_needs_an_approved_final_reflection() {
        let prog = program();
        let state = with_activities(&prog, 3, true);
        assert_eq!(
            refuse(&state, &prog, PortfolioCommand::Apply),
            DomainError::FinalReflectionNotApproved
        );
        let state = run(state, &prog, final_written());
        assert_eq!(
            refuse(&state, &prog, PortfolioCommand::Apply),
            DomainError::FinalReflectionNotApproved
        );
    }

    #[test]
    fn withdrawn_activities_do_not_count() {
        let prog = program();
        let mut state = opened(&prog);
        for n in 1..=3 {
            state = run(state, &prog, log_cmd(n, n as usize));
            state = run(state, &prog, submit_cmd(n));
        }
        state = run(state, &prog, final_written());
        state = run(
            state,
            &prog,
            PortfolioCommand::ApproveFinalReflection { by: coordinator() },
        );
        state = run(state, &prog, approve_cmd(1));
        state = run(state, &prog, approve_cmd(2));
        state = run(
            state,
            &prog,
            PortfolioCommand::WithdrawActivity {
                activity_id: aid(3),
            },
        );
        assert_eq!(
            refuse(&state, &prog, PortfolioCommand::Apply).code(),
            "not_enough_approved_reflections"
        );
    }

    #[test]
    fn an_application_lists_every_approved_activity_and_freezes_the_portfolio() {
        let prog = program();
        let event = only_event(&ready_to_apply(&prog), &prog, PortfolioCommand::Apply);
        assert_eq!(
            event,
            ApplicationSubmitted {
                application: 1,
                activity_ids: vec![aid(1), aid(2), aid(3)]
            }
            .into()
        );
        assert_eq!(
            portfolio(&applied(&prog)).phase,
            Phase::Applied { application: 1 }
        );
    }

    #[test]
    fn approval_creates_the_certificate_with_everything_the_registrar_needs() {
        let prog = program();
        let decided_at = stockholm(2026, 3, 3, 0, 30, 0);
        let events = decide(
            &applied(&prog),
            &prog,
            approve_app(coordinator()),
            decided_at,
        )
        .unwrap();
        let [PortfolioEvent::CertificateApproved(c)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(c.certificate_id, certificate_id());
        assert_eq!(c.program_id, program_id());
        assert_eq!(c.program_code.as_str(), "dentistry");
        assert_eq!(c.program_name, "Dental Program");
        assert_eq!(c.decided_by, coordinator());
        assert_eq!(
            c.decided_on,
            date(2026, 3, 3),
            "the Stockholm date, not the UTC one"
        );
        assert_eq!(c.application, 1);
        assert_eq!(c.final_format, FinalFormat::Written);
        let names: Vec<_> = c.activities.iter().map(|a| a.item_name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Physical mobility (independently or as exchange studies)",
                "Student representative",
                "Student ambassador"
            ]
        );
        assert!(
            c.activities
                .iter()
                .all(|a| a.started_on == date(2026, 1, 10) && a.ended_on == date(2026, 1, 12))
        );
        let holder = c.personal.as_ref().unwrap();
        assert_eq!(holder.identity_number.as_str(), "198112189876");
        assert_eq!(holder.name.full_name(), "Anna Berg");
        let state = certified(&prog);
        assert_eq!(portfolio(&state).phase, Phase::Certified);
        assert_eq!(
            portfolio(&state)
                .certificate
                .as_ref()
                .unwrap()
                .certificate_id,
            certificate_id()
        );
    }

    #[test]
    fn approval_is_decided_by_a_coordinator_on_a_pending_application() {
        let prog = program();
        assert_eq!(
            refuse(&ready_to_apply(&prog), &prog, approve_app(coordinator())),
            DomainError::NoApplicationPending
        );
        assert_eq!(
            refuse(&applied(&prog), &prog, approve_app(stranger())),
            DomainError::NotACoordinator
        );
        assert_eq!(
            refuse(&certified(&prog), &prog, approve_app(coordinator())),
            DomainError::CertificateAlreadyIssued
        );
        assert_eq!(
            refuse(&ready_to_apply(&prog), &prog, reject_app()),
            DomainError::NoApplicationPending
        );
    }

    #[test]
    fn approval_uses_the_rules_in_force_at_the_decision() {
        let prog = program();
        let state = applied(&prog);
        let rules = crate::domain::rules::ProgramRules {
            required_activities: 4,
            ..Default::default()
        };
        let raised = program_with(prog, ProgramCommand::ChangeRules { rules });
        assert_eq!(
            refuse(&state, &raised, approve_app(coordinator())).code(),
            "not_enough_approved_reflections"
        );
        assert_eq!(
            refuse(&state, &raised, approve_app(coordinator())).to_string(),
            "the certificate needs 4 approved activity reflections on different activities; there are 3"
        );
    }

    #[test]
    fn a_rejected_application_can_be_made_again() {
        let prog = program();
        let state = run(applied(&prog), &prog, reject_app());
        let p = portfolio(&state);
        assert_eq!(p.phase, Phase::Collecting);
        assert_eq!(p.rejections.len(), 1);
        assert_eq!(
            p.rejections[0].personal.as_ref().unwrap().reason.as_str(),
            "Reflection 2 does not describe the activity."
        );
        // The student can change the portfolio (here: add a fourth activity) and apply again.
        let state = run(state, &prog, log_cmd(4, 8));
        let event = only_event(&state, &prog, PortfolioCommand::Apply);
        let PortfolioEvent::ApplicationSubmitted(e) = event else {
            panic!()
        };
        assert_eq!(e.application, 2);
        let state = run(state, &prog, PortfolioCommand::Apply);
        let PortfolioEvent::CertificateApproved(c) =
            only_event(&state, &prog, approve_app(coordinator()))
        else {
            panic!()
        };
        assert_eq!(c.application, 2);
    }

    #[test]
    fn a_certificate_can_be_revoked_once() {
        let prog = program();
        assert_eq!(
            refuse(&applied(&prog), &prog, revoke()),
            DomainError::NoCertificate
        );
        let event = only_event(&certified(&prog), &prog, revoke());
        let PortfolioEvent::CertificateRevoked(r) = event else {
            panic!()
        };
        assert_eq!(
            (r.certificate_id, r.revoked_on),
            (certificate_id(), today())
        );
        assert!(r.personal.is_some());
        let revoked = run(certified(&prog), &prog, revoke());
        assert_eq!(portfolio(&revoked).phase, Phase::Revoked);
        assert!(portfolio(&revoked).revocation.is_some());
        assert_eq!(
            refuse(&revoked, &prog, revoke()),
            DomainError::PortfolioClosed
        );
        let by_stranger = PortfolioCommand::RevokeCertificate {
            by: stranger(),
            reason: text("x"),
        };
        assert_eq!(
            refuse(&certified(&prog), &prog, by_stranger),
            DomainError::NotACoordinator
        );
    }

    #[test]
    fn a_certificate_can_be_approved_after_the_students_data_was_erased() {
        let prog = program();
        let PortfolioState::Opened(mut p) = applied(&prog) else {
            panic!()
        };
        p.student = None;
        let state = PortfolioState::Opened(p);
        let PortfolioEvent::CertificateApproved(c) =
            only_event(&state, &prog, approve_app(coordinator()))
        else {
            panic!()
        };
        assert_eq!(c.personal, None);
        assert_eq!(c.activities.len(), 3);
    }
}
