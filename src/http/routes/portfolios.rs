//! Portfolios: a student opens their own and reads it; their program's coordinators read it. The
//! expected completion date is kept current in `completion.rs`; who the student is, at enrolment,
//! is decided in [`personal`].

mod personal;

use crate::domain::{PortfolioCommand, PortfolioId, StudentUid};
use crate::export::worker::ladok::{LadokClient, LadokError};
use crate::http::access::{self, PortfolioActor};
use crate::http::auth::Caller;
use crate::http::command::{CommandMeta, Versioned};
use crate::http::docs::{CreateHeaders, PortfolioAnswer, PortfolioCreated};
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::paths::{PortfolioPath, ProgramPath};
use crate::http::pipeline::{portfolio_answer, rules_of};
use crate::http::problem::Problem;
use crate::http::state::AppState;
use crate::http::view::PortfolioView;
use axum::extract::State;
use chrono::NaiveDate;
use personal::{LadokAnswer, Typed};
use serde::Deserialize;
use utoipa::ToSchema;

/// The student's names, e-mail and identity number are taken from the sign-in token and Ladok (see
/// `docs/identity.md`); the body's fields for them are optional, kept for older clients, and refused
/// with 422 `personal_details_mismatch` when they contradict those sources.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"student_uid": "0190a5f2-7c4e-7d1a-9b3e-2f1c0d9e8a77", "expected_completion": "2027-06-10"}))]
#[serde(deny_unknown_fields)]
pub struct OpenPortfolio {
    /// Must be the caller's own Ladok UID (the token's `sub`).
    #[schema(value_type = Uuid)]
    pub student_uid: StudentUid,
    /// Personnummer or samordningsnummer, in any accepted form (docs/identity.md). Taken from Ladok;
    /// needed here only while Ladok cannot be asked.
    #[serde(default)]
    pub identity_number: Option<String>,
    /// Taken from the token's `given_name`; needed here only when the token has none.
    #[serde(default)]
    pub given_names: Option<String>,
    /// Taken from the token's `family_name`; needed here only when the token has none.
    #[serde(default)]
    pub family_name: Option<String>,
    /// Taken from the token's `email`; needed here only when the token has none.
    #[serde(default)]
    pub email: Option<String>,
    pub expected_completion: NaiveDate,
}

/// How long enrolment waits for Ladok before it goes on with what was typed.
const LADOK_LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Ladok's record of the student, when Ladok delivery is configured and Ladok answers in time.
/// Failures are logged without the student (their UID is personal enough to keep out of logs).
async fn ask_ladok(state: &AppState, student_uid: StudentUid) -> LadokAnswer {
    let Some(config) = state.exports.as_ref().and_then(|e| e.ladok.clone()) else {
        return LadokAnswer::Unavailable;
    };
    let client = match LadokClient::new(config) {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!(error = %e, "Ladok client for enrolment not available");
            return LadokAnswer::Unavailable;
        }
    };
    let uid = student_uid.to_string();
    match tokio::time::timeout(LADOK_LOOKUP_TIMEOUT, client.student(&uid)).await {
        Ok(Ok(student)) if student.uid.eq_ignore_ascii_case(&uid) => {
            LadokAnswer::Student(student.personnummer)
        }
        Ok(Ok(_)) => {
            tracing::warn!("Ladok answered the enrolment lookup with another student's record");
            LadokAnswer::Unavailable
        }
        Ok(Err(LadokError::StudentNotFound)) => LadokAnswer::NoSuchStudent,
        // The error's text can name the request path, which holds the student's UID: not logged.
        Ok(Err(_)) => {
            tracing::warn!("Ladok lookup at enrolment failed; the typed details are used");
            LadokAnswer::Unavailable
        }
        Err(_) => {
            tracing::warn!("Ladok lookup at enrolment timed out; the typed details are used");
            LadokAnswer::Unavailable
        }
    }
}

/// `POST /programs/{program_id}/portfolios` (student): enrolment. The body's `student_uid` must be
/// the caller's own. Answers 201 with the new portfolio. A student has one portfolio per program (its
/// id is derived from the two): a second open answers 409 `portfolio_exists` with the existing
/// `portfolio_id`, except a retry with the same `Idempotency-Key`, which answers as the first did.
#[utoipa::path(
    post,
    path = "/programs/{program_id}/portfolios",
    tag = "portfolios",
    params(
        ProgramPath,
        CreateHeaders,
    ),
    request_body = OpenPortfolio,
    responses(PortfolioCreated)
)]
pub async fn open(
    caller: Caller,
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(path): ApiPath<ProgramPath>,
    body: Result<ApiJson<OpenPortfolio>, Problem>,
) -> Result<Versioned<PortfolioView>, Problem> {
    access::student(&caller)?;
    let ApiJson(body) = body?;
    if caller.student_uid() != Some(body.student_uid) {
        return Err(Problem::forbidden(
            "a student can only open their own portfolio: student_uid must be the Ladok UID of the signed-in student",
        )
        .with_field("student_uid"));
    }
    let ctx = meta.context(&state.pool, &caller).await?;
    let portfolio_id = PortfolioId::of(body.student_uid, path.program_id);
    let today = crate::domain::stockholm_date(ctx.now);
    let ladok = ask_ladok(&state, body.student_uid).await;
    let typed = Typed {
        identity_number: body.identity_number.as_deref(),
        given_names: body.given_names.as_deref(),
        family_name: body.family_name.as_deref(),
        email: body.email.as_deref(),
    };
    let details = personal::resolve(&typed, &caller.profile, ladok, today)?;
    let command = PortfolioCommand::OpenPortfolio {
        portfolio_id,
        student_uid: body.student_uid,
        identity_number: details.identity_number,
        name: details.name,
        email: details.email,
        expected_completion: body.expected_completion,
        identity_check: details.identity_check,
    };
    let handled = state
        .commands
        .open_portfolio(path.program_id, command, &ctx)
        .await?;
    let mut answer = portfolio_answer(&state, &handled, &ctx).await?;
    answer.status = axum::http::StatusCode::CREATED;
    Ok(answer)
}

/// `GET /portfolios/{portfolio_id}` (its student, its program's coordinators): the whole portfolio,
/// with `ETag: "<version>"`.
#[utoipa::path(
    get,
    path = "/portfolios/{portfolio_id}",
    tag = "portfolios",
    params(PortfolioPath,),
    responses(PortfolioAnswer)
)]
pub async fn show(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(path): ApiPath<PortfolioPath>,
) -> Result<Versioned<PortfolioView>, Problem> {
    access::role_may(&caller, PortfolioActor::OwnerOrCoordinator)?;
    let (current, version) = state.commands.load_portfolio(path.portfolio_id).await?;
    let portfolio = current.opened().ok_or_else(access::portfolio_not_found)?;
    access::may_see(&caller, portfolio)?;
    let rules = rules_of(&state, portfolio.program_id).await?;
    Ok(Versioned::ok(
        version,
        PortfolioView::new(
            portfolio,
            &rules,
            version,
            crate::domain::stockholm_date(chrono::Utc::now()),
        ),
    ))
}
