//! The HTTP API. `router` is built in the library so tests can serve it on port 0 or call it
//! directly.
//!
//! Every route is listed once, in [`routes::all`]; the router is built from that list and the
//! authorisation test walks the same list, so a route cannot be added without being tested.
//!
//! The modules, top-down: each imports only modules on lines below its own, so `http` has no
//! circle of imports (modules on one line do not import each other).
//!
//! 1. this file: [`router`] (the middleware stack over the routes) and [`route_list`];
//! 2. [`routes`]: the table of routes (`routes::all`) and the OpenAPI document
//!    ([`routes::openapi`]), the only modules that name the route files;
//! 3. the route files, `routes::*`, one per resource: each imports modules below, never another
//!    route file (a file's own submodules, such as `routes::exports::files`, are its own);
//! 4. `pipeline`: the command skeleton of every write route (one extractor for the request, the
//!    steps of a portfolio or program command, the answer); `reads`: what the read routes share;
//! 5. [`extract`]: the extractors that answer bad input with a problem, and the `Caller` of a
//!    request; `media_ref`: how a command body names an upload;
//! 6. [`state`]: the application state every handler shares, and how it is built;
//! 7. [`command`]: what a command request carries besides its body (idempotency key, `If-Match`)
//!    and the versioned answer;
//! 8. `access` (who may do what), `docs` and `paths` (the OpenAPI headers and answers, the path
//!    parameters), `bodies` (request bodies several routes take);
//! 9. `view`: what the API answers about a program and a portfolio;
//! 10. [`auth`]: bearer tokens and who the caller is;
//! 11. [`metrics`]: the request span and the Prometheus counters; [`cursor`]: opaque cursors and
//!     page sizes of the lists;
//! 12. [`problem`]: the one error shape (`application/problem+json`) and the status rules;
//!     `headers`: the request id and the security headers on every answer.

pub(crate) mod access;
pub mod auth;
mod bodies;
pub mod command;
pub mod cursor;
mod docs;
pub mod extract;
mod headers;
mod media_ref;
pub mod metrics;
mod paths;
mod pipeline;
pub mod problem;
pub(crate) mod reads;
pub mod routes;
pub mod state;
pub(crate) mod view;

pub use state::{App, AppState};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Method;

/// Every route as (method, path template), in the order registered.
pub fn route_list() -> Vec<(Method, &'static str)> {
    routes::all()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect()
}

pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for route in routes::all() {
        router = router.route(route.path, route.handler);
    }
    let metrics = state.metrics.clone();
    router
        .fallback(problem::no_such_route)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(DefaultBodyLimit::max(extract::JSON_BODY_LIMIT))
        .layer(axum::middleware::from_fn(problem::catch_panic))
        // Inside `request_id` (so the span has the id), outside `catch_panic` (so a panic's 500 is
        // observed too).
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics::observe,
        ))
        .layer(axum::middleware::from_fn(headers::request_id))
        .layer(axum::middleware::from_fn(headers::security_headers))
        .with_state(state)
}
