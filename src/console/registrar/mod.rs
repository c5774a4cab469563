//! The registrar's pages: the certificates with their Ladok status, what is still to do by hand
//! and the ones Ladok refused or that are held (`certificates`), and the export batches with
//! their files, downloads, acknowledgement and redelivery (`batches`).
//!
//! Access is the API's (`http::routes::certificates`, `exports`, `credentials`): the registrar
//! only; everyone else gets 404, as for anything they may not see. The pages read the API's own
//! views in this process (`Console::api_get`), so the checks, the caught-up wait and the cursors
//! are the API's; the actions go through its routes (`Console::api_post`).

mod batches;
mod certificates;

use super::api::ApiRefusal;
use super::i18n::Lang;
use super::pages::Ctx;
use super::{ConsoleRoute, r};
use crate::http::auth::Role;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};

/// The routes of this area.
pub fn routes() -> Vec<ConsoleRoute> {
    use Method as M;
    vec![
        r(M::GET, "/console/certificates", get(certificates::list)),
        r(
            M::GET,
            "/console/certificates/{certificate_id}",
            get(certificates::show),
        ),
        r(M::GET, "/console/batches", get(batches::list)),
        r(M::POST, "/console/batches/run", post(batches::run)),
        r(M::GET, "/console/batches/{batch_id}", get(batches::show)),
        r(
            M::GET,
            "/console/batches/{batch_id}/files/{name}",
            get(batches::download),
        ),
        r(
            M::POST,
            "/console/batches/{batch_id}/acknowledge",
            post(batches::acknowledge),
        ),
        r(
            M::POST,
            "/console/batches/{batch_id}/redeliver",
            post(batches::redeliver),
        ),
    ]
}

/// The 404 for everyone but the registrar (the API's `registrar_only`).
fn not_registrar(ctx: &Ctx) -> Option<Response> {
    (ctx.session.caller.role != Role::Registrar).then(|| ctx.not_found())
}

/// The id in a registrar's path: 404 for anyone but the registrar, and for what is not an id.
#[allow(clippy::result_large_err)] // The error is the page.
fn registrar_id(ctx: &Ctx, raw: &str) -> Result<uuid::Uuid, Response> {
    if let Some(no) = not_registrar(ctx) {
        return Err(no);
    }
    uuid::Uuid::parse_str(raw).map_err(|_| ctx.not_found())
}

/// A read the API refused: what does not exist (or is malformed in the path) is not found, like
/// the API's 404; anything else is shown with its reason.
fn read_refused(ctx: &Ctx, refusal: &ApiRefusal, back: &str) -> Response {
    if matches!(
        refusal.status,
        StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN
    ) {
        ctx.not_found()
    } else {
        ctx.refused(refusal, back)
    }
}

/// The text of a status code of the API (`ladok_status`, `export_status`, an item's `ladok`) in
/// the page's language, or the code itself when the files have no text for it.
fn status_text(lang: Lang, group: &str, code: &str) -> String {
    let key = format!("reg-{group}-{}", code.replace('_', "-"));
    let text = lang.t(&key);
    if text == key { code.to_owned() } else { text }
}

/// The text of a failure or refusal reason code (`unavailable`, `rule_error:<group>`,
/// `identity_mismatch`, `holder_erased`, …): our sentence for the code, with Ladok's error group
/// after it when Ladok named one.
fn reason_text(lang: Lang, reason: &str) -> String {
    let (code, group) = match reason.split_once(':') {
        Some((code, group)) => (code, Some(group)),
        None => (reason, None),
    };
    let text = status_text(lang, "reason", code);
    match group {
        Some(group) => format!("{text} ({group})"),
        None => text,
    }
}

/// What to do by hand in Ladok for a step code, in the page's language; `fallback` (the API's or
/// the manifest's English text) when the files have no text for the code.
fn step_text(lang: Lang, code: &str, fallback: Option<&str>) -> String {
    let key = format!("reg-step-{}", code.replace('_', "-"));
    let text = lang.t(&key);
    if text == key {
        fallback.unwrap_or(code).to_owned()
    } else {
        text
    }
}
