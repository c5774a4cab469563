//! The application for the certificate: the student applies; a coordinator approves (the moment the
//! certificate exists) or rejects with a reason.

use super::access::PortfolioActor;
use super::docs::{CommandHeaders, PortfolioAnswer};
use super::paths::PortfolioPath;
use super::view::PortfolioView;
use super::{portfolio_command, staff};
use crate::domain::portfolio::MAX_STAFF_TEXT_LEN;
use crate::domain::values::NonEmptyText;
use crate::domain::{CertificateId, DomainError, PortfolioCommand};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::command::{CommandMeta, Versioned, minted_id};
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::problem::Problem;
use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

/// A reason from staff: `{"reason": "…"}` (rejections, revocations).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"reason": "The final reflection discusses an activity that is not in the portfolio."}))]
#[serde(deny_unknown_fields)]
pub struct Reason {
    pub reason: String,
}

impl Reason {
    pub fn parse(self) -> Result<NonEmptyText, DomainError> {
        Ok(NonEmptyText::parse(
            &self.reason,
            "reason",
            MAX_STAFF_TEXT_LEN,
        )?)
    }
}

/// `POST /portfolios/{portfolio_id}/application` (student), no body.
#[utoipa::path(
    post,
    path = "/portfolios/{portfolio_id}/application",
    tag = "portfolios",
    params(PortfolioPath, CommandHeaders,),
    responses(PortfolioAnswer)
)]
pub async fn apply(
    caller: Caller,
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(path): ApiPath<PortfolioPath>,
) -> Result<Versioned<PortfolioView>, Problem> {
    portfolio_command(
        &state,
        &caller,
        &meta,
        path.portfolio_id,
        PortfolioActor::Owner,
        |_| Ok(PortfolioCommand::Apply),
    )
    .await
}

/// `POST /portfolios/{portfolio_id}/application/approve` (coordinator), no body. The certificate's
/// id is in the answer (`certificate.certificate_id`).
#[utoipa::path(
    post,
    path = "/portfolios/{portfolio_id}/application/approve",
    tag = "portfolios",
    params(PortfolioPath, CommandHeaders,),
    responses(PortfolioAnswer)
)]
pub async fn approve(
    caller: Caller,
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(path): ApiPath<PortfolioPath>,
) -> Result<Versioned<PortfolioView>, Problem> {
    portfolio_command(
        &state,
        &caller,
        &meta,
        path.portfolio_id,
        PortfolioActor::Coordinator,
        |ctx| {
            Ok(PortfolioCommand::ApproveApplication {
                certificate_id: CertificateId::new(minted_id(ctx, "certificate")),
                by: staff(&caller)?,
            })
        },
    )
    .await
}

/// `POST /portfolios/{portfolio_id}/application/reject` (coordinator): `{"reason": "…"}`.
#[utoipa::path(
    post,
    path = "/portfolios/{portfolio_id}/application/reject",
    tag = "portfolios",
    params(
        PortfolioPath,
        CommandHeaders,
    ),
    request_body = Reason,
    responses(PortfolioAnswer)
)]
pub async fn reject(
    caller: Caller,
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(path): ApiPath<PortfolioPath>,
    body: Result<ApiJson<Reason>, Problem>,
) -> Result<Versioned<PortfolioView>, Problem> {
    portfolio_command(
        &state,
        &caller,
        &meta,
        path.portfolio_id,
        PortfolioActor::Coordinator,
        |_| {
            let ApiJson(body) = body?;
            Ok(PortfolioCommand::RejectApplication {
                by: staff(&caller)?,
                reason: body.parse()?,
            })
        },
    )
    .await
}
