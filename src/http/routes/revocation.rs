//! Revoking an issued certificate (rare; it must also reach the registrar and Ladok as a
//! correction, which the export worker does from the event).

use super::access::PortfolioActor;
use super::application::Reason;
use super::view::PortfolioView;
use super::{portfolio_command, staff};
use crate::domain::{PortfolioCommand, PortfolioId};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::command::{CommandMeta, Versioned};
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::problem::Problem;
use axum::extract::State;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct PortfolioPath {
    pub portfolio_id: PortfolioId,
}

/// `POST /portfolios/{portfolio_id}/revocation` (coordinator): `{"reason": "…"}`.
#[utoipa::path(
    post,
    path = "/portfolios/{portfolio_id}/revocation",
    tag = "portfolios",
    security(("bearer" = [])),
    params(
        ("portfolio_id" = Uuid, Path, description = "The portfolio"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first outcome (1-200 characters)"),
        ("If-Match" = Option<String>, Header, description = "The ETag the client decided on; 412 when the resource has moved on"),
    ),
    request_body = Reason,
    responses((status = 200, description = "The resource as it stands now", body = PortfolioView, headers(("ETag" = String, description = "The stream version, e.g. \"7\""))))
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
