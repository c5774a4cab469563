//! The final reflection: submitted by the student (in English, by the deadline unless extended),
//! approved or returned by a coordinator.

use super::access::PortfolioActor;
use super::docs::{CommandHeaders, PortfolioAnswer};
use super::media::{self, Upload};
use super::paths::PortfolioPath;
use super::reflections::{Feedback, upload_of};
use super::view::PortfolioView;
use super::{portfolio_command, staff};
use crate::domain::PortfolioCommand;
use crate::domain::portfolio::FinalContent;
use crate::domain::values::MediaRef;
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::command::{CommandMeta, Versioned};
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::problem::Problem;
use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

/// `{"format": "written", "text": "…"}`, `{"format": "oral", "media_sha256": "…"}` (an upload of
/// this portfolio, whose measured duration is used) or `{"format": "oral", "link": "https://…",
/// "duration_s": 320}` (a link to the program's video platform, duration declared). Without an
/// upload or a link: 422 `recording_required`, unless the rules allow declared durations.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"format": "oral", "media_sha256": "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"}))]
#[serde(tag = "format", rename_all = "snake_case", deny_unknown_fields)]
pub enum FinalBody {
    Written {
        text: String,
    },
    /// As an oral activity reflection: `duration_s` is required unless `media_sha256` names an
    /// upload whose duration the server measured (which then wins over a declared one).
    Oral {
        /// The SHA-256 of an upload of this portfolio; excludes `media`.
        #[serde(default)]
        media_sha256: Option<String>,
        #[serde(default)]
        media: Option<MediaRef>,
        #[serde(default)]
        duration_s: Option<u32>,
        /// A link to the university's video platform; excludes an upload.
        #[serde(default)]
        link: Option<String>,
    },
}

impl FinalBody {
    fn media_sha256(&self) -> Option<(&str, &'static str)> {
        match self {
            FinalBody::Oral {
                media_sha256,
                media,
                ..
            } => media::recording_hash(media_sha256.as_deref(), media.as_ref()),
            FinalBody::Written { .. } => None,
        }
    }

    /// The content, with the upload `media_sha256` resolved to (see [`media::oral`]).
    fn content(self, upload: Option<Upload>) -> Result<FinalContent, Problem> {
        Ok(match self {
            FinalBody::Written { text } => FinalContent::Written { text },
            FinalBody::Oral {
                media_sha256,
                media,
                duration_s,
                link,
            } => {
                let (media, duration_s, duration_measured) =
                    media::oral_recording(upload, media_sha256.is_some(), media, duration_s)?;
                FinalContent::Oral {
                    media,
                    link,
                    duration_s,
                    duration_measured,
                }
            }
        })
    }
}

type Body<T> = Result<ApiJson<T>, Problem>;

/// `POST /portfolios/{portfolio_id}/final-reflection` (student).
#[utoipa::path(
    post,
    path = "/portfolios/{portfolio_id}/final-reflection",
    tag = "portfolios",
    params(
        PortfolioPath,
        CommandHeaders,
    ),
    request_body = FinalBody,
    responses(PortfolioAnswer)
)]
pub async fn submit(
    caller: Caller,
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(path): ApiPath<PortfolioPath>,
    body: Body<FinalBody>,
) -> Result<Versioned<PortfolioView>, Problem> {
    let sha256 = body.as_ref().ok().and_then(|ApiJson(b)| b.media_sha256());
    let upload = upload_of(&state, path.portfolio_id, sha256).await;
    portfolio_command(
        &state,
        &caller,
        &meta,
        path.portfolio_id,
        PortfolioActor::Owner,
        |_| {
            let ApiJson(body) = body?;
            Ok(PortfolioCommand::SubmitFinalReflection {
                content: body.content(upload?)?,
            })
        },
    )
    .await
}

/// `POST /portfolios/{portfolio_id}/final-reflection/resubmit` (student), after a return.
#[utoipa::path(
    post,
    path = "/portfolios/{portfolio_id}/final-reflection/resubmit",
    tag = "portfolios",
    params(
        PortfolioPath,
        CommandHeaders,
    ),
    request_body = FinalBody,
    responses(PortfolioAnswer)
)]
pub async fn resubmit(
    caller: Caller,
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(path): ApiPath<PortfolioPath>,
    body: Body<FinalBody>,
) -> Result<Versioned<PortfolioView>, Problem> {
    let sha256 = body.as_ref().ok().and_then(|ApiJson(b)| b.media_sha256());
    let upload = upload_of(&state, path.portfolio_id, sha256).await;
    portfolio_command(
        &state,
        &caller,
        &meta,
        path.portfolio_id,
        PortfolioActor::Owner,
        |_| {
            let ApiJson(body) = body?;
            Ok(PortfolioCommand::ResubmitFinalReflection {
                content: body.content(upload?)?,
            })
        },
    )
    .await
}

/// `POST /portfolios/{portfolio_id}/final-reflection/approve` (coordinator), no body.
#[utoipa::path(
    post,
    path = "/portfolios/{portfolio_id}/final-reflection/approve",
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
        |_| {
            Ok(PortfolioCommand::ApproveFinalReflection {
                by: staff(&caller)?,
            })
        },
    )
    .await
}

/// `POST /portfolios/{portfolio_id}/final-reflection/return` (coordinator): `{"feedback": "…"}`.
#[utoipa::path(
    post,
    path = "/portfolios/{portfolio_id}/final-reflection/return",
    tag = "portfolios",
    params(
        PortfolioPath,
        CommandHeaders,
    ),
    request_body = Feedback,
    responses(PortfolioAnswer)
)]
pub async fn return_for_revision(
    caller: Caller,
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(path): ApiPath<PortfolioPath>,
    body: Body<Feedback>,
) -> Result<Versioned<PortfolioView>, Problem> {
    portfolio_command(
        &state,
        &caller,
        &meta,
        path.portfolio_id,
        PortfolioActor::Coordinator,
        |_| {
            let ApiJson(body) = body?;
            Ok(PortfolioCommand::ReturnFinalReflection {
                by: staff(&caller)?,
                feedback: body.parse()?,
            })
        },
    )
    .await
}
