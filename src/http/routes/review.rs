//! A program's review queue: what waits for its coordinators, oldest first.

use super::reads::{self, ProgramPath};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::cursor::{self, Page};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::problem::Problem;
use crate::projections::read_models::review_queue::{self, QueueEntry};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct QueueQuery {
    pub limit: Option<i64>,
}

/// `GET /programs/{program_id}/review-queue` (coordinator of the program): reflections, final
/// reflections and applications waiting for a decision, oldest first, each with how long it has
/// waited (`waited_seconds`, `waited_days`, at the time of the request). The queue is an inbox, not
/// an archive: it answers its oldest `limit` items and no cursor (`next_cursor` is always `null`).
#[utoipa::path(
    get,
    path = "/programs/{program_id}/review-queue",
    tag = "reviews",
    security(("bearer" = [])),
    params(
        ("program_id" = Uuid, Path, description = "The program"),
        ("limit" = Option<i64>, Query, description = "At most this many items (1-200, default 50)"),
    ),
    responses((status = 200, description = "The oldest waiting items", body = reads::ItemPage))
)]
pub async fn queue(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(path): ApiPath<ProgramPath>,
    query: Result<ApiQuery<QueueQuery>, Problem>,
) -> Result<Json<Page<QueueEntry>>, Problem> {
    reads::coordinator_of(&caller, path.program_id)?;
    let ApiQuery(query) = query?;
    let limit = cursor::limit(query.limit)?;
    reads::caught_up(&state, "review_queue").await?;
    let items = review_queue::review_queue(&state.pool, path.program_id, chrono::Utc::now(), limit)
        .await
        .map_err(reads::read_failed)?;
    Ok(Json(Page::whole(items)))
}
