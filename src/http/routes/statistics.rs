//! The pilot evaluation: how many students started and reached each step, time to approval, the
//! mix of activities and formats, how often reflections are returned, and drop-off. Aggregates only:
//! nothing in these answers identifies a student.
//!
//! Overall figures (`GET /statistics`) are for administrators and every coordinator (a program
//! compares itself with the pilot as a whole); one program's figures are for its coordinators and
//! administrators. The registrar and students have no use for them (403).

use crate::domain::ProgramId;
use crate::http::auth::{Caller, Role};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::problem::Problem;
use crate::http::reads::{self, ProgramPath};
use crate::http::state::AppState;
use crate::projections::read_models::statistics::{self, DropOff, PilotStatistics};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Days without an event caused by the student after which an open portfolio counts as dropped off.
pub const DEFAULT_INACTIVE_DAYS: u32 = 60;

#[derive(Debug, Deserialize)]
pub struct StatisticsQuery {
    /// See [`DEFAULT_INACTIVE_DAYS`]; 1-3650.
    pub inactive_days: Option<u32>,
}

/// The figures and the drop-off.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatisticsView {
    /// Students started, steps reached, approvals, time to approval, activity and format mix,
    /// return rates (`projections::read_models::statistics::PilotStatistics`).
    pub statistics: PilotStatistics,
    /// Open portfolios, how many are inactive, and the step they are stuck at.
    pub drop_off: DropOff,
}

/// `GET /statistics?inactive_days=` (admin, any coordinator): the figures over every program.
#[utoipa::path(
    get,
    path = "/statistics",
    tag = "statistics",
    params(("inactive_days" = Option<u32>, Query, description = "Drop-off threshold in days (default 60)")),
    responses((status = 200, description = "The pilot's figures over every program", body = StatisticsView))
)]
pub async fn overall(
    caller: Caller,
    State(state): State<AppState>,
    query: Result<ApiQuery<StatisticsQuery>, Problem>,
) -> Result<Json<StatisticsView>, Problem> {
    if !matches!(caller.role, Role::Admin | Role::Coordinator) {
        return Err(Problem::forbidden(
            "the pilot's statistics are for administrators and coordinators",
        ));
    }
    answer(&state, None, query).await
}

/// `GET /programs/{program_id}/statistics?inactive_days=` (admin, coordinator of the program).
#[utoipa::path(
    get,
    path = "/programs/{program_id}/statistics",
    tag = "statistics",
    params(
        ProgramPath,
        ("inactive_days" = Option<u32>, Query, description = "Drop-off threshold in days (default 60)"),
    ),
    responses((status = 200, description = "The program's figures", body = StatisticsView))
)]
pub async fn of_program(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(path): ApiPath<ProgramPath>,
    query: Result<ApiQuery<StatisticsQuery>, Problem>,
) -> Result<Json<StatisticsView>, Problem> {
    if caller.role != Role::Admin {
        reads::coordinator_of(&caller, path.program_id)?;
    }
    answer(&state, Some(path.program_id), query).await
}

async fn answer(
    state: &AppState,
    program: Option<ProgramId>,
    query: Result<ApiQuery<StatisticsQuery>, Problem>,
) -> Result<Json<StatisticsView>, Problem> {
    let ApiQuery(query) = query?;
    let inactive_days = query.inactive_days.unwrap_or(DEFAULT_INACTIVE_DAYS);
    if !(1..=3650).contains(&inactive_days) {
        return Err(Problem::bad_request(
            "invalid_query",
            "inactive_days must be between 1 and 3650",
        )
        .with_field("inactive_days"));
    }
    reads::caught_up(state, "statistics").await?;
    let figures = statistics::statistics(&state.pool, program)
        .await
        .map_err(reads::read_failed)?;
    let drop_off = statistics::drop_off(&state.pool, program, chrono::Utc::now(), inactive_days)
        .await
        .map_err(reads::read_failed)?;
    Ok(Json(StatisticsView {
        statistics: figures,
        drop_off,
    }))
}
