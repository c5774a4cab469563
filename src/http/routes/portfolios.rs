//! Portfolios: a student opens their own and reads it; their program's coordinators read it. The
//! expected completion date is kept current in `completion.rs`.

use super::access::{self, PortfolioActor};
use super::docs::{CreateHeaders, PortfolioAnswer, PortfolioCreated};
use super::paths::{PortfolioPath, ProgramPath};
use super::rules_of;
use super::view::PortfolioView;
use crate::domain::values::{Email, IdentityNumber, PersonName};
use crate::domain::{DomainError, PortfolioCommand, PortfolioId, StudentUid};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::command::{CommandMeta, Versioned, minted_id};
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::problem::Problem;
use axum::extract::State;
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"student_uid": "0190a5f2-7c4e-7d1a-9b3e-2f1c0d9e8a77", "identity_number": "19121212-1212", "given_names": "Tolvan", "family_name": "Tolvansson", "email": "tolvan@student.example.se", "expected_completion": "2027-06-10"}))]
#[serde(deny_unknown_fields)]
pub struct OpenPortfolio {
    /// Must be the caller's own Ladok UID (the token's `sub`).
    #[schema(value_type = Uuid)]
    pub student_uid: StudentUid,
    /// Personnummer or samordningsnummer, with or without century and separator.
    pub identity_number: String,
    pub given_names: String,
    pub family_name: String,
    pub email: String,
    pub expected_completion: NaiveDate,
}

/// The request, the id minted for the portfolio, and today's date (identity numbers are checked
/// against it).
impl TryFrom<(OpenPortfolio, PortfolioId, NaiveDate)> for PortfolioCommand {
    type Error = DomainError;
    fn try_from(
        (body, portfolio_id, today): (OpenPortfolio, PortfolioId, NaiveDate),
    ) -> Result<Self, DomainError> {
        Ok(PortfolioCommand::OpenPortfolio {
            portfolio_id,
            student_uid: body.student_uid,
            identity_number: IdentityNumber::parse(&body.identity_number, today)?,
            name: PersonName::parse(&body.given_names, &body.family_name)?,
            email: Email::parse(&body.email)?,
            expected_completion: body.expected_completion,
        })
    }
}

/// `POST /programs/{program_id}/portfolios` (student): enrolment. The body's `student_uid` must be
/// the caller's own. Answers 201 with the new portfolio; its id is derived from the command id, so a
/// retry with the same `Idempotency-Key` answers with the same portfolio.
#[utoipa::path(
    post,
    path = "/programs/{program_id}/portfolios",
    tag = "portfolios",
    params(
        ProgramPath,
        CreateHeaders,
    ),
    request_body = OpenPortfolio,
    responses(PortfolioCreated)
)]
pub async fn open(
    caller: Caller,
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(path): ApiPath<ProgramPath>,
    body: Result<ApiJson<OpenPortfolio>, Problem>,
) -> Result<Versioned<PortfolioView>, Problem> {
    access::student(&caller)?;
    let ApiJson(body) = body?;
    if caller.student_uid() != Some(body.student_uid) {
        return Err(Problem::forbidden(
            "a student can only open their own portfolio: student_uid must be the Ladok UID of the signed-in student",
        )
        .with_field("student_uid"));
    }
    let ctx = meta.context(&state.pool, &caller).await?;
    let portfolio_id = PortfolioId::new(minted_id(&ctx, "portfolio"));
    let today = crate::domain::stockholm_date(ctx.now);
    let command = PortfolioCommand::try_from((body, portfolio_id, today))?;
    let handled = state
        .commands
        .open_portfolio(path.program_id, portfolio_id, command, &ctx)
        .await?;
    let portfolio = handled
        .state
        .opened()
        .ok_or_else(access::portfolio_not_found)?;
    let rules = rules_of(&state, portfolio.program_id).await?;
    Ok(Versioned::created(
        handled.version,
        PortfolioView::new(portfolio, &rules, handled.version, today),
    ))
}

/// `GET /portfolios/{portfolio_id}` (its student, its program's coordinators): the whole portfolio,
/// with `ETag: "<version>"`.
#[utoipa::path(
    get,
    path = "/portfolios/{portfolio_id}",
    tag = "portfolios",
    params(PortfolioPath,),
    responses(PortfolioAnswer)
)]
pub async fn show(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(path): ApiPath<PortfolioPath>,
) -> Result<Versioned<PortfolioView>, Problem> {
    access::role_may(&caller, PortfolioActor::OwnerOrCoordinator)?;
    let (current, version) = state.commands.load_portfolio(path.portfolio_id).await?;
    let portfolio = current.opened().ok_or_else(access::portfolio_not_found)?;
    access::may_see(&caller, portfolio)?;
    let rules = rules_of(&state, portfolio.program_id).await?;
    Ok(Versioned::ok(
        version,
        PortfolioView::new(
            portfolio,
            &rules,
            version,
            crate::domain::stockholm_date(chrono::Utc::now()),
        ),
    ))
}
