//! Checking a typed identity number against Ladok, after enrolment.
//!
//! When Ladok cannot be asked at enrolment, the portfolio opens with the number the student typed
//! (`docs/identity.md`). The export run asks Ladok later and records the answer once: the typed
//! number is confirmed, replaced by Ladok's (which wins: Ladok is the register), or left with the
//! reason it could not be checked. A number already checked, or erased, is not checked again.

use super::commands::LadokRecord;
use super::decide::Ctx;
use super::events::*;
use crate::domain::errors::DomainError;

pub(super) fn check(ctx: &Ctx<'_>, record: LadokRecord) -> Result<PortfolioEvent, DomainError> {
    let p = ctx.portfolio;
    if p.identity_check.is_some() {
        return Err(DomainError::NoChange {
            what: "identity check (Ladok has been asked already)",
        });
    }
    let Some(student) = p.student.as_ref() else {
        return Err(DomainError::NoChange {
            what: "identity check (the student's personal data was erased)",
        });
    };
    let (outcome, personal) = match record {
        LadokRecord::Student {
            identity_number: Some(number),
        } if number == student.identity_number => (IdentityCheck::Confirmed, None),
        LadokRecord::Student {
            identity_number: Some(number),
        } => (
            IdentityCheck::Corrected,
            Some(LadokIdentityNumber {
                identity_number: number,
            }),
        ),
        LadokRecord::Student {
            identity_number: None,
        } => (IdentityCheck::NoNumberInLadok, None),
        LadokRecord::NoSuchStudent => (IdentityCheck::NotInLadok, None),
        LadokRecord::NumberHeldByAnother => (IdentityCheck::NumberHeldByAnother, None),
        LadokRecord::Unusable => (IdentityCheck::Unusable, None),
    };
    Ok(IdentityCheckedInLadok { outcome, personal }.into())
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{PortfolioCommand, decide};
    use super::*;
    use crate::domain::values::IdentityNumber;

    fn check_cmd(record: LadokRecord) -> PortfolioCommand {
        PortfolioCommand::CheckIdentityInLadok { record }
    }

    fn ladok_number(n: &str) -> LadokRecord {
        LadokRecord::Student {
            identity_number: Some(IdentityNumber::parse(n, today()).unwrap()),
        }
    }

    #[test]
    fn ladok_confirms_or_corrects_the_typed_number_once() {
        let prog = program();
        let typed = opened(&prog);
        let typed_number = portfolio(&typed)
            .student
            .as_ref()
            .unwrap()
            .identity_number
            .clone();
        assert_eq!(portfolio(&typed).identity_check, None);

        let same = ladok_number(typed_number.as_str());
        let events = decide(&typed, &prog, check_cmd(same), now()).unwrap();
        assert!(matches!(
            events.as_slice(),
            [PortfolioEvent::IdentityCheckedInLadok(
                IdentityCheckedInLadok {
                    outcome: IdentityCheck::Confirmed,
                    personal: None
                }
            )]
        ));

        let other = "19900101-0017";
        let corrected = run(typed.clone(), &prog, check_cmd(ladok_number(other)));
        let p = portfolio(&corrected);
        assert_eq!(p.identity_check, Some(IdentityCheck::Corrected));
        assert_eq!(
            p.student.as_ref().unwrap().identity_number,
            IdentityNumber::parse(other, today()).unwrap()
        );
        // Asked once: the next run leaves it alone.
        assert!(matches!(
            refuse(&corrected, &prog, check_cmd(ladok_number(other))),
            DomainError::NoChange { .. }
        ));
    }

    #[test]
    fn what_ladok_cannot_tell_is_recorded_with_its_reason() {
        let prog = program();
        for (record, outcome) in [
            (
                LadokRecord::Student {
                    identity_number: None,
                },
                IdentityCheck::NoNumberInLadok,
            ),
            (LadokRecord::NoSuchStudent, IdentityCheck::NotInLadok),
            (
                LadokRecord::NumberHeldByAnother,
                IdentityCheck::NumberHeldByAnother,
            ),
            (LadokRecord::Unusable, IdentityCheck::Unusable),
        ] {
            let state = run(opened(&prog), &prog, check_cmd(record));
            let p = portfolio(&state);
            assert_eq!(p.identity_check, Some(outcome));
            // The typed number stays.
            assert_eq!(
                p.student.as_ref().unwrap().identity_number,
                portfolio(&opened(&prog))
                    .student
                    .as_ref()
                    .unwrap()
                    .identity_number
            );
        }
    }

    #[test]
    fn a_number_given_by_ladok_at_enrolment_is_not_checked_again() {
        let prog = program();
        let mut open = open_command();
        if let PortfolioCommand::OpenPortfolio { identity_check, .. } = &mut open {
            *identity_check = Some(IdentityCheck::Confirmed);
        }
        let state = run(Default::default(), &prog, open);
        assert_eq!(
            portfolio(&state).identity_check,
            Some(IdentityCheck::Confirmed)
        );
        assert!(matches!(
            refuse(&state, &prog, check_cmd(LadokRecord::NoSuchStudent)),
            DomainError::NoChange { .. }
        ));
    }
}
