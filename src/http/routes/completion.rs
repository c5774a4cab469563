//! The expected completion date, from which the final reflection's deadline is computed.
//!
//! The student gives it at enrolment; a coordinator of the program confirms it or sets another; the
//! student, whom the deadline binds, may only propose another date with a reason, which a
//! coordinator accepts or declines with a reason (see `domain/portfolio/completion.rs`). A proposal
//! changes nothing until it is accepted.

use crate::domain::portfolio::MAX_STAFF_TEXT_LEN;
use crate::domain::values::NonEmptyText;
use crate::domain::{DomainError, PortfolioCommand};
use crate::http::access::PortfolioActor;
use crate::http::auth::{Caller, Role};
use crate::http::bodies::Reasoned;
use crate::http::docs::{CommandHeaders, PortfolioAnswer};
use crate::http::paths::PortfolioPath;
use crate::http::pipeline::{Answered, CommandRequest, staff};
use crate::http::problem::Problem;
use crate::http::view::PortfolioView;
use axum::http::StatusCode;
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::ToSchema;

/// A new date and why: the body of setting it (coordinator) and of proposing it (student).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"expected_completion": "2027-06-10", "reason": "The clinical placement moved to the autumn term."}))]
#[serde(deny_unknown_fields)]
pub struct CompletionDate {
    /// The last day of studies (Europe/Stockholm); today or later.
    pub expected_completion: NaiveDate,
    pub reason: String,
}

/// A coordinator's reason for accepting or declining a proposal.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"reason": "Confirmed with the program office."}))]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub reason: String,
}

impl Reasoned for Decision {
    fn reason(self) -> Result<NonEmptyText, Problem> {
        reason(&self.reason)
    }
}

fn reason(text: &str) -> Result<NonEmptyText, Problem> {
    Ok(NonEmptyText::parse(text, "reason", MAX_STAFF_TEXT_LEN).map_err(DomainError::from)?)
}

/// A student who tries to set the date is told what they can do instead (a generic 403 would leave
/// them guessing). Checked before anything is loaded, like every role check.
fn not_for_students(caller: &Caller) -> Result<(), Problem> {
    if caller.role == Role::Student {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "expected_completion_set_by_coordinator",
            "the expected completion date is set by your program's coordinator; propose a new date with a reason at POST /portfolios/{portfolio_id}/expected-completion/proposal instead",
        ));
    }
    Ok(())
}

/// `POST /portfolios/{portfolio_id}/expected-completion` (coordinator): `{"expected_completion":
/// "2027-06-15", "reason": "…"}`. Moves the final reflection's deadline with it. A student gets 403
/// `expected_completion_set_by_coordinator` and proposes instead.
#[utoipa::path(
    post,
    path = "/portfolios/{portfolio_id}/expected-completion",
    tag = "portfolios",
    params(PortfolioPath, CommandHeaders,),
    request_body = CompletionDate,
    responses(PortfolioAnswer)
)]
pub async fn set(req: CommandRequest<PortfolioPath, CompletionDate>) -> Answered<PortfolioView> {
    not_for_students(&req.caller)?;
    req.on_portfolio(PortfolioActor::Coordinator, |i| {
        let body = i.body?;
        Ok(PortfolioCommand::SetExpectedCompletion {
            expected_completion: body.expected_completion,
            reason: reason(&body.reason)?,
            by: staff(i.caller)?,
        })
    })
    .await
}

/// `POST /portfolios/{portfolio_id}/expected-completion/confirm` (coordinator), no body or `{}`:
/// confirms the date the student gave at enrolment, so that the final reflection can be submitted
/// against it. 422 `no_change` when it is already confirmed (or was set by a coordinator),
/// `expected_completion_in_past` when it has passed (set the right date instead).
#[utoipa::path(
    post,
    path = "/portfolios/{portfolio_id}/expected-completion/confirm",
    tag = "portfolios",
    params(PortfolioPath, CommandHeaders,),
    responses(PortfolioAnswer)
)]
pub async fn confirm(req: CommandRequest<PortfolioPath>) -> Answered<PortfolioView> {
    not_for_students(&req.caller)?;
    req.on_portfolio(PortfolioActor::Coordinator, |i| {
        let by = staff(i.caller)?;
        Ok(PortfolioCommand::ConfirmExpectedCompletion { by })
    })
    .await
}

/// `POST /portfolios/{portfolio_id}/expected-completion/proposal` (student): `{"expected_completion":
/// "2027-06-15", "reason": "…"}`. Changes nothing until a coordinator accepts; a newer proposal
/// replaces a pending one.
#[utoipa::path(
    post,
    path = "/portfolios/{portfolio_id}/expected-completion/proposal",
    tag = "portfolios",
    params(PortfolioPath, CommandHeaders,),
    request_body = CompletionDate,
    responses(PortfolioAnswer)
)]
pub async fn propose(
    req: CommandRequest<PortfolioPath, CompletionDate>,
) -> Answered<PortfolioView> {
    req.on_portfolio(PortfolioActor::Owner, |i| {
        let body = i.body?;
        Ok(PortfolioCommand::ProposeExpectedCompletion {
            expected_completion: body.expected_completion,
            reason: reason(&body.reason)?,
        })
    })
    .await
}

/// `POST /portfolios/{portfolio_id}/expected-completion/proposal/accept` (coordinator):
/// `{"reason": "…"}`. The proposed date takes effect; 422 `no_pending_proposal` when none waits.
/// Send `If-Match` to be sure the proposal accepted is the one read.
#[utoipa::path(
    post,
    path = "/portfolios/{portfolio_id}/expected-completion/proposal/accept",
    tag = "portfolios",
    params(PortfolioPath, CommandHeaders,),
    request_body = Decision,
    responses(PortfolioAnswer)
)]
pub async fn accept(req: CommandRequest<PortfolioPath, Decision>) -> Answered<PortfolioView> {
    req.coordinator_decision(|by, reason| PortfolioCommand::AcceptExpectedCompletion { by, reason })
        .await
}

/// `POST /portfolios/{portfolio_id}/expected-completion/proposal/decline` (coordinator):
/// `{"reason": "…"}`. The date stays; 422 `no_pending_proposal` when none waits.
#[utoipa::path(
    post,
    path = "/portfolios/{portfolio_id}/expected-completion/proposal/decline",
    tag = "portfolios",
    params(PortfolioPath, CommandHeaders,),
    request_body = Decision,
    responses(PortfolioAnswer)
)]
pub async fn decline(req: CommandRequest<PortfolioPath, Decision>) -> Answered<PortfolioView> {
    req.coordinator_decision(|by, reason| PortfolioCommand::DeclineExpectedCompletion {
        by,
        reason,
    })
    .await
}
