//! Reflections, of both kinds, by one implementation: an activity's reflection
//! (`…/activities/{activity_id}/reflection…`) and the final reflection (`…/final-reflection…`).
//! The student submits (in English and by the deadline unless extended, for the final one) and,
//! after a return, resubmits; a coordinator of the program approves or returns with feedback. Every
//! attempt and every piece of feedback is kept.
//!
//! The kinds differ only in their path, their body (an activity's reflection may also be an
//! Instagram series) and the commands they become: [`Kind`] names those, and the handlers are
//! generic over it (`routes::all` lists both URL sets). The OpenAPI operations are per URL, so they
//! are declared on the functions at the end of this file, which only carry the documentation.

use crate::domain::portfolio::{FinalContent, MAX_STAFF_TEXT_LEN, ReflectionContent};
use crate::domain::values::{MediaRef, NonEmptyText};
use crate::domain::{DomainError, PortfolioCommand, PortfolioId, StaffId};
use crate::http::access::PortfolioActor;
use crate::http::docs::{CommandHeaders, PortfolioAnswer};
use crate::http::media_ref::{self, Upload};
use crate::http::paths::{ActivityPath, OnPortfolio, PortfolioPath};
use crate::http::pipeline::{Answered, CommandRequest, NoBody, staff};
use crate::http::problem::Problem;
use crate::http::state::AppState;
use crate::http::view::PortfolioView;
use serde::Deserialize;
use serde::de::DeserializeOwned;
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

/// A body that submits a reflection: written, or oral by an upload (`media_sha256`), a typed
/// reference (`media`) or a link, with a declared duration where none was measured.
pub trait Submission: DeserializeOwned + Send {
    type Content;

    /// The upload an oral submission names, and the field naming it (see
    /// [`media_ref::recording_hash`]).
    fn media_sha256(&self) -> Option<(&str, &'static str)>;

    /// The content, with the upload `media_sha256` resolved to (see [`media_ref::oral_recording`]).
    fn content(self, upload: Option<Upload>) -> Result<Self::Content, Problem>;
}

/// What a kind of reflection is: its path, its body and the commands it becomes.
pub trait Kind: Send + Sync + 'static {
    type Path: OnPortfolio + DeserializeOwned + Send + Sync;
    type Body: Submission;
    fn submit(path: &Self::Path, content: Content<Self>) -> PortfolioCommand;
    fn resubmit(path: &Self::Path, content: Content<Self>) -> PortfolioCommand;
    fn approve(path: &Self::Path, by: StaffId) -> PortfolioCommand;
    fn return_for_revision(
        path: &Self::Path,
        by: StaffId,
        feedback: NonEmptyText,
    ) -> PortfolioCommand;
}

type Content<K> = <<K as Kind>::Body as Submission>::Content;

/// An activity's reflection, `/portfolios/{portfolio_id}/activities/{activity_id}/reflection…`.
#[derive(Debug)]
pub struct Activity;

impl Kind for Activity {
    type Path = ActivityPath;
    type Body = ReflectionBody;

    fn submit(path: &ActivityPath, content: ReflectionContent) -> PortfolioCommand {
        let activity_id = path.activity_id;
        PortfolioCommand::SubmitReflection {
            activity_id,
            content,
        }
    }

    fn resubmit(path: &ActivityPath, content: ReflectionContent) -> PortfolioCommand {
        let activity_id = path.activity_id;
        PortfolioCommand::ResubmitReflection {
            activity_id,
            content,
        }
    }

    fn approve(path: &ActivityPath, by: StaffId) -> PortfolioCommand {
        let activity_id = path.activity_id;
        PortfolioCommand::ApproveReflection { activity_id, by }
    }

    fn return_for_revision(
        path: &ActivityPath,
        by: StaffId,
        feedback: NonEmptyText,
    ) -> PortfolioCommand {
        PortfolioCommand::ReturnReflection {
            activity_id: path.activity_id,
            by,
            feedback,
        }
    }
}

/// The final reflection, `/portfolios/{portfolio_id}/final-reflection…`.
#[derive(Debug)]
pub struct Final;

impl Kind for Final {
    type Path = PortfolioPath;
    type Body = FinalBody;

    fn submit(_: &PortfolioPath, content: FinalContent) -> PortfolioCommand {
        PortfolioCommand::SubmitFinalReflection { content }
    }

    fn resubmit(_: &PortfolioPath, content: FinalContent) -> PortfolioCommand {
        PortfolioCommand::ResubmitFinalReflection { content }
    }

    fn approve(_: &PortfolioPath, by: StaffId) -> PortfolioCommand {
        PortfolioCommand::ApproveFinalReflection { by }
    }

    fn return_for_revision(
        _: &PortfolioPath,
        by: StaffId,
        feedback: NonEmptyText,
    ) -> PortfolioCommand {
        PortfolioCommand::ReturnFinalReflection { by, feedback }
    }
}

impl Submission for ReflectionBody {
    type Content = ReflectionContent;

    fn media_sha256(&self) -> Option<(&str, &'static str)> {
        match self {
            ReflectionBody::Oral {
                media_sha256,
                media,
                ..
            } => media_ref::recording_hash(media_sha256.as_deref(), media.as_ref()),
            _ => None,
        }
    }

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
                    media_ref::oral_recording(upload, media_sha256.is_some(), media, duration_s)?;
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

impl Submission for FinalBody {
    type Content = FinalContent;

    fn media_sha256(&self) -> Option<(&str, &'static str)> {
        match self {
            FinalBody::Oral {
                media_sha256,
                media,
                ..
            } => media_ref::recording_hash(media_sha256.as_deref(), media.as_ref()),
            FinalBody::Written { .. } => None,
        }
    }

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
                    media_ref::oral_recording(upload, media_sha256.is_some(), media, duration_s)?;
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

/// Submitting (student).
pub async fn submit<K: Kind>(req: CommandRequest<K::Path, K::Body>) -> Answered<PortfolioView> {
    submission::<K>(req, K::submit).await
}

/// Resubmitting (student), after a return.
pub async fn resubmit<K: Kind>(req: CommandRequest<K::Path, K::Body>) -> Answered<PortfolioView> {
    submission::<K>(req, K::resubmit).await
}

/// Approving (coordinator), no body.
pub async fn approve<K: Kind>(req: CommandRequest<K::Path, NoBody>) -> Answered<PortfolioView> {
    req.on_portfolio(PortfolioActor::Coordinator, |i| {
        Ok(K::approve(i.path, staff(i.caller)?))
    })
    .await
}

/// Returning for revision (coordinator): `{"feedback": "…"}`.
pub async fn return_for_revision<K: Kind>(
    req: CommandRequest<K::Path, Feedback>,
) -> Answered<PortfolioView> {
    req.on_portfolio(PortfolioActor::Coordinator, |i| {
        let body = i.body?;
        Ok(K::return_for_revision(
            i.path,
            staff(i.caller)?,
            body.parse()?,
        ))
    })
    .await
}

/// A submission or resubmission. The body's upload is resolved before the command runs; the
/// lookup's error is only reported by the command builder, after the access checks.
async fn submission<K: Kind>(
    req: CommandRequest<K::Path, K::Body>,
    command: fn(&K::Path, Content<K>) -> PortfolioCommand,
) -> Answered<PortfolioView> {
    let sha256 = req.body.as_ref().ok().and_then(Submission::media_sha256);
    let upload = upload_of(&req.state, req.path.portfolio_id(), sha256).await;
    req.on_portfolio(PortfolioActor::Owner, |i| {
        let body = i.body?;
        Ok(command(i.path, body.content(upload?)?))
    })
    .await
}

async fn upload_of(
    state: &AppState,
    portfolio: PortfolioId,
    sha256: Option<(&str, &'static str)>,
) -> Result<Option<Upload>, Problem> {
    match sha256 {
        Some((sha, field)) => media_ref::resolve_optional(state, portfolio, Some(sha), field).await,
        None => Ok(None),
    }
}

/// Declares the OpenAPI operations of the reflection URLs, each on a function that only carries
/// it: utoipa documents functions, and the generic handlers above serve both URL sets. The
/// operations keep the handlers' names as their ids.
macro_rules! operations {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident: $id:literal, $path:literal, $params:ident $(, $body:ident)?;
    )*) => {$(
        $(#[doc = $doc])*
        #[utoipa::path(
            post,
            operation_id = $id,
            path = $path,
            tag = "portfolios",
            params($params, CommandHeaders),
            $(request_body = $body,)?
            responses(PortfolioAnswer)
        )]
        #[allow(dead_code)]
        fn $name() {}
    )*};
}

operations! {
    /// `POST …/activities/{activity_id}/reflection` (student).
    activity_submit: "submit",
        "/portfolios/{portfolio_id}/activities/{activity_id}/reflection",
        ActivityPath, ReflectionBody;
    /// `POST …/activities/{activity_id}/reflection/resubmit` (student), after a return.
    activity_resubmit: "resubmit",
        "/portfolios/{portfolio_id}/activities/{activity_id}/reflection/resubmit",
        ActivityPath, ReflectionBody;
    /// `POST …/activities/{activity_id}/reflection/approve` (coordinator), no body.
    activity_approve: "approve",
        "/portfolios/{portfolio_id}/activities/{activity_id}/reflection/approve",
        ActivityPath;
    /// `POST …/activities/{activity_id}/reflection/return` (coordinator): `{"feedback": "…"}`.
    activity_return_for_revision: "return_for_revision",
        "/portfolios/{portfolio_id}/activities/{activity_id}/reflection/return",
        ActivityPath, Feedback;
    /// `POST /portfolios/{portfolio_id}/final-reflection` (student).
    final_submit: "submit",
        "/portfolios/{portfolio_id}/final-reflection",
        PortfolioPath, FinalBody;
    /// `POST /portfolios/{portfolio_id}/final-reflection/resubmit` (student), after a return.
    final_resubmit: "resubmit",
        "/portfolios/{portfolio_id}/final-reflection/resubmit",
        PortfolioPath, FinalBody;
    /// `POST /portfolios/{portfolio_id}/final-reflection/approve` (coordinator), no body.
    final_approve: "approve",
        "/portfolios/{portfolio_id}/final-reflection/approve",
        PortfolioPath;
    /// `POST /portfolios/{portfolio_id}/final-reflection/return` (coordinator): `{"feedback": "…"}`.
    final_return_for_revision: "return_for_revision",
        "/portfolios/{portfolio_id}/final-reflection/return",
        PortfolioPath, Feedback;
}
