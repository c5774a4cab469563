//! Activities: the student logs one from their program's catalog, or withdraws one whose reflection
//! is not approved yet.

use super::access::PortfolioActor;
use super::docs::{CommandHeaders, PortfolioAnswer};
use super::media;
use super::paths::{ActivityPath, PortfolioPath};
use super::portfolio_command;
use super::view::PortfolioView;
use crate::domain::portfolio::MAX_DESCRIPTION_LEN;
use crate::domain::values::{MediaRef, NonEmptyText};
use crate::domain::{ActivityId, CatalogItemId, DomainError, PortfolioCommand};
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
pub async fn log(
    caller: Caller,
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(path): ApiPath<PortfolioPath>,
    body: Result<ApiJson<LogActivity>, Problem>,
) -> Result<Versioned<PortfolioView>, Problem> {
    let sha256 = body
        .as_ref()
        .ok()
        .and_then(|ApiJson(b)| b.evidence_sha256.as_deref());
    let upload =
        media::resolve_optional(&state, path.portfolio_id, sha256, "evidence_sha256").await;
    portfolio_command(
        &state,
        &caller,
        &meta,
        path.portfolio_id,
        PortfolioActor::Owner,
        |ctx| {
            let ApiJson(mut body) = body?;
            body.evidence = media::evidence(upload?, body.evidence.take())?;
            let activity_id = ActivityId::new(minted_id(ctx, "activity"));
            Ok(PortfolioCommand::try_from((body, activity_id))?)
        },
    )
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
pub async fn withdraw(
    caller: Caller,
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(path): ApiPath<ActivityPath>,
) -> Result<Versioned<PortfolioView>, Problem> {
    portfolio_command(
        &state,
        &caller,
        &meta,
        path.portfolio_id,
        PortfolioActor::Owner,
        |_| {
            Ok(PortfolioCommand::WithdrawActivity {
                activity_id: path.activity_id,
            })
        },
    )
    .await
}
