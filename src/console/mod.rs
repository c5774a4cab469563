//! The web console: server-rendered pages for the people who run the CIM (coordinators, the
//! registrar's office, administrators) and for students, in Swedish and English, from the same
//! process and the same read models as the API.
//!
//! - Pages are `maud` templates (checked when the crate compiles), styled by one plain CSS file
//!   and helped by one small script of our own (`assets/`), both served from the binary; nothing
//!   is fetched from elsewhere, so the strict security headers stay (CSP `'self'`, no inline
//!   script or style).
//! - Who is signed in lives in a server-side session (`session`), started by the university's
//!   identity provider (`oidc`) or, in development only, by picking a demo person (`signin`).
//! - Reads come from the read models, behind the same access rules as the API's reads (`reads`
//!   of `http`); writes go *through* the API in this process (`api`), so a page can do nothing the
//!   API would refuse, and every form carries the session's CSRF token and an idempotency key
//!   (`pages::Posted`).
//! - Texts are Fluent files per area (`locales/<lang>/<area>.ftl`, `i18n`).
//!
//! The areas, one module each: `student`, `coordinator`, `registrar`, `admin`, `evaluation`.
//! Every console route is listed once, in [`routes`]; the console's tests walk that list (every
//! page wants a session, every form a CSRF token).

pub mod api;
mod assets;
pub mod i18n;
pub mod layout;
pub mod oidc;
pub mod pages;
pub mod paths;
mod program_rules;
pub mod session;
mod signin;

mod admin;
mod coordinator;
mod evaluation;
mod registrar;
mod student;

use crate::http::{self, AppState};
use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use std::sync::Arc;

/// What every console handler shares.
#[derive(Debug, Clone)]
pub struct Console {
    pub app: AppState,
    /// The API's router, which the console's writes go through (`api`).
    api: Router,
    /// The identity provider, when `CIM_OIDC_ISSUER` is set.
    oidc: Option<Arc<oidc::Provider>>,
    /// What the sign-in button calls the provider (`CIM_OIDC_NAME`).
    oidc_label: Option<String>,
    /// Whether the development sign-in is offered (`CIM_JWT_DEV_SECRET` is set).
    dev_signin: bool,
}

/// How the console is set up.
#[derive(Debug, Default)]
pub struct ConsoleSettings {
    pub oidc: Option<(Arc<oidc::Provider>, String)>,
    pub dev_signin: bool,
}

/// One console route.
#[derive(Debug)]
pub struct ConsoleRoute {
    pub method: Method,
    pub path: &'static str,
    pub handler: MethodRouter<Console>,
}

pub(crate) fn r(
    method: Method,
    path: &'static str,
    handler: MethodRouter<Console>,
) -> ConsoleRoute {
    ConsoleRoute {
        method,
        path,
        handler,
    }
}

/// Every route of the console.
pub fn routes() -> Vec<ConsoleRoute> {
    use Method as M;
    let mut all = vec![
        r(M::GET, "/console", get(signin::home)),
        r(M::GET, "/console/signin", get(signin::page)),
        r(M::POST, "/console/signin/dev", post(signin::dev)),
        r(M::GET, "/console/signin/oidc", get(signin::oidc_begin)),
        r(M::GET, "/console/callback", get(signin::oidc_callback)),
        r(M::POST, "/console/signout", post(signin::sign_out)),
        r(M::GET, "/console/language", get(signin::language)),
        r(M::GET, "/console/assets/{name}", get(assets::serve)),
    ];
    all.extend(student::routes());
    all.extend(coordinator::routes());
    all.extend(registrar::routes());
    all.extend(admin::routes());
    all.extend(evaluation::routes());
    all
}

/// Every console route as (method, path template).
pub fn route_list() -> Vec<(Method, &'static str)> {
    routes().into_iter().map(|r| (r.method, r.path)).collect()
}

/// The API and the console in one router: what `cim serve` serves.
pub fn router(state: AppState, settings: ConsoleSettings) -> Router {
    let api = http::router(state.clone());
    let (oidc, oidc_label) = match settings.oidc {
        Some((provider, label)) => (Some(provider), Some(label)),
        None => (None, None),
    };
    let console = Console {
        app: state,
        api: api.clone(),
        oidc,
        oidc_label,
        dev_signin: settings.dev_signin,
    };
    let mut pages = Router::new();
    for route in routes() {
        pages = pages.route(route.path, route.handler);
    }
    let pages = pages
        .route("/", get(|| async { Redirect::to("/console") }))
        .layer(axum::middleware::from_fn(http::problem::catch_panic))
        .layer(axum::middleware::from_fn(headers))
        .with_state(console);
    pages.merge(api)
}

/// The console's policy: our own scripts, styles, images and media only, forms only to us, never
/// in a frame. (The API's is stricter, `default-src 'none'`: it serves no pages.)
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   media-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; \
                   frame-ancestors 'none'";

/// Middleware: the security headers of every console answer.
async fn headers(request: axum::extract::Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    // Pages hold personal data: never cached. The assets set their own.
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
