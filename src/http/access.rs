//! Who may do what, checked on every object.
//!
//! The rule, in the order it is applied (and documented in the README):
//! 1. **401** when there is no valid token (the `Caller` extractor).
//! 2. **403** when the caller's role may never use the route (a student approving, an admin
//!    reading a portfolio), or when a coordinator acts on a *program* outside their `programs`
//!    claim. Checked before anything is loaded, so a 403 reveals nothing about any object.
//! 3. **404** when the object does not exist *or* the caller may not know it exists: another
//!    student's portfolio, or a portfolio of a program the coordinator does not coordinate. The two
//!    cases answer identically.
//! 4. Only then is the request body read (400/415/422) and the command decided (409/412/422).

use super::auth::{Caller, Role};
use super::problem::Problem;
use crate::domain::ProgramId;
use crate::domain::portfolio::Portfolio;

/// Who a portfolio route is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortfolioActor {
    /// The student who owns the portfolio.
    Owner,
    /// A coordinator of the portfolio's program.
    Coordinator,
    /// Either of them (reads).
    OwnerOrCoordinator,
}

/// Step 2 for portfolio routes.
pub fn role_may(caller: &Caller, actor: PortfolioActor) -> Result<(), Problem> {
    let allowed = matches!(
        (actor, caller.role),
        (PortfolioActor::Owner, Role::Student)
            | (PortfolioActor::Coordinator, Role::Coordinator)
            | (
                PortfolioActor::OwnerOrCoordinator,
                Role::Student | Role::Coordinator
            )
    );
    if allowed {
        Ok(())
    } else {
        Err(Problem::forbidden(match actor {
            PortfolioActor::Owner => "only the student who owns the portfolio can do this",
            PortfolioActor::Coordinator => {
                "only a coordinator of the portfolio's program can do this"
            }
            PortfolioActor::OwnerOrCoordinator => {
                "portfolios are visible to their student and their program's coordinators only"
            }
        }))
    }
}

/// Step 3: the portfolio is the caller's own, or of a program they coordinate.
pub fn may_see(caller: &Caller, portfolio: &Portfolio) -> Result<(), Problem> {
    let visible = match caller.role {
        Role::Student => caller.student_uid() == Some(portfolio.student_uid),
        Role::Coordinator => caller.coordinates(portfolio.program_id),
        Role::Registrar | Role::Admin => false,
    };
    if visible {
        Ok(())
    } else {
        Err(portfolio_not_found())
    }
}

pub fn portfolio_not_found() -> Problem {
    Problem::not_found("portfolio_not_found", "there is no such portfolio")
}

/// Step 2 for program administration (register, coordinators).
pub fn admin(caller: &Caller) -> Result<(), Problem> {
    if caller.role == Role::Admin {
        Ok(())
    } else {
        Err(Problem::forbidden("only an administrator can do this"))
    }
}

/// Step 2 for a program's catalog and rules: a coordinator with the program in their claims.
pub fn coordinator_of(caller: &Caller, program: ProgramId) -> Result<(), Problem> {
    if caller.coordinates(program) {
        Ok(())
    } else {
        Err(Problem::forbidden(
            "only a coordinator of this program can change its catalog and rules",
        ))
    }
}

/// Step 2 for opening a portfolio: students only.
pub fn student(caller: &Caller) -> Result<(), Problem> {
    if caller.role == Role::Student {
        Ok(())
    } else {
        Err(Problem::forbidden("only a student can open a portfolio"))
    }
}
