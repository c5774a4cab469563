//! Deadline extensions for the final reflection, granted by a coordinator with a reason.

use super::access::PortfolioActor;
use super::view::PortfolioView;
use super::{portfolio_command, staff};
use crate::domain::portfolio::MAX_STAFF_TEXT_LEN;
use crate::domain::values::NonEmptyText;
use crate::domain::{DomainError, PortfolioCommand, PortfolioId};
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
#[serde(deny_unknown_fields)]
pub struct GrantExtension {
    /// The new last day (Europe/Stockholm, inclusive) for the final reflection.
    pub until: NaiveDate,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
pub struct PortfolioPath {
    pub portfolio_id: PortfolioId,
}

/// `POST /portfolios/{portfolio_id}/extensions` (coordinator): `{"until": "2026-06-01", "reason": "…"}`.
#[utoipa::path(
    post,
    path = "/portfolios/{portfolio_id}/extensions",
    tag = "portfolios",
    security(("bearer" = [])),
    params(
        ("portfolio_id" = Uuid, Path, description = "The portfolio"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first outcome (1-200 characters)"),
        ("If-Match" = Option<String>, Header, description = "The ETag the client decided on; 412 when the resource has moved on"),
    ),
    request_body = GrantExtension,
    responses((status = 200, description = "The resource as it stands now", body = PortfolioView, headers(("ETag" = String, description = "The stream version, e.g. \"7\""))))
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
