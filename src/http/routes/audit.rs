//! The coordinator's audit: a portfolio's full history (JSON and CSV), the portfolio as it stood at
//! a past moment, and the program-wide log filtered by time, actor and event type (JSON pages and
//! CSV).
//!
//! Coordinators of the portfolio's (or program's) own program only, as `docs/domain.md` gives the
//! audit to them. The student does not read the audit: their portfolio answer already shows every
//! attempt, review and piece of feedback, and the audit adds staff ids and correlation ids that are
//! the program's records. Entries carry the events' content with the personal data as far as it has
//! not been erased, so a CSV export is personal data and is counted (`cim_exports_total`).

use crate::http::auth::Caller;
use crate::http::cursor::{self, Page};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::problem::Problem;
use crate::http::reads::{self, PageQuery, PortfolioPath, ProgramPath};
use crate::http::state::AppState;
use crate::projections::read_models::audit::{self, AuditEntry, AuditFilter};
use crate::projections::read_models::portfolio::PortfolioPage;
use crate::store::Checkpoint;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// The lists the cursors belong to.
const AUDIT_LIST: &str = "audit";
const HISTORY_LIST: &str = "history";
/// Rows per database page while writing a program's CSV.
const CSV_PAGE: i64 = 1000;

/// `GET /portfolios/{portfolio_id}/history?cursor=&limit=` (coordinator of its program): every
/// event of the portfolio in stream order, with actor, role, time, correlation id and content, in
/// pages keyed by stream version.
#[utoipa::path(
    get,
    path = "/portfolios/{portfolio_id}/history",
    tag = "audit",
    params(
        PortfolioPath,
        PageQuery,
    ),
    responses((status = 200, description = "One page of the portfolio's events, oldest first", body = Page<AuditEntry>))
)]
pub async fn history(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(path): ApiPath<PortfolioPath>,
    query: Result<ApiQuery<PageQuery>, Problem>,
) -> Result<Json<Page<AuditEntry>>, Problem> {
    reads::audited_portfolio(&state, &caller, path.portfolio_id).await?;
    let ApiQuery(query) = query?;
    let limit = cursor::limit(query.limit)?;
    let after: Option<i32> = cursor::decode(HISTORY_LIST, query.cursor.as_deref())?;
    reads::caught_up(&state, "audit").await?;
    let entries = audit::portfolio_history_page(&state.pool, path.portfolio_id, after, Some(limit))
        .await
        .map_err(reads::read_failed)?;
    Ok(Json(Page::keyset(HISTORY_LIST, entries, limit, |e| {
        e.stream_version
    })))
}

/// `GET /portfolios/{portfolio_id}/history.csv` (coordinator of its program): the same as CSV
/// (RFC 4180, header row, one row per event).
#[utoipa::path(
    get,
    path = "/portfolios/{portfolio_id}/history.csv",
    tag = "audit",
    params(PortfolioPath),
    responses((status = 200, description = "position, recorded_at, event_type, actor_role, actor_id, correlation_id, content", content_type = "text/csv"))
)]
pub async fn history_csv(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(path): ApiPath<PortfolioPath>,
) -> Result<Response, Problem> {
    reads::audited_portfolio(&state, &caller, path.portfolio_id).await?;
    reads::caught_up(&state, "audit").await?;
    let entries = audit::portfolio_history(&state.pool, path.portfolio_id)
        .await
        .map_err(reads::read_failed)?;
    Ok(csv_response(
        &state,
        &audit::audit_csv(&entries),
        &format!("portfolio-{}-history.csv", path.portfolio_id),
    ))
}

#[derive(Debug, Deserialize)]
pub struct AsOfQuery {
    pub at: Option<String>,
}

/// `GET /portfolios/{portfolio_id}/as-of?at=2026-03-01T12:00:00Z` (coordinator of its program):
/// the portfolio as it stood at that moment, built like the live one, with the days left as of that
/// day. `at` must be an RFC 3339 time with an offset, not in the future (`400 invalid_query`,
/// `field: "at"`); before the portfolio was opened it is `404 portfolio_not_found`.
#[utoipa::path(
    get,
    path = "/portfolios/{portfolio_id}/as-of",
    tag = "audit",
    params(
        PortfolioPath,
        ("at" = String, Query, description = "An RFC 3339 time, e.g. 2026-03-01T12:00:00+01:00"),
    ),
    responses((status = 200, description = "The portfolio as it stood then", body = PortfolioPage))
)]
pub async fn as_of(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(path): ApiPath<PortfolioPath>,
    query: Result<ApiQuery<AsOfQuery>, Problem>,
) -> Result<Json<PortfolioPage>, Problem> {
    reads::audited_portfolio(&state, &caller, path.portfolio_id).await?;
    let ApiQuery(query) = query?;
    let at = instant("at", query.at.as_deref())?.ok_or_else(|| {
        Problem::bad_request("invalid_query", "at is required: an RFC 3339 time").with_field("at")
    })?;
    if at > Utc::now() {
        return Err(Problem::bad_request(
            "invalid_query",
            "at is in the future; time travel only goes back",
        )
        .with_field("at"));
    }
    let page = audit::portfolio_as_of(&state.pool, path.portfolio_id, at)
        .await
        .map_err(reads::read_failed)?
        .ok_or_else(|| {
            Problem::not_found(
                "portfolio_not_found",
                "the portfolio had not been opened yet at that moment",
            )
        })?;
    Ok(Json(page))
}

/// The filters of a program's log, as the query string names them.
#[derive(Debug, Deserialize)]
pub struct LogQuery {
    pub from: Option<String>,
    pub until: Option<String>,
    pub actor: Option<String>,
    /// One event type or several, comma-separated.
    pub event_type: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

impl LogQuery {
    fn filter(&self) -> Result<AuditFilter, Problem> {
        Ok(AuditFilter {
            from: instant("from", self.from.as_deref())?,
            until: instant("until", self.until.as_deref())?,
            actor_id: self
                .actor
                .as_deref()
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned),
            event_types: self
                .event_type
                .as_deref()
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }
}

/// An optional RFC 3339 query value; 400 naming `field` when it is not one.
fn instant(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, Problem> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    Problem::bad_request(
                        "invalid_query",
                        format!(
                            "{field} must be an RFC 3339 time with an offset, e.g. 2026-03-01T12:00:00Z"
                        ),
                    )
                    .with_field(field)
                })
        })
        .transpose()
}

/// `GET /programs/{program_id}/audit?from=&until=&actor=&event_type=&cursor=&limit=` (coordinator
/// of the program): the program's own events and its portfolios', in log order, filtered, in pages.
#[utoipa::path(
    get,
    path = "/programs/{program_id}/audit",
    tag = "audit",
    params(
        ProgramPath,
        ("from" = Option<String>, Query, description = "Recorded at or after (RFC 3339)"),
        ("until" = Option<String>, Query, description = "Recorded before (RFC 3339)"),
        ("actor" = Option<String>, Query, description = "Caused by this actor id"),
        ("event_type" = Option<String>, Query, description = "Event types, comma-separated"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("limit" = Option<i64>, Query, description = "Page size, 1-200 (default 50)"),
    ),
    responses((status = 200, description = "One page of the program's log", body = Page<AuditEntry>))
)]
pub async fn program_log(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(path): ApiPath<ProgramPath>,
    query: Result<ApiQuery<LogQuery>, Problem>,
) -> Result<Json<Page<AuditEntry>>, Problem> {
    reads::coordinator_of(&caller, path.program_id)?;
    let ApiQuery(query) = query?;
    let filter = query.filter()?;
    let limit = cursor::limit(query.limit)?;
    let after: Option<Checkpoint> = cursor::decode(AUDIT_LIST, query.cursor.as_deref())?;
    reads::caught_up(&state, "audit").await?;
    let page = audit::program_log(&state.pool, path.program_id, &filter, after, limit)
        .await
        .map_err(reads::read_failed)?;
    Ok(Json(Page {
        items: page.entries,
        next_cursor: page.next.map(|at| cursor::encode(AUDIT_LIST, &at)),
    }))
}

/// `GET /programs/{program_id}/audit.csv?from=&until=&actor=&event_type=` (coordinator of the
/// program): every entry the filters select, as one CSV (`cursor` and `limit` do not apply).
#[utoipa::path(
    get,
    path = "/programs/{program_id}/audit.csv",
    tag = "audit",
    params(
        ProgramPath,
        ("from" = Option<String>, Query, description = "Recorded at or after (RFC 3339)"),
        ("until" = Option<String>, Query, description = "Recorded before (RFC 3339)"),
        ("actor" = Option<String>, Query, description = "Caused by this actor id"),
        ("event_type" = Option<String>, Query, description = "Event types, comma-separated"),
    ),
    responses((status = 200, description = "position, recorded_at, event_type, actor_role, actor_id, correlation_id, content: one row per selected event", content_type = "text/csv"))
)]
pub async fn program_log_csv(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(path): ApiPath<ProgramPath>,
    query: Result<ApiQuery<LogQuery>, Problem>,
) -> Result<Response, Problem> {
    reads::coordinator_of(&caller, path.program_id)?;
    let ApiQuery(query) = query?;
    let filter = query.filter()?;
    reads::caught_up(&state, "audit").await?;
    let mut entries = Vec::new();
    let mut after = None;
    loop {
        let page = audit::program_log(&state.pool, path.program_id, &filter, after, CSV_PAGE)
            .await
            .map_err(reads::read_failed)?;
        entries.extend(page.entries);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(csv_response(
        &state,
        &audit::audit_csv(&entries),
        &format!("program-{}-audit.csv", path.program_id),
    ))
}

fn csv_response(state: &AppState, csv: &str, filename: &str) -> Response {
    state.metrics.record_export("audit_csv");
    let mut response = csv.to_owned().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}
