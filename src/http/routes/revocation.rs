//! Revoking an issued certificate (rare; it must also reach the registrar and Ladok as a
//! correction, which the export worker does from the event).

use crate::domain::PortfolioCommand;
use crate::http::bodies::Reason;
use crate::http::docs::{CommandHeaders, PortfolioAnswer};
use crate::http::paths::PortfolioPath;
use crate::http::pipeline::{Answered, CommandRequest};
use crate::http::view::PortfolioView;

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
pub async fn revoke(req: CommandRequest<PortfolioPath, Reason>) -> Answered<PortfolioView> {
    req.coordinator_decision(|by, reason| PortfolioCommand::RevokeCertificate { by, reason })
        .await
}
