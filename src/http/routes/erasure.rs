//! Erasing a student's personal data (GDPR), admin only: `POST /students/{student_uid}/erasure`.
//! The work is `app::erasure`; `cim erase` does the same from the command line.

use crate::app::{self, ErasureError, ErasureOutcome, ErasureRequest};
use crate::domain::StudentUid;
use crate::http::access;
use crate::http::auth::Caller;
use crate::http::bodies::Reason;
use crate::http::command::CommandMeta;
use crate::http::docs::CreateHeaders;
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::pipeline::staff;
use crate::http::problem::Problem;
use crate::http::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct StudentPath {
    pub student_uid: StudentUid,
}

/// `POST /students/{student_uid}/erasure` (admin): `{"reason": "…"}`.
#[utoipa::path(
    post,
    path = "/students/{student_uid}/erasure",
    tag = "erasure",
    params(
        ("student_uid" = Uuid, Path, description = "The student's Ladok UID"),
        CreateHeaders,
    ),
    request_body = Reason,
    responses(
        (status = 200, description = "The student's personal data is erased", body = ErasureOutcome),
        (status = 404, description = "No data of this student (`student_not_found`)"),
        (status = 422, description = "The reason names the student (`erasure_reason_personal`): it is kept for good, so give a case reference"),
    )
)]
pub async fn erase(
    caller: Caller,
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(path): ApiPath<StudentPath>,
    body: Result<ApiJson<Reason>, Problem>,
) -> Result<Json<ErasureOutcome>, Problem> {
    access::admin(&caller)?;
    let ApiJson(body) = body?;
    let request = ErasureRequest {
        student_uid: path.student_uid,
        by: staff(&caller)?,
        reason: body.parse()?,
    };
    let ctx = meta.context(&state.pool, &caller).await?;
    match app::erase(&state.commands, &state.media, &request, &ctx).await {
        Ok(outcome) => {
            // Counts only: no student id in logs.
            tracing::info!(
                portfolios = outcome.portfolios.len(),
                files_deleted = outcome.files_deleted,
                already_erased = outcome.already_erased,
                "personal data erased"
            );
            Ok(Json(outcome))
        }
        Err(e @ ErasureError::ReasonPersonal(_)) => Err(Problem::unprocessable(
            "erasure_reason_personal",
            e.to_string(),
        )
        .with_field("reason")),
        Err(ErasureError::NotFound) => Err(Problem::not_found(
            "student_not_found",
            "there is no data of this student",
        )),
        Err(ErasureError::Conflict) => Err(Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            "the student's portfolios kept changing during the erasure; try again",
        )),
        Err(e) => Err(Problem::internal(&e)),
    }
}
