//! What is not a page or a form: the upload of a recording (the raw file, sent by the page's script
//! with the session's CSRF token in `X-CSRF-Token`), and the approved certificate's printable PDF
//! and Open Badges credential. Each is the API's route asked as the student (`console.api_raw`):
//! the browser has a session cookie, not a token, and the API's answer is handed on unchanged.

use crate::console::Console;
use crate::console::pages::{self, Ctx};
use crate::domain::PortfolioId;
use crate::http::auth::Role;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct OnPortfolio {
    portfolio_id: PortfolioId,
}

/// The header the upload script sends the session's CSRF token in (`assets/console.js`).
const CSRF_HEADER: &str = "x-csrf-token";

/// `POST /console/me/portfolios/{id}/media`: the raw file, stored as the API's
/// `POST /portfolios/{id}/media` stores it; answered with its JSON (`sha256`, type, duration).
/// Refused with 403 without this session's token in `X-CSRF-Token`, before the body is read.
pub async fn upload(
    State(console): State<Console>,
    Path(path): Path<OnPortfolio>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    if !ctx.session.check_csrf(sent) {
        return pages::forbidden(ctx.lang);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let api_path = format!("/portfolios/{}/media", path.portfolio_id);
    console
        .api_raw(
            &ctx.session,
            Method::POST,
            &api_path,
            content_type,
            body,
            None,
        )
        .await
}

/// An API file of the student's own portfolio, or 404 (the API's 403 and 404 alike, as the
/// console shows what one may not see).
async fn file_of(console: &Console, ctx: &Ctx, api_path: &str) -> Response {
    if ctx.session.caller.role != Role::Student {
        return ctx.not_found();
    }
    let answer = console
        .api_raw(
            &ctx.session,
            Method::GET,
            api_path,
            None,
            Body::empty(),
            None,
        )
        .await;
    match answer.status() {
        StatusCode::OK => answer,
        _ => ctx.not_found(),
    }
}

/// `GET /console/me/portfolios/{id}/certificate.pdf`: the printable certificate, in the page's
/// language.
pub async fn certificate(
    State(console): State<Console>,
    Path(path): Path<OnPortfolio>,
    ctx: Ctx,
) -> Response {
    let api_path = format!(
        "/portfolios/{}/certificate.pdf?lang={}",
        path.portfolio_id,
        ctx.lang.tag()
    );
    file_of(&console, &ctx, &api_path).await
}

/// `GET /console/me/portfolios/{id}/credential`: the Open Badges credential (VC-JWT).
pub async fn credential(
    State(console): State<Console>,
    Path(path): Path<OnPortfolio>,
    ctx: Ctx,
) -> Response {
    let api_path = format!("/portfolios/{}/credential", path.portfolio_id);
    file_of(&console, &ctx, &api_path).await
}
