//! The command skeleton every write route runs, written once: the route files only say who may run
//! the command and how the request becomes it.
//!
//! A command request is one extractor, [`CommandRequest`]: the caller (401), the command metadata
//! (400 for a bad `Idempotency-Key` or `If-Match`), the path (400) and the body, in that order,
//! which is the order the handlers' separate extractors had. The body is kept as it was read, so
//! that a bad body is refused only after the access checks (see `access`).
//!
//! - [`CommandRequest::on_portfolio`]: a command on an existing portfolio: role (403), visibility
//!   (404), then the request becomes the command (400/422), the command context binds the
//!   idempotency key to the body (422), the handler decides if `If-Match` still holds (412), and
//!   the answer is the portfolio with its ETag.
//! - [`CommandRequest::on_program`]: a command on a program, for a caller the route has already
//!   authorised: the request becomes the command, then the context, the decision and the answer.
//!
//! - [`CommandRequest::coordinator_decision`]: a portfolio command that is a coordinator's decision
//!   with a reason.
//!
//! Creating commands (registering a program, opening a portfolio) mint their ids from the command
//! context and so run the steps themselves, with [`run_program`] and [`portfolio_answer`].

use super::access::{self, PortfolioActor};
use super::auth::Caller;
use super::bodies::Reasoned;
use super::command::{CommandMeta, Versioned};
use super::extract::{ApiJson, ApiPath};
use super::paths::{OnPortfolio, OnProgram};
use super::problem::Problem;
use super::state::AppState;
use super::view::{PortfolioView, ProgramView};
use crate::app::CommandContext;
use crate::app::Handled;
use crate::domain::values::NonEmptyText;
use crate::domain::{
    DomainError, PortfolioCommand, PortfolioEvent, PortfolioState, ProgramCommand, ProgramId,
    ProgramRules, ProgramState, StaffId,
};
use axum::extract::{FromRequest, FromRequestParts, Request};
use serde::de::DeserializeOwned;

/// What a command route answers: the resource with its version as the ETag, or the problem.
pub type Answered<T> = Result<Versioned<T>, Problem>;

/// A command request, path `P` and body `B` (a JSON DTO, or [`NoBody`]); see the module docs.
#[derive(Debug)]
pub struct CommandRequest<P, B = NoBody> {
    pub caller: Caller,
    pub state: AppState,
    pub meta: CommandMeta,
    pub path: P,
    /// The body as it was read (400/415/422 kept for after the access checks).
    pub body: Result<B, Problem>,
}

impl<P, B> FromRequest<AppState> for CommandRequest<P, B>
where
    P: DeserializeOwned + Send,
    B: CommandBody,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Problem> {
        let (mut parts, body) = request.into_parts();
        let caller = Caller::from_request_parts(&mut parts, state).await?;
        let meta = CommandMeta::from_request_parts(&mut parts, state).await?;
        let ApiPath(path) = ApiPath::<P>::from_request_parts(&mut parts, state).await?;
        let body = B::read(Request::from_parts(parts, body), state).await;
        Ok(Self {
            caller,
            state: state.clone(),
            meta,
            path,
            body,
        })
    }
}

/// How a command's body is read: JSON into its DTO, or not at all.
pub trait CommandBody: Sized + Send {
    fn read(
        request: Request,
        state: &AppState,
    ) -> impl Future<Output = Result<Self, Problem>> + Send;
}

/// The body of a command that takes none: nothing is read, so an `Idempotency-Key` binds no body.
#[derive(Debug)]
pub struct NoBody;

impl CommandBody for NoBody {
    async fn read(_: Request, _: &AppState) -> Result<Self, Problem> {
        Ok(NoBody)
    }
}

impl<T: DeserializeOwned + Send> CommandBody for T {
    async fn read(request: Request, state: &AppState) -> Result<Self, Problem> {
        let ApiJson(body) = ApiJson::<T>::from_request(request, state).await?;
        Ok(body)
    }
}

/// What a portfolio command is built from, once the caller may run it.
#[derive(Debug)]
pub struct Input<'a, P, B> {
    pub body: Result<B, Problem>,
    pub path: &'a P,
    /// Ids a command mints are derived from its id (`command::minted_id`).
    pub ctx: &'a CommandContext,
    pub caller: &'a Caller,
}

impl<P: OnPortfolio, B> CommandRequest<P, B> {
    /// Runs the command `build` makes on the path's portfolio, for `actor` (see the module docs).
    pub async fn on_portfolio(
        self,
        actor: PortfolioActor,
        build: impl FnOnce(Input<'_, P, B>) -> Result<PortfolioCommand, Problem>,
    ) -> Answered<PortfolioView> {
        let Self {
            caller,
            state,
            meta,
            path,
            body,
        } = self;
        access::role_may(&caller, actor)?;
        let id = path.portfolio_id();
        // Who may run it: the command's append finds out if the fold is behind the log.
        let (current, _) = state.commands.known_portfolio(id).await?;
        let portfolio = current.opened().ok_or_else(access::portfolio_not_found)?;
        access::may_see(&caller, portfolio)?;
        let ctx = meta.context(&state.pool, &caller).await?;
        let command = build(Input {
            body,
            path: &path,
            ctx: &ctx,
            caller: &caller,
        })?;
        // `If-Match` is checked by the handler against the state it decides on (412 when stale).
        let handled = state
            .commands
            .portfolio_if(id, command, &ctx, meta.if_match)
            .await?;
        portfolio_answer(&state, &handled, &ctx).await
    }
}

impl<P: OnPortfolio, B: Reasoned> CommandRequest<P, B> {
    /// A coordinator's decision with a reason (rejecting an application, revoking a certificate,
    /// accepting or declining a proposal), told apart only by the command it becomes.
    pub async fn coordinator_decision(
        self,
        command: impl FnOnce(StaffId, NonEmptyText) -> PortfolioCommand,
    ) -> Answered<PortfolioView> {
        self.on_portfolio(PortfolioActor::Coordinator, |i| {
            let body = i.body?;
            let by = staff(i.caller)?;
            Ok(command(by, body.reason()?))
        })
        .await
    }
}

impl<P: OnProgram, B> CommandRequest<P, B> {
    /// Runs the command `build` makes on the path's program, for a caller the route has authorised.
    pub async fn on_program(
        self,
        build: impl FnOnce(&P, Result<B, Problem>) -> Result<ProgramCommand, Problem>,
    ) -> Answered<ProgramView> {
        let command = build(&self.path, self.body)?;
        let ctx = self.meta.context(&self.state.pool, &self.caller).await?;
        let id = self.path.program_id();
        run_program(&self.state, &self.meta, &ctx, id, command).await
    }
}

/// Runs a program command for a caller already authorised, decided only if the program is still at
/// the `If-Match` version (412, unless it is a retry); answers with the program.
pub async fn run_program(
    state: &AppState,
    meta: &CommandMeta,
    ctx: &CommandContext,
    id: ProgramId,
    command: ProgramCommand,
) -> Answered<ProgramView> {
    let handled = state
        .commands
        .program_if(id, command, ctx, meta.if_match)
        .await?;
    let program = handled
        .state
        .registered()
        .ok_or_else(|| Problem::from(DomainError::ProgramNotRegistered))?;
    Ok(Versioned::ok(
        handled.version,
        ProgramView::new(program, handled.version),
    ))
}

/// A portfolio command's answer: the portfolio as the command left it, on the day of the command.
pub async fn portfolio_answer(
    state: &AppState,
    handled: &Handled<PortfolioState, PortfolioEvent>,
    ctx: &CommandContext,
) -> Answered<PortfolioView> {
    let portfolio = handled
        .state
        .opened()
        .ok_or_else(access::portfolio_not_found)?;
    let rules = rules_of(state, portfolio.program_id).await?;
    let today = crate::domain::stockholm_date(ctx.now);
    let view = PortfolioView::new(portfolio, &rules, handled.version, today);
    Ok(Versioned::ok(handled.version, view))
}

/// The rules in force in a portfolio's program (the defaults if the program is somehow gone), as of
/// at most [`crate::app::PROGRAM_TRUST`] ago: for showing a portfolio, never for deciding.
pub async fn rules_of(state: &AppState, program: ProgramId) -> Result<ProgramRules, Problem> {
    let (program, _) = state.commands.recent_program(program).await?;
    Ok(match &*program {
        ProgramState::Registered(p) => p.rules.clone(),
        ProgramState::Unregistered => Default::default(),
    })
}

/// The staff id of a coordinator caller, which is the `by` of their decisions (never the body's).
pub fn staff(caller: &Caller) -> Result<StaffId, Problem> {
    caller
        .staff_id()
        .ok_or_else(|| Problem::forbidden("this needs a staff member's token"))
}
