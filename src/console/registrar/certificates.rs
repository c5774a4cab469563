//! `GET /console/certificates` and `GET /console/certificates/{id}`: the certificates as the
//! registrar API gives them (`GET /certificates`, `GET /certificates/{id}`), the ones Ladok
//! refused or that are held, what is still to do by hand, and one certificate's Ladok history and
//! credential.

use super::{not_registrar, read_refused, reason_text, registrar_id, status_text, step_text};
use crate::console::Console;
use crate::console::i18n::Lang;
use crate::console::pages::{self, Ctx};
use crate::console::paths::encode;
use crate::domain::batch::manual::ManualStep;
use crate::projections::read_models::registrar::{CertificateRecord, NextAttempt};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The list's filters and page, as the GET form sends them (empty fields do not filter).
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    program: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    cursor: String,
}

/// The serde name of a value (`approved`, `oral`, …), for the texts' keys.
fn name<T: Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
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
    // Only the filters the API knows, and only when given.
    let mut api = String::from("/certificates?limit=50");
    for (field, value) in [
        ("program", &query.program),
        ("status", &query.status),
        ("cursor", &query.cursor),
    ] {
        if !value.is_empty() {
            api.push_str(&format!("&{field}={}", encode(value)));
        }
    }
    let page = match console.api_get(&ctx.session, &api).await {
        Ok(page) => page,
        Err(refusal) => return ctx.refused(&refusal, "/console/certificates"),
    };
    let items: Vec<CertificateRecord> =
        serde_json::from_value(page["items"].clone()).unwrap_or_default();
    let next = page["next_cursor"].as_str().map(|cursor| {
        format!(
            "/console/certificates?program={}&status={}&cursor={}",
            encode(&query.program),
            encode(&query.status),
            encode(cursor)
        )
    });
    let programs = match crate::console::admin::registered(&console).await {
        Ok(programs) => programs,
        Err(e) => return pages::failure(lang, e.as_ref()),
    };
    let held = match held(&console).await {
        Ok(held) => held,
        Err(e) => return pages::failure(lang, &e),
    };
    let body = html! {
        form.inline method="get" action="/console/certificates" {
            label for="reg-filter-program" { (lang.t("reg-filter-program")) }
            select id="reg-filter-program" name="program" {
                option value="" { (lang.t("reg-filter-all")) }
                @for p in &programs {
                    @let id = p.id.to_string();
                    option value=(id) selected[id == query.program] { (p.code) " – " (p.name) }
                }
            }
            label for="reg-filter-status" { (lang.t("reg-filter-status")) }
            select id="reg-filter-status" name="status" {
                option value="" { (lang.t("reg-filter-all")) }
                @for s in ["approved", "revoked"] {
                    option value=(s) selected[s == query.status] { (status_text(lang, "status", s)) }
                }
            }
            button type="submit" { (lang.t("reg-filter-apply")) }
        }
        h2 { (lang.t("reg-held-heading")) }
        p.hint { (lang.t("reg-held-hint")) }
        (held_table(lang, &held))
        h2 { (lang.t("reg-certificates-heading")) }
        @if items.is_empty() {
            p { (lang.t("reg-certificates-none")) }
        } @else {
            table aria-label=(lang.t("reg-certificates-heading")) {
                thead { tr {
                    th scope="col" { (lang.t("reg-col-certificate")) }
                    th scope="col" { (lang.t("reg-col-program")) }
                    th scope="col" { (lang.t("reg-col-student")) }
                    th scope="col" { (lang.t("reg-col-status")) }
                    th scope="col" { (lang.t("reg-col-export")) }
                    th scope="col" { (lang.t("reg-col-ladok")) }
                    th scope="col" { (lang.t("reg-col-manual")) }
                } }
                tbody {
                    @for c in &items {
                        tr {
                            td { a href={ "/console/certificates/" (c.certificate_id) } {
                                (lang.t_with("reg-certificate-link", &[("date", lang.date(c.decided_on).into())]))
                            } }
                            td { (c.program_code) }
                            td { code { (c.student_uid) } }
                            td { (status_text(lang, "status", &name(c.status))) }
                            td { (status_text(lang, "export", &c.export_status)) }
                            td {
                                (status_text(lang, "ladok", &c.ladok_status))
                                @if let Some(error) = &c.delivery_error {
                                    br; span.hint { (reason_text(lang, error)) }
                                }
                            }
                            td { (steps(lang, &c.ladok_manual_steps)) }
                        }
                    }
                }
            }
        }
        nav aria-label=(lang.t("reg-pages-label")) {
            p {
                @if !query.cursor.is_empty() {
                    a href="/console/certificates" { (lang.t("reg-first-page")) } " "
                }
                @if let Some(next) = &next {
                    a href=(next) { (lang.t("reg-next-page")) }
                }
            }
        }
    };
    ctx.page(&lang.t("reg-certificates-title"), body)
}

/// What is still to do by hand in Ladok, in the page's language (the API's English text when the
/// files have none for the step's code).
fn steps(lang: Lang, steps: &[ManualStep]) -> Markup {
    html! {
        @if steps.is_empty() {
            (lang.t("reg-manual-none"))
        } @else {
            ul { @for s in steps { li { (step_text(lang, &s.code, Some(&s.text))) } } }
        }
    }
}

/// A certificate the export refused, that a Ladok rule refused, or that waits for Ladok.
struct Held {
    certificate_id: Uuid,
    program_code: String,
    student_uid: Uuid,
    export_status: String,
    ladok_status: String,
    reason: Option<String>,
    updated_at: DateTime<Utc>,
}

/// The certificates that are not on their way into Ladok by themselves, or not yet: refused by
/// the export, refused by a Ladok rule (an identity mismatch among them), or retrying.
async fn held(console: &Console) -> Result<Vec<Held>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT certificate_id, program_code, student_uid, export_status, ladok_status,
                delivery_error, updated_at
         FROM rm_certificates
         WHERE export_status = 'refused' OR ladok_status IN ('failed', 'retrying')
         ORDER BY updated_at DESC
         LIMIT 200"
    )
    .fetch_all(&console.app.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Held {
            certificate_id: r.certificate_id,
            program_code: r.program_code,
            student_uid: r.student_uid,
            export_status: r.export_status,
            ladok_status: r.ladok_status,
            reason: r.delivery_error,
            updated_at: r.updated_at,
        })
        .collect())
}

fn held_table(lang: Lang, held: &[Held]) -> Markup {
    html! {
        @if held.is_empty() {
            p { (lang.t("reg-held-none")) }
        } @else {
            table aria-label=(lang.t("reg-held-heading")) {
                thead { tr {
                    th scope="col" { (lang.t("reg-col-certificate")) }
                    th scope="col" { (lang.t("reg-col-program")) }
                    th scope="col" { (lang.t("reg-col-student")) }
                    th scope="col" { (lang.t("reg-col-state")) }
                    th scope="col" { (lang.t("reg-col-reason")) }
                    th scope="col" { (lang.t("reg-col-since")) }
                } }
                tbody { @for h in held {
                    tr {
                        td { a href={ "/console/certificates/" (h.certificate_id) } { (h.certificate_id) } }
                        td { (h.program_code) }
                        td { code { (h.student_uid) } }
                        td { @if h.export_status == "refused" {
                            (status_text(lang, "export", "refused"))
                        } @else {
                            (status_text(lang, "ladok", &h.ladok_status))
                        } }
                        td { @if let Some(r) = &h.reason { (reason_text(lang, r)) } }
                        td { (lang.date_time(h.updated_at)) }
                    }
                } }
            }
        }
    }
}

pub async fn show(
    ctx: Ctx,
    State(console): State<Console>,
    Path(certificate_id): Path<String>,
) -> Response {
    let id = match registrar_id(&ctx, &certificate_id) {
        Ok(id) => id,
        Err(page) => return page,
    };
    let lang = ctx.lang;
    let back = "/console/certificates";
    let c: CertificateRecord = match console
        .api_get(&ctx.session, &format!("/certificates/{id}"))
        .await
        .map(serde_json::from_value)
    {
        Ok(Ok(c)) => c,
        Ok(Err(_)) => return ctx.not_found(),
        Err(refusal) => return read_refused(&ctx, &refusal, back),
    };
    // 404 `credential_not_issued` is an answer too: none was issued.
    let credential = console
        .api_get(&ctx.session, &format!("/certificates/{id}/credential"))
        .await
        .ok();
    let history = match history(&console, id).await {
        Ok(history) => history,
        Err(e) => return pages::failure(lang, &e),
    };
    let body = html! {
        p { a href=(back) { (lang.t("reg-back-to-certificates")) } }
        dl.facts {
            dt { (lang.t("reg-col-student")) } dd { code { (c.student_uid) } }
            dt { (lang.t("reg-col-program")) } dd { (c.program_code) " – " (c.program_name) }
            dt { (lang.t("reg-application")) } dd { (c.application) }
            dt { (lang.t("reg-decided")) } dd { (lang.date(c.decided_on)) " · " (c.decided_by) }
            dt { (lang.t("reg-final-format")) } dd { (status_text(lang, "format", &name(c.final_format))) }
            dt { (lang.t("reg-col-status")) } dd {
                (status_text(lang, "status", &name(c.status)))
                @if let (Some(on), Some(by)) = (c.revoked_on, &c.revoked_by) { " · " (lang.date(on)) " · " (by) }
            }
            dt { (lang.t("reg-col-export")) } dd { (status_text(lang, "export", &c.export_status)) }
            dt { (lang.t("reg-col-ladok")) } dd {
                (status_text(lang, "ladok", &c.ladok_status))
                @if let Some(error) = &c.delivery_error { " · " (reason_text(lang, error)) }
            }
            @if let Some(wait) = &c.ladok_wait {
                dt { (lang.t("reg-waiting")) } dd {
                    (lang.t_with("reg-waiting-text", &[
                        ("since", lang.date_time(wait.since).into()),
                        ("attempts", i64::from(wait.attempts).into()),
                    ]))
                    " "
                    @match wait.next_attempt {
                        NextAttempt::NextRun => (lang.t("reg-next-run")),
                        NextAttempt::RedeliveryRequest => (lang.t("reg-needs-redelivery")),
                    }
                }
            }
            @if let Some(batch) = c.last_batch_id {
                dt { (lang.t("reg-last-batch")) } dd { a href={ "/console/batches/" (batch) } { (batch) } }
            }
        }
        h2 { (lang.t("reg-activities-heading")) }
        table aria-label=(lang.t("reg-activities-heading")) {
            thead { tr {
                th scope="col" { (lang.t("reg-col-activity")) }
                th scope="col" { (lang.t("reg-col-from")) }
                th scope="col" { (lang.t("reg-col-to")) }
                th scope="col" { (lang.t("reg-col-format")) }
            } }
            tbody { @for a in &c.activities {
                tr {
                    td { (a.item_name) }
                    td { (lang.date(a.started_on)) }
                    td { (lang.date(a.ended_on)) }
                    td { (status_text(lang, "format", &name(a.reflection_format))) }
                }
            } }
        }
        h2 { (lang.t("reg-manual-heading")) }
        (steps(lang, &c.ladok_manual_steps))
        h2 { (lang.t("reg-history-heading")) }
        (history_table(lang, &history))
        h2 { (lang.t("reg-credential-heading")) }
        @match &credential {
            Some(issued) => p { (lang.t_with("reg-credential-issued", &[
                ("date", issued_at(lang, issued).into()),
                ("id", issued["credential_id"].as_str().unwrap_or_default().into()),
            ])) },
            None => p { (lang.t("reg-credential-none")) },
        }
    };
    let title = lang.t_with(
        "reg-certificate-title",
        &[("date", lang.date(c.decided_on).into())],
    );
    ctx.page(&title, body)
}

fn issued_at(lang: Lang, issued: &Value) -> String {
    issued["issued_at"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| lang.date_time(t.with_timezone(&Utc)))
        .unwrap_or_default()
}

/// One step of a certificate's way into Ladok, from its batches' streams.
struct Step {
    at: DateTime<Utc>,
    batch_id: Uuid,
    /// The text key's last part: `taken`, `revocation-taken`, `refused`, `delivered`, …
    what: &'static str,
    reason: Option<String>,
}

/// The certificate's Ladok history: every batch event that names it, in the log's order. The
/// batch streams are found through `export_batches` (a few hundred rows a year), so only their
/// events are read.
async fn history(console: &Console, id: Uuid) -> Result<Vec<Step>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT b.batch_id, e.event_type, e.recorded_at, e.payload
           FROM export_batches b
           JOIN events e ON e.stream_id = 'export-batch-' || b.batch_id::text
           WHERE e.event_type IN ('BatchCreated', 'CertificateDelivered', 'DeliveryFailed',
                                  'DeliveriesDeferred', 'RedeliveryRequested')
             AND strpos(e.payload::text, $1) > 0
           ORDER BY e.position"#,
        id.to_string(),
    )
    .fetch_all(&console.app.pool)
    .await?;
    let id = id.to_string();
    let names = |list: &Value| {
        list.as_array().is_some_and(|items| {
            items
                .iter()
                .any(|i| i["certificate_id"] == id.as_str() || *i == id.as_str())
        })
    };
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let mut steps = Vec::new();
    for row in rows {
        let p = &row.payload;
        let (what, reason) = match row.event_type.as_str() {
            "BatchCreated" if names(&p["certificates"]) => ("taken", None),
            "BatchCreated" if names(&p["revocations"]) => ("revocation-taken", None),
            "BatchCreated" => {
                let reason = p["refused"].as_array().and_then(|items| {
                    items
                        .iter()
                        .find(|i| i["certificate_id"] == id.as_str())
                        .and_then(|i| text(&i["reason"]))
                });
                ("refused", reason)
            }
            "CertificateDelivered" => ("delivered", text(&p["ladok_merit_uid"])),
            "DeliveryFailed" => {
                let reason = match (text(&p["reason"]), text(&p["felgrupp"])) {
                    (Some(r), Some(g)) => Some(format!("{r}:{g}")),
                    (r, _) => r,
                };
                let retryable = p["retryable"].as_bool().unwrap_or(false);
                (if retryable { "retrying" } else { "failed" }, reason)
            }
            "DeliveriesDeferred" if names(&p["certificate_ids"]) => {
                ("deferred", text(&p["reason"]))
            }
            "RedeliveryRequested" if names(&p["certificate_ids"]) => ("redelivery", None),
            _ => continue,
        };
        steps.push(Step {
            at: row.recorded_at,
            batch_id: row.batch_id,
            what,
            reason,
        });
    }
    Ok(steps)
}

fn history_table(lang: Lang, steps: &[Step]) -> Markup {
    html! {
        @if steps.is_empty() {
            p { (lang.t("reg-history-none")) }
        } @else {
            table aria-label=(lang.t("reg-history-heading")) {
                thead { tr {
                    th scope="col" { (lang.t("reg-col-when")) }
                    th scope="col" { (lang.t("reg-col-batch")) }
                    th scope="col" { (lang.t("reg-col-event")) }
                    th scope="col" { (lang.t("reg-col-reason")) }
                } }
                tbody { @for s in steps {
                    tr {
                        td { (lang.date_time(s.at)) }
                        td { a href={ "/console/batches/" (s.batch_id) } { (s.batch_id) } }
                        td { (lang.t(&format!("reg-history-{}", s.what))) }
                        td { @if let Some(r) = &s.reason {
                            @if s.what == "delivered" { code { (r) } } @else { (reason_text(lang, r)) }
                        } }
                    }
                } }
            }
        }
    }
}
