//! The administrator's pages: the programs with their catalogs, rules (and their versions) and
//! coordinators (`programs`), erasing a student's personal data with a confirmation step
//! (`erasure`), and the service's health (`health`).
//!
//! Access is the API's: administrators only, everyone else 404. Registering a program and
//! assigning coordinators go through the API (`POST /programs`, `/programs/{id}/coordinators`);
//! a program's catalog and rules are its coordinators' to change (`access::coordinator_of` in the
//! API), so the administrator sees them here without forms to change them.

mod erasure;
mod health;
mod programs;

pub(super) use programs::registered;

use super::pages::Ctx;
use super::{ConsoleRoute, r};
use crate::http::auth::Role;
use axum::http::Method;
use axum::response::Response;
use axum::routing::{get, post};

/// The routes of this area.
pub fn routes() -> Vec<ConsoleRoute> {
    use Method as M;
    vec![
        r(M::GET, "/console/admin/programs", get(programs::list)),
        r(M::POST, "/console/admin/programs", post(programs::register)),
        r(
            M::GET,
            "/console/admin/programs/{program_id}",
            get(programs::show),
        ),
        r(
            M::POST,
            "/console/admin/programs/{program_id}/coordinators",
            post(programs::assign),
        ),
        r(
            M::POST,
            "/console/admin/programs/{program_id}/coordinators/unassign",
            post(programs::unassign),
        ),
        r(M::GET, "/console/admin/erasure", get(erasure::page)),
        r(M::POST, "/console/admin/erasure", post(erasure::check)),
        r(
            M::POST,
            "/console/admin/erasure/confirm",
            post(erasure::confirm),
        ),
        r(M::GET, "/console/admin/health", get(health::page)),
    ]
}

/// The 404 for everyone but administrators (the API's `access::admin`).
fn not_admin(ctx: &Ctx) -> Option<Response> {
    (ctx.session.caller.role != Role::Admin).then(|| ctx.not_found())
}
