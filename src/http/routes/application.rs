//! The application for the certificate: the student applies; a coordinator approves (the moment the
//! certificate exists) or rejects with a reason.

use crate::domain::{CertificateId, PortfolioCommand};
use crate::http::access::PortfolioActor;
use crate::http::bodies::Reason;
use crate::http::command::minted_id;
use crate::http::docs::{CommandHeaders, PortfolioAnswer};
use crate::http::paths::PortfolioPath;
use crate::http::pipeline::{Answered, CommandRequest, staff};
use crate::http::view::PortfolioView;

/// `POST /portfolios/{portfolio_id}/application` (student), no body.
#[utoipa::path(
    post,
    path = "/portfolios/{portfolio_id}/application",
    tag = "portfolios",
    params(PortfolioPath, CommandHeaders,),
    responses(PortfolioAnswer)
)]
pub async fn apply(req: CommandRequest<PortfolioPath>) -> Answered<PortfolioView> {
    req.on_portfolio(PortfolioActor::Owner, |_| Ok(PortfolioCommand::Apply))
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
pub async fn approve(req: CommandRequest<PortfolioPath>) -> Answered<PortfolioView> {
    req.on_portfolio(PortfolioActor::Coordinator, |i| {
        Ok(PortfolioCommand::ApproveApplication {
            certificate_id: CertificateId::new(minted_id(i.ctx, "certificate")),
            by: staff(i.caller)?,
        })
    })
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
pub async fn reject(req: CommandRequest<PortfolioPath, Reason>) -> Answered<PortfolioView> {
    req.coordinator_decision(|by, reason| PortfolioCommand::RejectApplication { by, reason })
        .await
}
