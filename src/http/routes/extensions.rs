//! Deadline extensions for the final reflection, granted by a coordinator with a reason.

use super::access::PortfolioActor;
use super::docs::{CommandHeaders, PortfolioAnswer};
use super::paths::PortfolioPath;
use super::view::PortfolioView;
use super::{portfolio_command, staff};
use crate::domain::portfolio::MAX_STAFF_TEXT_LEN;
use crate::domain::values::NonEmptyText;
use crate::domain::{DomainError, PortfolioCommand};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::command::{CommandMeta, Versioned};
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::problem::Problem;
use axum::extract::State;
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"until": "2027-05-31", "reason": "Parental leave during the spring term."}))]
#[serde(deny_unknown_fields)]
pub struct GrantExtension {
    /// The new last day (Europe/Stockholm, inclusive) for the final reflection.
    pub until: NaiveDate,
    pub reason: String,
}

/// `POST /portfolios/{portfolio_id}/extensions` (coordinator): `{"until": "2026-06-01", "reason": "…"}`.
#[utoipa::path(
    post,
    path = "/portfolios/{portfolio_id}/extensions",
    tag = "portfolios",
    params(
        PortfolioPath,
        CommandHeaders,
    ),
    request_body = GrantExtension,
    responses(PortfolioAnswer)
)]
pub async fn grant(
    caller: Caller,
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(path): ApiPath<PortfolioPath>,
    body: Result<ApiJson<GrantExtension>, Problem>,
) -> Result<Versioned<PortfolioView>, Problem> {
    portfolio_command(
        &state,
        &caller,
        &meta,
        path.portfolio_id,
        PortfolioActor::Coordinator,
        |_| {
            let ApiJson(body) = body?;
            Ok(PortfolioCommand::GrantExtension {
                until: body.until,
                reason: NonEmptyText::parse(&body.reason, "reason", MAX_STAFF_TEXT_LEN)
                    .map_err(DomainError::from)?,
                by: staff(&caller)?,
            })
        },
    )
    .await
}
