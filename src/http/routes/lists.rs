//! Lists of portfolios: a student's own, and a program's for its coordinators. Answered from the
//! `portfolio` read model (non-personal summaries: ids, phase, deadline, next steps).

use crate::domain::PortfolioId;
use crate::http::auth::Caller;
use crate::http::cursor::{self, Page};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::problem::Problem;
use crate::http::reads::{self, PageQuery, ProgramPath};
use crate::http::state::AppState;
use crate::projections::read_models::portfolio::{self, PortfolioSummary};
use crate::projections::read_models::view::PhaseName;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;

/// The lists the cursors belong to.
const PORTFOLIOS_LIST: &str = "portfolios";
const MY_PORTFOLIOS_LIST: &str = "my_portfolios";

fn today() -> chrono::NaiveDate {
    crate::domain::stockholm_date(chrono::Utc::now())
}

/// `GET /me/portfolios?cursor=&limit=` (student): the caller's own portfolios (usually one; a
/// revoked portfolio stays beside a new one), by portfolio id.
#[utoipa::path(
    get,
    path = "/me/portfolios",
    tag = "portfolios",
    params(PageQuery),
    responses((status = 200, description = "One page of the caller's portfolios", body = Page<PortfolioSummary>))
)]
pub async fn mine(
    caller: Caller,
    State(state): State<AppState>,
    query: Result<ApiQuery<PageQuery>, Problem>,
) -> Result<Json<Page<PortfolioSummary>>, Problem> {
    let student = caller
        .student_uid()
        .ok_or_else(|| Problem::forbidden("only a student has portfolios of their own"))?;
    let ApiQuery(query) = query?;
    let limit = cursor::limit(query.limit)?;
    let after: Option<PortfolioId> = cursor::decode(MY_PORTFOLIOS_LIST, query.cursor.as_deref())?;
    reads::caught_up(&state, "portfolio").await?;
    let items = portfolio::portfolios_of_student(&state.pool, student, after, limit, today())
        .await
        .map_err(reads::read_failed)?;
    Ok(Json(Page::keyset(MY_PORTFOLIOS_LIST, items, limit, |p| {
        p.portfolio_id
    })))
}

#[derive(Debug, Deserialize)]
pub struct ProgramPortfoliosQuery {
    pub phase: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// `GET /programs/{program_id}/portfolios?phase=&cursor=&limit=` (coordinator of the program): the
/// program's portfolios by id, optionally of one phase (`collecting`, `applied`, `certified`,
/// `revoked`).
#[utoipa::path(
    get,
    path = "/programs/{program_id}/portfolios",
    tag = "portfolios",
    params(
        ProgramPath,
        ("phase" = Option<String>, Query, description = "collecting, applied, certified or revoked"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("limit" = Option<i64>, Query, description = "Page size, 1-200 (default 50)"),
    ),
    responses((status = 200, description = "One page of the program's portfolios", body = Page<PortfolioSummary>))
)]
pub async fn of_program(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(path): ApiPath<ProgramPath>,
    query: Result<ApiQuery<ProgramPortfoliosQuery>, Problem>,
) -> Result<Json<Page<PortfolioSummary>>, Problem> {
    reads::coordinator_of(&caller, path.program_id)?;
    let ApiQuery(query) = query?;
    let phase = query
        .phase
        .as_deref()
        .map(|p| {
            PhaseName::parse(p).ok_or_else(|| {
                Problem::bad_request(
                    "invalid_query",
                    "phase must be collecting, applied, certified or revoked",
                )
                .with_field("phase")
            })
        })
        .transpose()?;
    let limit = cursor::limit(query.limit)?;
    let after: Option<PortfolioId> = cursor::decode(PORTFOLIOS_LIST, query.cursor.as_deref())?;
    reads::caught_up(&state, "portfolio").await?;
    let items = portfolio::portfolios_of_program(
        &state.pool,
        path.program_id,
        phase,
        after,
        limit,
        today(),
    )
    .await
    .map_err(reads::read_failed)?;
    Ok(Json(Page::keyset(PORTFOLIOS_LIST, items, limit, |p| {
        p.portfolio_id
    })))
}
