//! The resources of the API, one file each, and the single list of routes ([`all`]).
//!
//! Commands are POSTs that answer with the updated view and its ETag. Handlers check, in this order:
//! who is calling (401), whether their role may use the route (403), whether they may see the object
//! (404), and only then read the body (400/415/422) and run the command, which the command handler
//! decides only if the stream is still at the `If-Match` version (412); the steps are written once,
//! in `http::pipeline`.
//!
//! This module and [`openapi`] are the only ones that name the route files. A route file imports
//! the shared modules below it in `http` (state, extract, pipeline, access, …), never another
//! route file; what two of them share moves down into `http`.

mod activities;
mod application;
mod audit;
mod certificates;
mod completion;
mod credentials;
mod erasure;
mod exports;
mod extensions;
mod lists;
mod media;
mod notifications;
pub mod openapi;
mod operations;
mod portfolios;
mod programs;
mod reflections;
mod review;
mod revocation;
mod statistics;

use super::state::AppState;
use axum::http::Method;
use axum::routing::{MethodRouter, get, post, put};
use reflections::{Activity, Final};

/// One route: method, path template and handler.
#[derive(Debug)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub handler: MethodRouter<AppState>,
}

fn r(method: Method, path: &'static str, handler: MethodRouter<AppState>) -> Route {
    Route {
        method,
        path,
        handler,
    }
}

/// Every route of the API. The router is built from this list, and `tests/it/api/` checks its
/// authorisation table against it.
pub fn all() -> Vec<Route> {
    use Method as M;
    vec![
        r(M::GET, "/healthz", get(operations::healthz)),
        r(M::GET, "/readyz", get(operations::readyz)),
        r(M::GET, "/openapi.json", get(openapi::openapi_json)),
        r(M::GET, "/metrics", get(operations::metrics)),
        // Programs and catalogs.
        r(M::POST, "/programs", post(programs::register)),
        r(M::GET, "/programs/{program_id}", get(programs::show)),
        r(
            M::POST,
            "/programs/{program_id}/coordinators",
            post(programs::assign_coordinator),
        ),
        r(
            M::POST,
            "/programs/{program_id}/coordinators/unassign",
            post(programs::unassign_coordinator),
        ),
        r(
            M::POST,
            "/programs/{program_id}/catalog",
            post(programs::add_item),
        ),
        r(
            M::POST,
            "/programs/{program_id}/catalog/{item}/rename",
            post(programs::rename_item),
        ),
        r(
            M::POST,
            "/programs/{program_id}/catalog/{item}/retire",
            post(programs::retire_item),
        ),
        r(
            M::POST,
            "/programs/{program_id}/rules",
            post(programs::change_rules),
        ),
        // Portfolios.
        r(
            M::POST,
            "/programs/{program_id}/portfolios",
            post(portfolios::open),
        ),
        r(M::GET, "/portfolios/{portfolio_id}", get(portfolios::show)),
        // The expected completion date: given at enrolment, confirmed or set by a coordinator,
        // proposed by the student.
        r(
            M::POST,
            "/portfolios/{portfolio_id}/expected-completion",
            post(completion::set),
        ),
        r(
            M::POST,
            "/portfolios/{portfolio_id}/expected-completion/confirm",
            post(completion::confirm),
        ),
        r(
            M::POST,
            "/portfolios/{portfolio_id}/expected-completion/proposal",
            post(completion::propose),
        ),
        r(
            M::POST,
            "/portfolios/{portfolio_id}/expected-completion/proposal/accept",
            post(completion::accept),
        ),
        r(
            M::POST,
            "/portfolios/{portfolio_id}/expected-completion/proposal/decline",
            post(completion::decline),
        ),
        // Activities and their reflections.
        r(
            M::POST,
            "/portfolios/{portfolio_id}/activities",
            post(activities::log),
        ),
        r(
            M::POST,
            "/portfolios/{portfolio_id}/activities/{activity_id}/withdraw",
            post(activities::withdraw),
        ),
        r(
            M::POST,
            "/portfolios/{portfolio_id}/activities/{activity_id}/reflection",
            post(reflections::submit::<Activity>),
        ),
        r(
            M::POST,
            "/portfolios/{portfolio_id}/activities/{activity_id}/reflection/resubmit",
            post(reflections::resubmit::<Activity>),
        ),
        r(
            M::POST,
            "/portfolios/{portfolio_id}/activities/{activity_id}/reflection/approve",
            post(reflections::approve::<Activity>),
        ),
        r(
            M::POST,
            "/portfolios/{portfolio_id}/activities/{activity_id}/reflection/return",
            post(reflections::return_for_revision::<Activity>),
        ),
        // The final reflection.
        r(
            M::POST,
            "/portfolios/{portfolio_id}/final-reflection",
            post(reflections::submit::<Final>),
        ),
        r(
            M::POST,
            "/portfolios/{portfolio_id}/final-reflection/resubmit",
            post(reflections::resubmit::<Final>),
        ),
        r(
            M::POST,
            "/portfolios/{portfolio_id}/final-reflection/approve",
            post(reflections::approve::<Final>),
        ),
        r(
            M::POST,
            "/portfolios/{portfolio_id}/final-reflection/return",
            post(reflections::return_for_revision::<Final>),
        ),
        // Deadline extensions, the application and revocation.
        r(
            M::POST,
            "/portfolios/{portfolio_id}/extensions",
            post(extensions::grant),
        ),
        r(
            M::POST,
            "/portfolios/{portfolio_id}/application",
            post(application::apply),
        ),
        r(
            M::POST,
            "/portfolios/{portfolio_id}/application/approve",
            post(application::approve),
        ),
        r(
            M::POST,
            "/portfolios/{portfolio_id}/application/reject",
            post(application::reject),
        ),
        r(
            M::POST,
            "/portfolios/{portfolio_id}/revocation",
            post(revocation::revoke),
        ),
        // Media: raw-body uploads (their own size limit, not the JSON one) and downloads.
        r(
            M::POST,
            "/portfolios/{portfolio_id}/media",
            post(media::upload).layer(axum::extract::DefaultBodyLimit::disable()),
        ),
        r(
            M::GET,
            "/portfolios/{portfolio_id}/media/{sha256}",
            get(media::download),
        ),
        // Reads: lists, review queues, audit, statistics and the registrar's certificates.
        r(M::GET, "/me/portfolios", get(lists::mine)),
        r(
            M::GET,
            "/programs/{program_id}/portfolios",
            get(lists::of_program),
        ),
        r(
            M::GET,
            "/programs/{program_id}/review-queue",
            get(review::queue),
        ),
        r(
            M::GET,
            "/portfolios/{portfolio_id}/history",
            get(audit::history),
        ),
        r(
            M::GET,
            "/portfolios/{portfolio_id}/history.csv",
            get(audit::history_csv),
        ),
        r(
            M::GET,
            "/portfolios/{portfolio_id}/as-of",
            get(audit::as_of),
        ),
        r(
            M::GET,
            "/programs/{program_id}/audit",
            get(audit::program_log),
        ),
        r(
            M::GET,
            "/programs/{program_id}/audit.csv",
            get(audit::program_log_csv),
        ),
        r(M::GET, "/statistics", get(statistics::overall)),
        r(
            M::GET,
            "/programs/{program_id}/statistics",
            get(statistics::of_program),
        ),
        r(M::GET, "/certificates", get(certificates::list)),
        r(
            M::GET,
            "/certificates/{certificate_id}",
            get(certificates::show),
        ),
        // The registrar's export batches (src/export/worker).
        r(M::GET, "/exports/batches", get(exports::list)),
        r(M::GET, "/exports/batches/{batch_id}", get(exports::show)),
        r(
            M::GET,
            "/exports/batches/{batch_id}/files/{name}",
            get(exports::download),
        ),
        r(
            M::POST,
            "/exports/batches/{batch_id}/acknowledge",
            post(exports::acknowledge),
        ),
        r(
            M::POST,
            "/exports/batches/{batch_id}/redeliver",
            post(exports::redeliver),
        ),
        r(M::POST, "/exports/run", post(exports::run)),
        // Erasure of a student's personal data (GDPR).
        r(
            M::POST,
            "/students/{student_uid}/erasure",
            post(erasure::erase),
        ),
        // Open Badges credentials: the student's download, the public issuer, keys, status list
        // and verification, and the registrar's view of the issue.
        r(
            M::GET,
            "/portfolios/{portfolio_id}/credential",
            get(credentials::download),
        ),
        r(
            M::GET,
            "/portfolios/{portfolio_id}/certificate.pdf",
            get(credentials::pdf),
        ),
        r(M::GET, "/issuer", get(credentials::profile)),
        r(M::GET, "/issuer/keys", get(credentials::keys)),
        r(
            M::GET,
            "/credentials/status/{list}",
            get(credentials::status_list),
        ),
        r(
            M::GET,
            "/credentials/{credential_id}",
            get(credentials::show),
        ),
        r(M::POST, "/verify", post(credentials::verify)),
        r(
            M::GET,
            "/certificates/{certificate_id}/credential",
            get(credentials::issued),
        ),
        // Notifications: one's own settings; the outbox for administrators.
        r(M::GET, "/me/notifications", get(notifications::mine)),
        r(M::PUT, "/me/notifications", put(notifications::set_mine)),
        r(M::GET, "/notifications/outbox", get(notifications::list)),
        r(
            M::POST,
            "/notifications/outbox/{id}/retry",
            post(notifications::retry),
        ),
    ]
}
