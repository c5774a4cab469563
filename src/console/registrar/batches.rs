//! The export batches: the list (`GET /exports/batches`), one batch with its manifest's files,
//! their checksums and downloads and every item's delivery (`GET /exports/batches/{id}`), and the
//! registrar's actions: acknowledge, redeliver, run an export now.
//!
//! A file is downloaded through the API's own route in this process, so the registrar's browser
//! gets exactly the API's bytes after exactly its checks (recorded names only, the path built from
//! the recorded name), with the session cookie instead of a token.

use super::{not_registrar, read_refused, reason_text, registrar_id, status_text, step_text};
use crate::console::Console;
use crate::console::api::ApiRefusal;
use crate::console::i18n::Lang;
use crate::console::pages::{self, Ctx, Posted};
use crate::console::paths::encode;
use crate::export::{MANIFEST_FILE_NAME, Manifest};
use crate::http::auth::SignedIn;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{Request, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    cursor: String,
}

fn when(lang: Lang, value: &Value) -> Option<String> {
    let at = DateTime::parse_from_rfc3339(value.as_str()?).ok()?;
    Some(lang.date_time(at.with_timezone(&Utc)))
}

fn yes_no(lang: Lang, yes: bool) -> String {
    lang.t(if yes { "reg-yes" } else { "reg-no" })
}

/// The "run an export now" form.
fn run_form(ctx: &Ctx) -> Markup {
    let lang = ctx.lang;
    html! {
        form.inline method="post" action="/console/batches/run" {
            (ctx.form_keys())
            button type="submit" { (lang.t("reg-run-now")) }
        }
        p.hint { (lang.t("reg-run-hint")) }
    }
}

pub async fn list(
    ctx: Ctx,
    State(console): State<Console>,
    Query(query): Query<ListQuery>,
) -> Response {
    if let Some(no) = not_registrar(&ctx) {
        return no;
    }
    let lang = ctx.lang;
    let mut api = String::from("/exports/batches?limit=50");
    if !query.cursor.is_empty() {
        api.push_str(&format!("&cursor={}", encode(&query.cursor)));
    }
    let page = match console.api_get(&ctx.session, &api).await {
        Ok(page) => page,
        Err(refusal) => return ctx.refused(&refusal, "/console/batches"),
    };
    let empty = Vec::new();
    let items = page["items"].as_array().unwrap_or(&empty);
    let body = html! {
        (run_form(&ctx))
        h2 { (lang.t("reg-batches-heading")) }
        @if items.is_empty() {
            p { (lang.t("reg-batches-none")) }
        } @else {
            table aria-label=(lang.t("reg-batches-heading")) {
                thead { tr {
                    th scope="col" { (lang.t("reg-col-batch")) }
                    th scope="col" class="num" { (lang.t("reg-col-certificates")) }
                    th scope="col" class="num" { (lang.t("reg-col-revocations")) }
                    th scope="col" { (lang.t("reg-col-complete")) }
                    th scope="col" { (lang.t("reg-col-settled")) }
                } }
                tbody { @for b in items {
                    @let id = b["batch_id"].as_str().unwrap_or_default();
                    tr {
                        td { a href={ "/console/batches/" (id) } {
                            (lang.t_with("reg-batch-link", &[("date", when(lang, &b["created_at"]).unwrap_or_default().into())]))
                        } }
                        td.num { (b["certificates"]) }
                        td.num { (b["revocations"]) }
                        td { (when(lang, &b["completed_at"]).unwrap_or_else(|| lang.t("reg-not-yet"))) }
                        td { (when(lang, &b["deliveries_settled_at"]).unwrap_or_else(|| lang.t("reg-not-yet"))) }
                    }
                } }
            }
        }
        nav aria-label=(lang.t("reg-pages-label")) {
            p {
                @if !query.cursor.is_empty() {
                    a href="/console/batches" { (lang.t("reg-first-page")) } " "
                }
                @if let Some(next) = page["next_cursor"].as_str() {
                    a href={ "/console/batches?cursor=" (encode(next)) } { (lang.t("reg-next-page")) }
                }
            }
        }
    };
    ctx.page(&lang.t("reg-batches-title"), body)
}

pub async fn show(
    ctx: Ctx,
    State(console): State<Console>,
    Path(batch_id): Path<String>,
) -> Response {
    let id = match registrar_id(&ctx, &batch_id) {
        Ok(id) => id,
        Err(page) => return page,
    };
    let lang = ctx.lang;
    let b = match console
        .api_get(&ctx.session, &format!("/exports/batches/{id}"))
        .await
    {
        Ok(b) => b,
        Err(refusal) => return read_refused(&ctx, &refusal, "/console/batches"),
    };
    let empty = Vec::new();
    let files = b["files"].as_array().unwrap_or(&empty);
    let items = b["items"].as_array().unwrap_or(&empty);
    let counts = &b["counts"];
    let acknowledged = b["acknowledged_by"].as_str();
    let manifest = manifest(&console, &ctx, id).await;
    let created = when(lang, &b["created_at"]).unwrap_or_default();
    let body = html! {
        p { a href="/console/batches" { (lang.t("reg-back-to-batches")) } }
        dl.facts {
            dt { (lang.t("reg-batch-id")) } dd { code { (id) } }
            dt { (lang.t("reg-col-complete")) } dd { (yes_no(lang, b["completed"].as_bool().unwrap_or(false))) }
            dt { (lang.t("reg-acknowledged")) } dd {
                @match acknowledged { Some(by) => (lang.t_with("reg-acknowledged-by", &[("by", by.into())])), None => (lang.t("reg-no")) }
            }
        }
        h2 { (lang.t("reg-delivery-heading")) }
        table aria-label=(lang.t("reg-delivery-heading")) {
            thead { tr { @for key in ["certificates", "revocations", "refused", "delivered", "failed", "retrying", "pending"] {
                th scope="col" class="num" { (lang.t(&format!("reg-count-{key}"))) }
            } } }
            tbody { tr { @for key in ["certificates", "revocations", "refused", "delivered", "failed", "retrying", "pending"] {
                td.num { (counts[key]) }
            } } }
        }
        h2 { (lang.t("reg-files-heading")) }
        p.hint { (lang.t("reg-files-hint")) }
        table aria-label=(lang.t("reg-files-heading")) {
            thead { tr {
                th scope="col" { (lang.t("reg-col-file")) }
                th scope="col" class="num" { (lang.t("reg-col-size")) }
                th scope="col" { (lang.t("reg-col-sha256")) }
            } }
            tbody { @for f in files {
                @let name = f["name"].as_str().unwrap_or_default();
                tr {
                    td { a href={ "/console/batches/" (id) "/files/" (encode(name)) } download=(name) {
                        (lang.t_with("reg-download", &[("name", name.into())]))
                    } }
                    td.num { (lang.t_with("reg-bytes", &[("n", f["size"].as_i64().unwrap_or(0).into())])) }
                    td { code.checksum { (f["sha256"].as_str().unwrap_or_default()) } }
                }
            } }
        }
        @if let Some(m) = &manifest { (manifest_notes(lang, m)) }
        h2 { (lang.t("reg-items-heading")) }
        table aria-label=(lang.t("reg-items-heading")) {
            thead { tr {
                th scope="col" { (lang.t("reg-col-certificate")) }
                th scope="col" { (lang.t("reg-col-kind")) }
                th scope="col" { (lang.t("reg-col-ladok")) }
                th scope="col" { (lang.t("reg-col-reason")) }
                th scope="col" class="num" { (lang.t("reg-col-attempts")) }
            } }
            tbody { @for i in items {
                @let cid = i["certificate_id"].as_str().unwrap_or_default();
                tr {
                    td { a href={ "/console/certificates/" (cid) } { (cid) } }
                    td { (status_text(lang, "kind", i["kind"].as_str().unwrap_or_default())) }
                    td { (status_text(lang, "ladok", i["ladok"].as_str().unwrap_or_default())) }
                    td {
                        @if let Some(r) = i["reason"].as_str() {
                            @match i["felgrupp"].as_str() {
                                Some(g) => (reason_text(lang, &format!("{r}:{g}"))),
                                None => (reason_text(lang, r)),
                            }
                        }
                    }
                    td.num { (i["attempts"]) }
                }
            } }
        }
        h2 { (lang.t("reg-actions-heading")) }
        @if acknowledged.is_none() {
            form.inline method="post" action={ "/console/batches/" (id) "/acknowledge" } {
                (ctx.form_keys())
                button type="submit" { (lang.t("reg-acknowledge")) }
            }
            p.hint { (lang.t("reg-acknowledge-hint")) }
        }
        form.inline method="post" action={ "/console/batches/" (id) "/redeliver" } {
            (ctx.form_keys())
            button.secondary type="submit" { (lang.t("reg-redeliver")) }
        }
        p.hint { (lang.t("reg-redeliver-hint")) }
        (run_form(&ctx))
    };
    ctx.page(
        &lang.t_with("reg-batch-title", &[("date", created.into())]),
        body,
    )
}

#[derive(Debug, Deserialize)]
pub struct FilePath {
    batch_id: String,
    name: String,
}

/// The API's answer to `GET /exports/batches/{batch_id}/files/{name}` for this person, in this
/// process: the same checks, the same bytes.
async fn api_file(console: &Console, ctx: &Ctx, batch_id: Uuid, name: &str) -> Response {
    let uri = format!("/exports/batches/{batch_id}/files/{}", segment(name));
    let mut request = Request::get(uri)
        .body(Body::empty())
        .expect("a path of percent-encoded segments is a valid URI");
    request
        .extensions_mut()
        .insert(SignedIn(ctx.session.caller.clone()));
    console
        .api
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {})
}

/// One file of a batch: the API's download, answered as the API answered it (its bytes, type,
/// `Content-Disposition: attachment` and checksum `ETag`); a refusal as a page.
pub async fn download(
    ctx: Ctx,
    State(console): State<Console>,
    Path(path): Path<FilePath>,
) -> Response {
    let batch_id = match registrar_id(&ctx, &path.batch_id) {
        Ok(id) => id,
        Err(page) => return page,
    };
    let answer = api_file(&console, &ctx, batch_id, &path.name).await;
    if answer.status().is_success() {
        let (parts, body) = answer.into_parts();
        let mut response = Response::new(body);
        *response.status_mut() = parts.status;
        for name in [
            header::CONTENT_TYPE,
            header::CONTENT_DISPOSITION,
            header::ETAG,
        ] {
            if let Some(value) = parts.headers.get(&name) {
                response.headers_mut().insert(name, value.clone());
            }
        }
        return response;
    }
    let status = answer.status();
    let bytes = axum::body::to_bytes(answer.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let problem: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let refusal = ApiRefusal {
        status,
        code: problem["code"]
            .as_str()
            .unwrap_or("unexpected_answer")
            .to_owned(),
        detail: problem["detail"].as_str().unwrap_or_default().to_owned(),
    };
    read_refused(&ctx, &refusal, &format!("/console/batches/{batch_id}")).into_response()
}

/// The batch's manifest, when it is written and readable (a batch still being written has none).
async fn manifest(console: &Console, ctx: &Ctx, batch_id: Uuid) -> Option<Manifest> {
    let answer = api_file(console, ctx, batch_id, MANIFEST_FILE_NAME).await;
    if !answer.status().is_success() {
        return None;
    }
    let bytes = axum::body::to_bytes(answer.into_body(), 16 * 1024 * 1024)
        .await
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// What the manifest says beyond the files: certificates withheld (their source could not be
/// read), certificates whose holder was erased, and what is still to do by hand in Ladok.
fn manifest_notes(lang: Lang, m: &Manifest) -> Markup {
    let step = |code: &str| {
        let fallback = m.ladok_manual_step_texts.get(code).map(String::as_str);
        step_text(lang, code, fallback)
    };
    html! {
        @if !m.withheld.is_empty() {
            h3 { (lang.t("reg-withheld-heading")) }
            ul { @for w in &m.withheld {
                li {
                    a href={ "/console/certificates/" (w.certificate_id) } { (w.certificate_id) }
                    ": " (status_text(lang, "reason", &w.reason))
                }
            } }
        }
        @if !m.personal_data_erased.is_empty() {
            h3 { (lang.t("reg-erased-heading")) }
            ul { @for id in &m.personal_data_erased {
                li { a href={ "/console/certificates/" (id) } { (id) } }
            } }
        }
        @if !m.ladok_manual_steps.is_empty() {
            h3 { (lang.t("reg-manual-heading")) }
            table aria-label=(lang.t("reg-manual-heading")) {
                thead { tr {
                    th scope="col" { (lang.t("reg-col-certificate")) }
                    th scope="col" { (lang.t("reg-col-manual")) }
                } }
                tbody { @for c in &m.ladok_manual_steps {
                    tr {
                        td { a href={ "/console/certificates/" (c.certificate_id) } { (c.certificate_id) } }
                        td { ul { @for code in &c.steps { li { (step(code)) } } } }
                    }
                } }
            }
        }
    }
}

/// `name` as one path segment: unreserved characters as they are, every other byte as `%XX`.
fn segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A registrar's action on a batch through the API, then back to the batch with what was done.
async fn act(posted: Posted<Empty>, console: Console, batch_id: String, action: &str) -> Response {
    let ctx = posted.ctx;
    let id = match registrar_id(&ctx, &batch_id) {
        Ok(id) => id,
        Err(page) => return page,
    };
    let back = format!("/console/batches/{id}");
    let path = format!("/exports/batches/{id}/{action}");
    match console
        .api_post(&ctx.session, &path, &json!({}), posted.key.as_deref())
        .await
    {
        Ok(answer) => {
            let done = match (action, answer["certificate_ids"].as_array()) {
                ("redeliver", Some(ids)) if ids.is_empty() => "reg-nothing-to-redeliver",
                ("redeliver", _) => "reg-redelivery-requested",
                _ => "reg-acknowledged",
            };
            pages::done(&back, done)
        }
        Err(refusal) => ctx.refused(&refusal, &back),
    }
}

/// A form with no fields of its own (the CSRF token and key are taken by `Posted`).
#[derive(Debug, Deserialize)]
pub struct Empty {}

pub async fn acknowledge(
    State(console): State<Console>,
    Path(batch_id): Path<String>,
    posted: Posted<Empty>,
) -> Response {
    act(posted, console, batch_id, "acknowledge").await
}

pub async fn redeliver(
    State(console): State<Console>,
    Path(batch_id): Path<String>,
    posted: Posted<Empty>,
) -> Response {
    act(posted, console, batch_id, "redeliver").await
}

/// One export run now; back to the batch it completed, or to the list when it made none.
pub async fn run(State(console): State<Console>, posted: Posted<Empty>) -> Response {
    let ctx = posted.ctx;
    if let Some(no) = not_registrar(&ctx) {
        return no;
    }
    match console
        .api_post(
            &ctx.session,
            "/exports/run",
            &json!({}),
            posted.key.as_deref(),
        )
        .await
    {
        Ok(summary) => match summary["completed"].as_array().and_then(|c| c.first()) {
            Some(batch) => pages::done(
                &format!("/console/batches/{}", batch.as_str().unwrap_or_default()),
                "reg-export-ran",
            ),
            None => pages::done("/console/batches", "reg-export-ran-empty"),
        },
        Err(refusal) => ctx.refused(&refusal, "/console/batches"),
    }
}
