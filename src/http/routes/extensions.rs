//! Deadline extensions for the final reflection, granted by a coordinator with a reason.

use crate::domain::portfolio::MAX_STAFF_TEXT_LEN;
use crate::domain::values::NonEmptyText;
use crate::domain::{DomainError, PortfolioCommand};
use crate::http::access::PortfolioActor;
use crate::http::docs::{CommandHeaders, PortfolioAnswer};
use crate::http::paths::PortfolioPath;
use crate::http::pipeline::{Answered, CommandRequest, staff};
use crate::http::view::PortfolioView;
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
pub async fn grant(req: CommandRequest<PortfolioPath, GrantExtension>) -> Answered<PortfolioView> {
    req.on_portfolio(PortfolioActor::Coordinator, |i| {
        let body = i.body?;
        Ok(PortfolioCommand::GrantExtension {
            until: body.until,
            reason: NonEmptyText::parse(&body.reason, "reason", MAX_STAFF_TEXT_LEN)
                .map_err(DomainError::from)?,
            by: staff(i.caller)?,
        })
    })
    .await
}
