//! The expected completion date, from which the final reflection's deadline is computed.
//!
//! The student gives it at enrolment; a coordinator of the program confirms it or sets another; the student, whom the deadline binds, may only propose
//! another date with a reason, which a coordinator accepts or declines with a reason (see
//! `domain/portfolio/completion.rs`). A proposal changes nothing until it is accepted.

use super::access::PortfolioActor;
use super::docs::{CommandHeaders, PortfolioAnswer};
use super::paths::PortfolioPath;
use super::view::PortfolioView;
use super::{portfolio_command, staff};
use crate::domain::portfolio::MAX_STAFF_TEXT_LEN;
use crate::domain::values::NonEmptyText;
use crate::domain::{DomainError, PortfolioCommand, StaffId};
use crate::http::AppState;
use crate::http::auth::{Caller, Role};
use crate::http::command::{CommandMeta, Versioned};
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::problem::Problem;
use axum::extract::State;
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
pub async fn set(
    caller: Caller,
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(path): ApiPath<PortfolioPath>,
    body: Result<ApiJson<CompletionDate>, Problem>,
) -> Result<Versioned<PortfolioView>, Problem> {
    not_for_students(&caller)?;
    portfolio_command(
        &state,
        &caller,
        &meta,
        path.portfolio_id,
        PortfolioActor::Coordinator,
        |_| {
            let ApiJson(body) = body?;
            Ok(PortfolioCommand::SetExpectedCompletion {
                expected_completion: body.expected_completion,
                reason: reason(&body.reason)?,
                by: staff(&caller)?,
            })
        },
    )
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
pub async fn confirm(
    caller: Caller,
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(path): ApiPath<PortfolioPath>,
) -> Result<Versioned<PortfolioView>, Problem> {
    not_for_students(&caller)?;
    portfolio_command(
        &state,
        &caller,
        &meta,
        path.portfolio_id,
        PortfolioActor::Coordinator,
        |_| {
            Ok(PortfolioCommand::ConfirmExpectedCompletion {
                by: staff(&caller)?,
            })
        },
    )
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
    caller: Caller,
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(path): ApiPath<PortfolioPath>,
    body: Result<ApiJson<CompletionDate>, Problem>,
) -> Result<Versioned<PortfolioView>, Problem> {
    portfolio_command(
        &state,
        &caller,
        &meta,
        path.portfolio_id,
        PortfolioActor::Owner,
        |_| {
            let ApiJson(body) = body?;
            Ok(PortfolioCommand::ProposeExpectedCompletion {
                expected_completion: body.expected_completion,
                reason: reason(&body.reason)?,
            })
        },
    )
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
pub async fn accept(
    caller: Caller,
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(path): ApiPath<PortfolioPath>,
    body: Result<ApiJson<Decision>, Problem>,
) -> Result<Versioned<PortfolioView>, Problem> {
    let command = |by, reason| PortfolioCommand::AcceptExpectedCompletion { by, reason };
    decide_proposal(caller, state, meta, path, body, command).await
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
pub async fn decline(
    caller: Caller,
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(path): ApiPath<PortfolioPath>,
    body: Result<ApiJson<Decision>, Problem>,
) -> Result<Versioned<PortfolioView>, Problem> {
    let command = |by, reason| PortfolioCommand::DeclineExpectedCompletion { by, reason };
    decide_proposal(caller, state, meta, path, body, command).await
}

/// Accepting and declining a proposal: a coordinator's decision with a reason, told apart only by
/// the command it becomes.
async fn decide_proposal(
    caller: Caller,
    state: AppState,
    meta: CommandMeta,
    path: PortfolioPath,
    body: Result<ApiJson<Decision>, Problem>,
    command: impl FnOnce(StaffId, NonEmptyText) -> PortfolioCommand,
) -> Result<Versioned<PortfolioView>, Problem> {
    portfolio_command(
        &state,
        &caller,
        &meta,
        path.portfolio_id,
        PortfolioActor::Coordinator,
        |_| {
            let ApiJson(body) = body?;
            Ok(command(staff(&caller)?, reason(&body.reason)?))
        },
    )
    .await
}
