//! A portfolio's history (every event in plain words, and the portfolio as it stood on a chosen
//! day) and a program's audit log (filtered, paged, and as the API's CSV).

use super::{Page, forward, portfolio_of, program_of, student_of};
use crate::console::Console;
use crate::console::i18n::Lang;
use crate::console::pages::{self, Ctx};
use crate::console::paths;
use crate::http::{cursor, reads};
use crate::projections::read_models::audit::{self, AuditEntry, AuditFilter};
use crate::store::Checkpoint;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use maud::{Markup, html};
use serde::Deserialize;

/// The event types a filter offers, in the order of a portfolio's life.
const EVENT_TYPES: &[&str] = &[
    "PortfolioOpened",
    "IdentityCheckedInLadok",
    "ExpectedCompletionChanged",
    "ExpectedCompletionSet",
    "ExpectedCompletionConfirmed",
    "ExpectedCompletionProposed",
    "ExpectedCompletionProposalAccepted",
    "ExpectedCompletionProposalDeclined",
    "ActivityLogged",
    "ActivityWithdrawn",
    "ReflectionSubmitted",
    "ReflectionApproved",
    "ReflectionReturned",
    "FinalReflectionSubmitted",
    "FinalReflectionApproved",
    "FinalReflectionReturned",
    "ExtensionGranted",
    "ApplicationSubmitted",
    "ApplicationRejected",
    "CertificateApproved",
    "CertificateRevoked",
    "PersonalDataErased",
    "ProgramRegistered",
    "CatalogItemAdded",
    "CatalogItemRenamed",
    "CatalogItemRetired",
    "RulesChanged",
    "CoordinatorAssigned",
    "CoordinatorUnassigned",
];

/// An event type in plain words (its own name when the files have no words for it).
fn event_words(lang: Lang, event_type: &str) -> String {
    let key = format!("coord-event-{event_type}");
    let text = lang.t(&key);
    if text == key {
        event_type.to_owned()
    } else {
        text
    }
}

/// The start of a Swedish calendar day, as an instant.
fn day_start(date: NaiveDate) -> Option<DateTime<Utc>> {
    date.and_hms_opt(0, 0, 0)?
        .and_local_timezone(chrono_tz::Europe::Stockholm)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

fn date_field(value: Option<&str>) -> Option<NaiveDate> {
    value.and_then(|v| NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").ok())
}

#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    on: Option<String>,
}

/// `GET /console/portfolios/{portfolio_id}/history?on=`: the timeline, and with `on` the
/// portfolio as it stood at the end of that day.
pub async fn history(
    State(console): State<Console>,
    ctx: Ctx,
    Path(portfolio_id): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Response {
    match history_page(&console, &ctx, &portfolio_id, query).await {
        Ok(response) | Err(response) => response,
    }
}

async fn history_page(
    console: &Console,
    ctx: &Ctx,
    raw: &str,
    query: HistoryQuery,
) -> Page<Response> {
    let (state, _) = portfolio_of(console, ctx, raw).await?;
    let p = state.opened().ok_or_else(|| ctx.not_found())?;
    let lang = ctx.lang;
    let _ = reads::caught_up(&console.app, "audit").await;
    let entries = audit::portfolio_history(&console.app.pool, p.id)
        .await
        .map_err(|e| pages::failure(lang, &e))?;
    let on = date_field(query.on.as_deref());
    let as_of = match on.and_then(|d| day_start(d + TimeDelta::days(1))) {
        Some(end) => {
            let at = end.min(Utc::now());
            audit::portfolio_as_of(&console.app.pool, p.id, at)
                .await
                .map_err(|e| pages::failure(lang, &e))?
                .map(Some)
                .unwrap_or(None)
        }
        None => None,
    };
    let student = student_of(p);
    let body = html! {
        p { a href={ "/console/portfolios/" (p.id) } { (lang.t_with("coord-open-portfolio-of", &[("name", student.name.clone().into())])) } }
        form method="get" action={ "/console/portfolios/" (p.id) "/history" } {
            label for="on" { (lang.t("coord-as-of")) }
            " "
            input type="date" id="on" name="on" value=(on.map(|d| d.to_string()).unwrap_or_default());
            " "
            button type="submit" { (lang.t("coord-show")) }
        }
        @if let Some(d) = on {
            section aria-labelledby="asof-h" {
                h2 id="asof-h" { (lang.t("coord-as-of-heading")) " " (lang.date(d)) }
                @match &as_of {
                    None => p { (lang.t("coord-not-opened-yet")) },
                    Some(page) => {
                        dl.facts {
                            dt { (lang.t("coord-phase")) } dd { (lang.t(&format!("coord-phase-{}", page.view.phase.as_str()))) }
                            dt { (lang.t("coord-col-deadline")) } dd { (lang.date(page.view.deadline.date)) }
                            dt { (lang.t("coord-final-heading")) }
                            dd { (lang.t(&format!("coord-status-{}", page.view.final_reflection.status.as_str().replace('_', "-")))) }
                        }
                        ul {
                            @for a in &page.view.activities {
                                li { (a.item_name) ": " (lang.t(&format!("coord-status-{}", a.status.as_str().replace('_', "-")))) }
                            }
                        }
                    }
                }
            }
        }
        h2 { (lang.t("coord-timeline-heading")) }
        (timeline(lang, &entries))
    };
    let title = format!("{} – {}", student.name, lang.t("coord-history-title"));
    Ok(ctx.page(&title, body))
}

fn timeline(lang: Lang, entries: &[AuditEntry]) -> Markup {
    html! {
        ol.timeline {
            @for e in entries {
                li {
                    time datetime=(e.recorded_at.to_rfc3339()) { (lang.date_time(e.recorded_at)) }
                    " · " strong { (event_words(lang, &e.event_type)) }
                    " · " (e.actor_id)
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    event_type: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
}

/// The list a console audit cursor belongs to.
const AUDIT_LIST: &str = "console_audit";
const AUDIT_PAGE: i64 = 50;

impl AuditQuery {
    fn filter(&self) -> AuditFilter {
        AuditFilter {
            from: date_field(self.from.as_deref()).and_then(day_start),
            // Up to and including the `to` day.
            until: date_field(self.to.as_deref()).and_then(|d| day_start(d + TimeDelta::days(1))),
            actor_id: None,
            event_types: self
                .event_type
                .as_deref()
                .filter(|t| EVENT_TYPES.contains(t))
                .map(|t| vec![t.to_owned()])
                .unwrap_or_default(),
        }
    }

    /// The filters as the API's query string (times in RFC 3339).
    fn api_query(&self) -> String {
        let f = self.filter();
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(t) = f.from {
            q.append_pair("from", &t.to_rfc3339());
        }
        if let Some(t) = f.until {
            q.append_pair("until", &t.to_rfc3339());
        }
        if let Some(t) = f.event_types.first() {
            q.append_pair("event_type", t);
        }
        q.finish()
    }

    /// The filters as this page's query string (for the next page and the CSV link).
    fn own_query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("event_type", &self.event_type),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                q.append_pair(name, v);
            }
        }
        q.finish()
    }
}

/// `GET /console/programs/{program_id}/audit?event_type=&from=&to=&cursor=`.
pub async fn audit(
    State(console): State<Console>,
    ctx: Ctx,
    Path(program_id): Path<String>,
    Query(query): Query<AuditQuery>,
) -> Response {
    match audit_page(&console, &ctx, &program_id, query).await {
        Ok(response) | Err(response) => response,
    }
}

async fn audit_page(console: &Console, ctx: &Ctx, raw: &str, query: AuditQuery) -> Page<Response> {
    let program = program_of(console, ctx, raw).await?;
    let lang = ctx.lang;
    let after: Option<Checkpoint> =
        cursor::decode(AUDIT_LIST, query.cursor.as_deref()).unwrap_or(None);
    let _ = reads::caught_up(&console.app, "audit").await;
    let page = audit::program_log(
        &console.app.pool,
        program.id,
        &query.filter(),
        after,
        AUDIT_PAGE,
    )
    .await
    .map_err(|e| pages::failure(lang, &e))?;
    let base = format!("/console/programs/{}/audit", program.id);
    let own = query.own_query();
    let chosen = query.event_type.clone().unwrap_or_default();
    let body = html! {
        p { a href={ "/console/programs/" (program.id) } { (lang.t("coord-back-to-program")) } }
        form method="get" action=(base) {
            p {
                label for="event_type" { (lang.t("coord-event-type")) } " "
                select id="event_type" name="event_type" {
                    option value="" { (lang.t("coord-any")) }
                    @for t in EVENT_TYPES {
                        option value=(t) selected[chosen == *t] { (event_words(lang, t)) }
                    }
                }
            }
            p { label for="from" { (lang.t("coord-from")) } " " input type="date" id="from" name="from" value=(query.from.clone().unwrap_or_default()); }
            p { label for="to" { (lang.t("coord-to")) } " " input type="date" id="to" name="to" value=(query.to.clone().unwrap_or_default()); }
            button type="submit" { (lang.t("coord-show")) }
        }
        p { a href={ (base) ".csv?" (own) } download { (lang.t("coord-csv-link")) } }
        @if page.entries.is_empty() {
            p { (lang.t("coord-none")) }
        } @else {
            div.wide {
            table aria-label=(lang.t("coord-audit-title")) {
                thead { tr {
                    th scope="col" { (lang.t("coord-col-time")) }
                    th scope="col" { (lang.t("coord-event-type")) }
                    th scope="col" { (lang.t("coord-col-actor")) }
                    th scope="col" { (lang.t("coord-col-portfolio")) }
                } }
                tbody {
                    @for e in &page.entries {
                        tr {
                            td { (lang.date_time(e.recorded_at)) }
                            td { (event_words(lang, &e.event_type)) }
                            td { (e.actor_id) }
                            td {
                                @if let Some(p) = e.portfolio_id {
                                    a href={ "/console/portfolios/" (p) } { (lang.t("coord-open-portfolio")) }
                                }
                            }
                        }
                    }
                }
            }
            }
        }
        @if let Some(next) = &page.next {
            p { a href={ (base) "?" (own) "&cursor=" (paths::encode(&cursor::encode(AUDIT_LIST, next))) } { (lang.t("coord-next-page")) } }
        }
    };
    let title = format!(
        "{} – {}",
        program.name.as_str(),
        lang.t("coord-audit-title")
    );
    Ok(ctx.page(&title, body))
}

/// `GET /console/programs/{program_id}/audit.csv?event_type=&from=&to=`: the API's CSV for the
/// same filters, as the signed-in person.
pub async fn audit_csv(
    State(console): State<Console>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(program_id): Path<String>,
    Query(query): Query<AuditQuery>,
) -> Response {
    let program = match program_of(&console, &ctx, &program_id).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let path = format!("/programs/{}/audit.csv?{}", program.id, query.api_query());
    forward(&console, &ctx, &path, &headers).await
}
