//! Activities: the student logs one from their program's catalog, or withdraws one whose reflection
//! is not approved yet.

use crate::domain::portfolio::MAX_DESCRIPTION_LEN;
use crate::domain::values::{MediaRef, NonEmptyText};
use crate::domain::{ActivityId, CatalogItemId, DomainError, PortfolioCommand};
use crate::http::access::PortfolioActor;
use crate::http::command::minted_id;
use crate::http::docs::{CommandHeaders, PortfolioAnswer};
use crate::http::media_ref;
use crate::http::paths::{ActivityPath, PortfolioPath};
use crate::http::pipeline::{Answered, CommandRequest};
use crate::http::view::PortfolioView;
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"item": "language-cafe", "started_on": "2026-09-01", "ended_on": "2026-11-30", "description": "Weekly language café with exchange students, as a participant and later as a host.", "evidence_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}))]
#[serde(deny_unknown_fields)]
pub struct LogActivity {
    /// The catalog item's key, e.g. `language-cafe`.
    pub item: String,
    pub started_on: NaiveDate,
    pub ended_on: NaiveDate,
    pub description: String,
    /// An uploaded certificate of attendance or similar, as a reference typed by the client.
    #[serde(default)]
    pub evidence: Option<MediaRef>,
    /// The SHA-256 of an upload of this portfolio (`POST …/media`): the server fills in the evidence's
    /// type and size. Excludes `evidence`.
    #[serde(default)]
    pub evidence_sha256: Option<String>,
}

/// The request and the id minted for the activity.
impl TryFrom<(LogActivity, ActivityId)> for PortfolioCommand {
    type Error = DomainError;
    fn try_from((body, activity_id): (LogActivity, ActivityId)) -> Result<Self, DomainError> {
        Ok(PortfolioCommand::LogActivity {
            activity_id,
            item: CatalogItemId::parse(&body.item)?,
            started_on: body.started_on,
            ended_on: body.ended_on,
            description: NonEmptyText::parse(
                &body.description,
                "description",
                MAX_DESCRIPTION_LEN,
            )?,
            evidence: body.evidence,
        })
    }
}

/// `POST /portfolios/{portfolio_id}/activities` (student). The new activity's id is in the answer
/// (the last of `activities`).
#[utoipa::path(
    post,
    path = "/portfolios/{portfolio_id}/activities",
    tag = "portfolios",
    params(
        PortfolioPath,
        CommandHeaders,
    ),
    request_body = LogActivity,
    responses(PortfolioAnswer)
)]
pub async fn log(req: CommandRequest<PortfolioPath, LogActivity>) -> Answered<PortfolioView> {
    let sha256 = req
        .body
        .as_ref()
        .ok()
        .and_then(|b| b.evidence_sha256.as_deref());
    let upload =
        media_ref::resolve_optional(&req.state, req.path.portfolio_id, sha256, "evidence_sha256")
            .await;
    req.on_portfolio(PortfolioActor::Owner, |i| {
        let mut body = i.body?;
        body.evidence = media_ref::evidence(upload?, body.evidence.take())?;
        let activity_id = ActivityId::new(minted_id(i.ctx, "activity"));
        Ok(PortfolioCommand::try_from((body, activity_id))?)
    })
    .await
}

/// `POST /portfolios/{portfolio_id}/activities/{activity_id}/withdraw` (student), no body.
#[utoipa::path(
    post,
    path = "/portfolios/{portfolio_id}/activities/{activity_id}/withdraw",
    tag = "portfolios",
    params(ActivityPath, CommandHeaders,),
    responses(PortfolioAnswer)
)]
pub async fn withdraw(req: CommandRequest<ActivityPath>) -> Answered<PortfolioView> {
    req.on_portfolio(PortfolioActor::Owner, |i| {
        let activity_id = i.path.activity_id;
        Ok(PortfolioCommand::WithdrawActivity { activity_id })
    })
    .await
}
