//! Activity reflections: the student submits (and, after a return, resubmits); a coordinator of the
//! program approves or returns with feedback. Every attempt and every piece of feedback is kept.

use super::access::PortfolioActor;
use super::docs::{CommandHeaders, PortfolioAnswer};
use super::media::{self, Upload};
use super::paths::ActivityPath;
use super::view::PortfolioView;
use super::{portfolio_command, staff};
use crate::domain::portfolio::{MAX_STAFF_TEXT_LEN, ReflectionContent};
use crate::domain::values::{MediaRef, NonEmptyText};
use crate::domain::{DomainError, PortfolioCommand, PortfolioId};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::command::{CommandMeta, Versioned};
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::problem::Problem;
use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

/// A reflection as a client sends it: `{"format": "written", "text": "…"}`,
/// `{"format": "oral", "media_sha256": "…"}` (an upload of this portfolio, see
/// `POST /portfolios/{id}/media`), `{"format": "oral", "link": "https://…", "duration_s": 150}` (a
/// link to the program's video platform) or `{"format": "instagram", "links": […], "text": "…"}`.
/// Word counts are computed by the server. An oral reflection without an upload or a link is 422
/// `recording_required` unless the program's rules allow declared durations.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"format": "written", "text": "Hosting the language café made me notice how much of my own communication relies on shared references …"}))]
#[serde(tag = "format", rename_all = "snake_case", deny_unknown_fields)]
pub enum ReflectionBody {
    Written {
        text: String,
    },
    /// With `media_sha256` naming an upload whose duration the server measured, that duration is
    /// recorded as measured and a declared `duration_s` is ignored. Otherwise `duration_s` is required:
    /// it is the student's declaration, recorded as not measured (a recording's duration is only
    /// "measured" when the server read it from the file, never because a client says so).
    Oral {
        /// The SHA-256 of an upload of this portfolio; excludes `media`.
        #[serde(default)]
        media_sha256: Option<String>,
        #[serde(default)]
        media: Option<MediaRef>,
        #[serde(default)]
        duration_s: Option<u32>,
        /// A link to the university's video platform (a host listed in the program's rules);
        /// excludes an upload. Its duration is the declared `duration_s`.
        #[serde(default)]
        link: Option<String>,
    },
    Instagram {
        links: Vec<String>,
        text: String,
    },
}

impl ReflectionBody {
    /// The upload an oral reflection names, and the field naming it (see [`media::recording_hash`]).
    fn media_sha256(&self) -> Option<(&str, &'static str)> {
        match self {
            ReflectionBody::Oral {
                media_sha256,
                media,
                ..
            } => media::recording_hash(media_sha256.as_deref(), media.as_ref()),
            _ => None,
        }
    }

    /// The content, with the upload `media_sha256` resolved to (see [`media::oral`]).
    fn content(self, upload: Option<Upload>) -> Result<ReflectionContent, Problem> {
        Ok(match self {
            ReflectionBody::Written { text } => ReflectionContent::Written { text },
            ReflectionBody::Oral {
                media_sha256,
                media,
                duration_s,
                link,
            } => {
                let (media, duration_s, duration_measured) =
                    media::oral_recording(upload, media_sha256.is_some(), media, duration_s)?;
                ReflectionContent::Oral {
                    media,
                    link,
                    duration_s,
                    duration_measured,
                }
            }
            ReflectionBody::Instagram { links, text } => {
                ReflectionContent::Instagram { links, text }
            }
        })
    }
}

/// Resolves the body's `media_sha256` before the command runs (the lookup's error is only reported
/// by the command builder, after the access checks).
pub(super) async fn upload_of(
    state: &AppState,
    portfolio: PortfolioId,
    sha256: Option<(&str, &'static str)>,
) -> Result<Option<Upload>, Problem> {
    match sha256 {
        Some((sha, field)) => media::resolve_optional(state, portfolio, Some(sha), field).await,
        None => Ok(None),
    }
}

/// Feedback or a reason from staff: `{"feedback": "…"}`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"feedback": "Good start. Please say more about what you would do differently in a clinical setting."}))]
#[serde(deny_unknown_fields)]
pub struct Feedback {
    pub feedback: String,
}

impl Feedback {
    pub fn parse(self) -> Result<NonEmptyText, DomainError> {
        Ok(NonEmptyText::parse(
            &self.feedback,
            "feedback",
            MAX_STAFF_TEXT_LEN,
        )?)
    }
}

type Body<T> = Result<ApiJson<T>, Problem>;

/// `POST …/activities/{activity_id}/reflection` (student).
#[utoipa::path(
    post,
    path = "/portfolios/{portfolio_id}/activities/{activity_id}/reflection",
    tag = "portfolios",
    params(
        ActivityPath,
        CommandHeaders,
    ),
    request_body = ReflectionBody,
    responses(PortfolioAnswer)
)]
pub async fn submit(
    caller: Caller,
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(path): ApiPath<ActivityPath>,
    body: Body<ReflectionBody>,
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
            Ok(PortfolioCommand::SubmitReflection {
                activity_id: path.activity_id,
                content: body.content(upload?)?,
            })
        },
    )
    .await
}

/// `POST …/activities/{activity_id}/reflection/resubmit` (student), after a return.
#[utoipa::path(
    post,
    path = "/portfolios/{portfolio_id}/activities/{activity_id}/reflection/resubmit",
    tag = "portfolios",
    params(
        ActivityPath,
        CommandHeaders,
    ),
    request_body = ReflectionBody,
    responses(PortfolioAnswer)
)]
pub async fn resubmit(
    caller: Caller,
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(path): ApiPath<ActivityPath>,
    body: Body<ReflectionBody>,
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
            Ok(PortfolioCommand::ResubmitReflection {
                activity_id: path.activity_id,
                content: body.content(upload?)?,
            })
        },
    )
    .await
}

/// `POST …/activities/{activity_id}/reflection/approve` (coordinator), no body.
#[utoipa::path(
    post,
    path = "/portfolios/{portfolio_id}/activities/{activity_id}/reflection/approve",
    tag = "portfolios",
    params(ActivityPath, CommandHeaders,),
    responses(PortfolioAnswer)
)]
pub async fn approve(
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
        PortfolioActor::Coordinator,
        |_| {
            Ok(PortfolioCommand::ApproveReflection {
                activity_id: path.activity_id,
                by: staff(&caller)?,
            })
        },
    )
    .await
}

/// `POST …/activities/{activity_id}/reflection/return` (coordinator): `{"feedback": "…"}`.
#[utoipa::path(
    post,
    path = "/portfolios/{portfolio_id}/activities/{activity_id}/reflection/return",
    tag = "portfolios",
    params(
        ActivityPath,
        CommandHeaders,
    ),
    request_body = Feedback,
    responses(PortfolioAnswer)
)]
pub async fn return_for_revision(
    caller: Caller,
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(path): ApiPath<ActivityPath>,
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
            Ok(PortfolioCommand::ReturnReflection {
                activity_id: path.activity_id,
                by: staff(&caller)?,
                feedback: body.parse()?,
            })
        },
    )
    .await
}
