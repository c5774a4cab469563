//! The student's forms, each the JSON request of one API route sent as the student
//! (`console.api_post`): the API decides, the page shows what it refused (`ctx.refused`).

use super::{given, portfolio_path};
use crate::console::Console;
use crate::console::pages::{self, Posted};
use crate::domain::{ActivityId, PortfolioId, ProgramId};
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
pub struct OnPortfolio {
    portfolio_id: PortfolioId,
}

#[derive(Debug, Deserialize)]
pub struct OnActivity {
    portfolio_id: PortfolioId,
    activity_id: ActivityId,
}

/// Sends `body` to the API's `path` (under `/portfolios/{id}`) and goes back to the portfolio with
/// the "done" message `done`, or shows the refusal.
async fn send(
    console: &Console,
    posted: &Posted<impl std::fmt::Debug>,
    portfolio: PortfolioId,
    suffix: &str,
    body: &Value,
    done: &str,
) -> Response {
    let ctx = &posted.ctx;
    let back = portfolio_path(portfolio);
    let path = format!("/portfolios/{portfolio}{suffix}");
    match console
        .api_post(&ctx.session, &path, body, posted.key.as_deref())
        .await
    {
        Ok(_) => pages::done(&back, done),
        Err(refusal) => ctx.refused(&refusal, &back),
    }
}

#[derive(Debug, Deserialize)]
pub struct OpenForm {
    program: ProgramId,
    expected_completion: String,
    identity_number: Option<String>,
    given_names: Option<String>,
    family_name: Option<String>,
    email: Option<String>,
}

/// `POST /console/me/portfolios` → `POST /programs/{program}/portfolios`.
pub async fn open(State(console): State<Console>, posted: Posted<OpenForm>) -> Response {
    let ctx = &posted.ctx;
    let form = &posted.form;
    let mut body = json!({
        "student_uid": ctx.session.caller.subject,
        "expected_completion": form.expected_completion,
    });
    let typed = [
        ("identity_number", &form.identity_number),
        ("given_names", &form.given_names),
        ("family_name", &form.family_name),
        ("email", &form.email),
    ];
    for (name, value) in typed {
        if let Some(value) = given(value) {
            body[name] = json!(value);
        }
    }
    let path = format!("/programs/{}/portfolios", form.program);
    match console
        .api_post(&ctx.session, &path, &body, posted.key.as_deref())
        .await
    {
        Ok(answer) => {
            let id = answer["view"]["portfolio_id"].as_str().unwrap_or_default();
            pages::done(&portfolio_path(id), "student-opened")
        }
        Err(refusal) => ctx.refused(&refusal, "/console/me"),
    }
}

#[derive(Debug, Deserialize)]
pub struct ActivityForm {
    item: String,
    started_on: String,
    ended_on: String,
    description: String,
}

/// `POST …/activities` → `POST /portfolios/{id}/activities`.
pub async fn log_activity(
    State(console): State<Console>,
    Path(path): Path<OnPortfolio>,
    posted: Posted<ActivityForm>,
) -> Response {
    let f = &posted.form;
    let body = json!({
        "item": f.item,
        "started_on": f.started_on,
        "ended_on": f.ended_on,
        "description": f.description,
    });
    send(
        &console,
        &posted,
        path.portfolio_id,
        "/activities",
        &body,
        "student-activity-logged",
    )
    .await
}

/// A reflection as the forms send it: written (`text`) or a recording uploaded by the page's
/// script first (`media_sha256`, see `files::upload`).
#[derive(Debug, Deserialize)]
pub struct ReflectionForm {
    format: String,
    text: Option<String>,
    media_sha256: Option<String>,
}

impl ReflectionForm {
    /// The API's reflection body (`routes::reflections::ReflectionBody`): a recording without an
    /// upload is sent as such, and the API answers `recording_required`.
    fn body(&self) -> Value {
        match self.format.as_str() {
            "oral" => match given(&self.media_sha256) {
                Some(sha) => json!({"format": "oral", "media_sha256": sha}),
                None => json!({"format": "oral"}),
            },
            _ => json!({"format": "written", "text": self.text.as_deref().unwrap_or_default()}),
        }
    }
}

/// `POST …/activities/{a}/reflection`.
pub async fn reflection(
    State(console): State<Console>,
    Path(path): Path<OnActivity>,
    posted: Posted<ReflectionForm>,
) -> Response {
    let suffix = format!("/activities/{}/reflection", path.activity_id);
    let body = posted.form.body();
    send(
        &console,
        &posted,
        path.portfolio_id,
        &suffix,
        &body,
        "student-reflection-sent",
    )
    .await
}

/// `POST …/activities/{a}/reflection/resubmit`.
pub async fn reflection_again(
    State(console): State<Console>,
    Path(path): Path<OnActivity>,
    posted: Posted<ReflectionForm>,
) -> Response {
    let suffix = format!("/activities/{}/reflection/resubmit", path.activity_id);
    let body = posted.form.body();
    send(
        &console,
        &posted,
        path.portfolio_id,
        &suffix,
        &body,
        "student-reflection-sent",
    )
    .await
}

/// `POST …/final-reflection`.
pub async fn final_reflection(
    State(console): State<Console>,
    Path(path): Path<OnPortfolio>,
    posted: Posted<ReflectionForm>,
) -> Response {
    let body = posted.form.body();
    send(
        &console,
        &posted,
        path.portfolio_id,
        "/final-reflection",
        &body,
        "student-final-sent",
    )
    .await
}

/// `POST …/final-reflection/resubmit`.
pub async fn final_reflection_again(
    State(console): State<Console>,
    Path(path): Path<OnPortfolio>,
    posted: Posted<ReflectionForm>,
) -> Response {
    let body = posted.form.body();
    send(
        &console,
        &posted,
        path.portfolio_id,
        "/final-reflection/resubmit",
        &body,
        "student-final-sent",
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct Nothing {}

/// `POST …/application`.
pub async fn apply(
    State(console): State<Console>,
    Path(path): Path<OnPortfolio>,
    posted: Posted<Nothing>,
) -> Response {
    send(
        &console,
        &posted,
        path.portfolio_id,
        "/application",
        &json!({}),
        "student-applied",
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct CompletionForm {
    expected_completion: String,
    reason: String,
}

/// `POST …/expected-completion` → the student's proposal of a new date, which a coordinator
/// accepts or declines (`…/expected-completion/proposal`).
pub async fn propose_completion(
    State(console): State<Console>,
    Path(path): Path<OnPortfolio>,
    posted: Posted<CompletionForm>,
) -> Response {
    let f = &posted.form;
    let body = json!({"expected_completion": f.expected_completion, "reason": f.reason});
    send(
        &console,
        &posted,
        path.portfolio_id,
        "/expected-completion/proposal",
        &body,
        "student-date-proposed",
    )
    .await
}
