//! The coordinator pages: the programs a coordinator is assigned to, each program's home (review
//! queue, students at risk, search, applications ready for approval), a portfolio with its
//! reflections and the decisions on them, its history, and the program's audit log.
//!
//! Access is the API's: a coordinator of the program (or of the portfolio's program), everyone
//! else 404. Reads come from the read models and the folded streams after that check; every
//! decision goes through the API's JSON routes (`Console::api_post`).

mod catalog;
mod history;
mod portfolio;
mod programs;

use super::pages::{self, Ctx};
use super::{Console, ConsoleRoute, r};
use crate::domain::portfolio::Portfolio;
use crate::domain::program::Program;
use crate::domain::{PortfolioId, PortfolioState, ProgramId};
use crate::http::auth::{Role, SignedIn};
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::collections::HashMap;
use std::sync::Arc;
use tower::ServiceExt;

/// The routes of this area.
pub fn routes() -> Vec<ConsoleRoute> {
    use Method as M;
    vec![
        r(M::GET, "/console/programs", get(programs::list)),
        r(
            M::GET,
            "/console/programs/{program_id}",
            get(programs::home),
        ),
        r(
            M::POST,
            "/console/programs/{program_id}",
            post(programs::search),
        ),
        r(
            M::GET,
            "/console/programs/{program_id}/ready",
            get(programs::ready),
        ),
        r(
            M::POST,
            "/console/programs/{program_id}/approve",
            post(programs::approve),
        ),
        r(
            M::GET,
            "/console/programs/{program_id}/catalog",
            get(catalog::page),
        ),
        r(
            M::POST,
            "/console/programs/{program_id}/catalog",
            post(catalog::add),
        ),
        r(
            M::POST,
            "/console/programs/{program_id}/catalog/{item}/rename",
            post(catalog::rename),
        ),
        r(
            M::POST,
            "/console/programs/{program_id}/catalog/{item}/retire",
            post(catalog::retire),
        ),
        r(
            M::POST,
            "/console/programs/{program_id}/rules",
            post(catalog::change_rules),
        ),
        r(
            M::GET,
            "/console/programs/{program_id}/audit",
            get(history::audit),
        ),
        r(
            M::GET,
            "/console/programs/{program_id}/audit.csv",
            get(history::audit_csv),
        ),
        r(
            M::GET,
            "/console/portfolios/{portfolio_id}",
            get(portfolio::page),
        ),
        r(
            M::POST,
            "/console/portfolios/{portfolio_id}/decide",
            post(portfolio::decide),
        ),
        r(
            M::GET,
            "/console/portfolios/{portfolio_id}/history",
            get(history::history),
        ),
        r(
            M::GET,
            "/console/portfolios/{portfolio_id}/media/{sha256}",
            get(portfolio::media),
        ),
    ]
}

/// What a page may fail with: a response already made (404, 500).
type Page<T> = Result<T, Response>;

/// A path segment as an id; anything else is a page that does not exist.
#[allow(clippy::result_large_err)] // Like every page helper here: the error is the page.
fn parse_id<T: std::str::FromStr>(ctx: &Ctx, raw: &str) -> Page<T> {
    raw.parse().map_err(|_| ctx.not_found())
}

/// The program, when the signed-in person coordinates it (the API's `reads::coordinator_of`);
/// 404 otherwise, so another program's pages look like pages that do not exist.
async fn program_of(console: &Console, ctx: &Ctx, raw: &str) -> Page<Program> {
    let id: ProgramId = parse_id(ctx, raw)?;
    if ctx.session.caller.role != Role::Coordinator || !ctx.session.caller.coordinates(id) {
        return Err(ctx.not_found());
    }
    let (state, _) = console
        .app
        .commands
        .load_program(id)
        .await
        .map_err(|e| pages::failure(ctx.lang, &e))?;
    state.registered().cloned().ok_or_else(|| ctx.not_found())
}

/// A portfolio folded from its stream (personal data included) with its version, when the
/// signed-in person coordinates its program (the API's `access::may_see` for coordinators).
async fn portfolio_of(console: &Console, ctx: &Ctx, raw: &str) -> Page<(Arc<PortfolioState>, i32)> {
    let id: PortfolioId = parse_id(ctx, raw)?;
    if ctx.session.caller.role != Role::Coordinator {
        return Err(ctx.not_found());
    }
    let (state, version) = console
        .app
        .commands
        .load_portfolio(id)
        .await
        .map_err(|e| pages::failure(ctx.lang, &e))?;
    match state.opened() {
        Some(p) if ctx.session.caller.coordinates(p.program_id) => Ok((state, version)),
        _ => Err(ctx.not_found()),
    }
}

/// Who a student is, as the coordinator sees them (empty once erased).
#[derive(Debug, Clone, Default)]
struct Student {
    name: String,
    /// The identity number's 12 digits.
    number: String,
}

fn student_of(p: &Portfolio) -> Student {
    p.student
        .as_ref()
        .map(|s| Student {
            name: format!("{} {}", s.name.given_names(), s.name.family_name()),
            number: s.identity_number.as_str().to_owned(),
        })
        .unwrap_or_default()
}

/// The students of these portfolios, by portfolio. The names are sealed in the log: they are
/// folded here only for portfolios of a program the caller coordinates (checked by the callers,
/// which pass only ids of such a program's read models), and never logged.
async fn students(
    console: &Console,
    ctx: &Ctx,
    ids: Vec<PortfolioId>,
) -> Page<HashMap<PortfolioId, Student>> {
    let mut found = HashMap::new();
    for id in ids {
        if found.contains_key(&id) {
            continue;
        }
        let (state, _) = console
            .app
            .commands
            .load_portfolio(id)
            .await
            .map_err(|e| pages::failure(ctx.lang, &e))?;
        if let Some(p) = state.opened()
            && ctx.session.caller.coordinates(p.program_id)
        {
            found.insert(id, student_of(p));
        }
    }
    Ok(found)
}

/// A GET of the API as the signed-in person, answered as the API answered it (status, type,
/// body streamed): for what a browser cannot fetch from the API itself with its cookie (media
/// files, CSV), so the API's checks and its bytes are the console's.
async fn forward(console: &Console, ctx: &Ctx, path: &str, headers: &HeaderMap) -> Response {
    let mut request = Request::builder().method(Method::GET).uri(path);
    // Seeking in a recording asks for ranges.
    for name in [header::RANGE, header::IF_NONE_MATCH] {
        if let Some(value) = headers.get(&name) {
            request = request.header(name, value);
        }
    }
    let Ok(mut request) = request.body(Body::empty()) else {
        return ctx.not_found();
    };
    request
        .extensions_mut()
        .insert(SignedIn(ctx.session.caller.clone()));
    let answer = console
        .api
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    if answer.status().is_client_error() && answer.status().as_u16() != 416 {
        // The API's 403/404 (and malformed paths) are the console's 404.
        return ctx.not_found();
    }
    answer.into_response()
}
