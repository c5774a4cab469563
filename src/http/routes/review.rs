//! A program's review queue: what waits for its coordinators, oldest first.

use crate::http::auth::Caller;
use crate::http::cursor::{self, Page};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::problem::Problem;
use crate::http::reads::{self, PageQuery, ProgramPath};
use crate::http::state::AppState;
use crate::projections::read_models::review_queue::{self, QueueEntry, QueuePosition};
use axum::Json;
use axum::extract::State;

/// The list a review-queue cursor belongs to.
const QUEUE_LIST: &str = "review_queue";

/// `GET /programs/{program_id}/review-queue?cursor=&limit=` (coordinator of the program):
/// reflections, final reflections and applications waiting for a decision, oldest first, each with
/// how long it has waited (`waited_seconds`, `waited_days`, at the time of the request). Paged by
/// (submission time, position): an item decided while the coordinator walks the pages simply drops
/// out, and one submitted meanwhile appears on the last page, never twice.
#[utoipa::path(
    get,
    path = "/programs/{program_id}/review-queue",
    tag = "reviews",
    params(
        ProgramPath,
        PageQuery,
    ),
    responses((status = 200, description = "One page of the waiting items, oldest first", body = Page<QueueEntry>))
)]
pub async fn queue(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(path): ApiPath<ProgramPath>,
    query: Result<ApiQuery<PageQuery>, Problem>,
) -> Result<Json<Page<QueueEntry>>, Problem> {
    reads::coordinator_of(&caller, path.program_id)?;
    let ApiQuery(query) = query?;
    let limit = cursor::limit(query.limit)?;
    let after: Option<QueuePosition> = cursor::decode(QUEUE_LIST, query.cursor.as_deref())?;
    reads::caught_up(&state, "review_queue").await?;
    let now = chrono::Utc::now();
    let items = review_queue::review_queue(&state.pool, path.program_id, now, after, limit)
        .await
        .map_err(reads::read_failed)?;
    Ok(Json(Page::keyset(QUEUE_LIST, items, limit, |e| {
        QueuePosition {
            submitted_at: e.submitted_at,
            position: e.position,
        }
    })))
}
