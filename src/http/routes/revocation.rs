//! Revoking an issued certificate (rare; it must also reach the registrar and Ladok as a
//! correction, which the export worker does from the event).

use super::access::PortfolioActor;
use super::application::Reason;
use super::docs::{CommandHeaders, PortfolioAnswer};
use super::paths::PortfolioPath;
use super::view::PortfolioView;
use super::{portfolio_command, staff};
use crate::domain::PortfolioCommand;
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::command::{CommandMeta, Versioned};
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::problem::Problem;
use axum::extract::State;

/// `POST /portfolios/{portfolio_id}/revocation` (coordinator): `{"reason": "…"}`.
#[utoipa::path(
    post,
    path = "/portfolios/{portfolio_id}/revocation",
    tag = "portfolios",
    params(
        PortfolioPath,
        CommandHeaders,
    ),
    request_body = Reason,
    responses(PortfolioAnswer)
)]
pub async fn revoke(
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
            Ok(PortfolioCommand::RevokeCertificate {
                by: staff(&caller)?,
                reason: body.parse()?,
            })
        },
    )
    .await
}
