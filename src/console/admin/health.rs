//! `GET /console/admin/health`: the service's moving parts as `/readyz` and `/metrics` read them
//! (`ops::snapshot`, the same thresholds): the read models' positions and lag, the export worker's
//! last runs, the certificates waiting for Ladok and the notifications' outbox. Counts, positions,
//! times and error codes only: nothing personal.

use super::not_admin;
use crate::console::Console;
use crate::console::i18n::Lang;
use crate::console::pages::{self, Ctx};
use crate::ops::{self, Part, Thresholds};
use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use std::time::Duration;

/// An age in the largest unit that keeps it readable.
fn age(lang: Lang, age: Option<Duration>) -> String {
    let Some(age) = age else {
        return lang.t("admin-health-nothing-waits");
    };
    let s = age.as_secs() as i64;
    let (key, n) = match s {
        0..120 => ("admin-age-seconds", s),
        120..7200 => ("admin-age-minutes", s / 60),
        7200..172_800 => ("admin-age-hours", s / 3600),
        _ => ("admin-age-days", s / 86_400),
    };
    lang.t_with(key, &[("n", n.into())])
}

fn at(lang: Lang, at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| lang.t("admin-health-never"), |t| lang.date_time(t))
}

/// A part's verdict in words (never by colour alone).
fn verdict(lang: Lang, concern: Option<&String>) -> Markup {
    html! {
        @match concern {
            Some(message) => p.warning { strong { (lang.t("admin-health-behind")) } " " (message) },
            None => p.done { (lang.t("admin-health-ok")) },
        }
    }
}

struct Run {
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    outcome: String,
    error_code: Option<String>,
}

pub async fn page(ctx: Ctx, State(console): State<Console>) -> Response {
    if let Some(no) = not_admin(&ctx) {
        return no;
    }
    let lang = ctx.lang;
    let pool = &console.app.pool;
    let snapshot = match ops::snapshot(pool).await {
        Ok(s) => s,
        Err(e) => return pages::failure(lang, &e),
    };
    let runs = match sqlx::query_as!(
        Run,
        "SELECT started_at, finished_at, outcome, error_code FROM export_runs
         ORDER BY finished_at DESC LIMIT 10"
    )
    .fetch_all(pool)
    .await
    {
        Ok(runs) => runs,
        Err(e) => return pages::failure(lang, &e),
    };
    let concerns = snapshot.concerns(&Thresholds::default());
    let concern = |part: Part| concerns.iter().find(|c| c.part == part).map(|c| &c.message);
    let e = &snapshot.export;
    let o = &snapshot.outbox;
    let body = html! {
        p.hint { (lang.t_with("admin-health-taken", &[("at", lang.date_time(snapshot.taken_at).into())])) }
        h2 { (lang.t("admin-health-projections")) }
        (verdict(lang, concern(Part::ProjectionLag)))
        table aria-label=(lang.t("admin-health-projections")) {
            thead { tr {
                th scope="col" { (lang.t("admin-health-col-read-model")) }
                th scope="col" class="num" { (lang.t("admin-health-col-position")) }
                th scope="col" class="num" { (lang.t("admin-health-col-behind")) }
                th scope="col" { (lang.t("admin-health-col-oldest")) }
                th scope="col" { (lang.t("admin-health-col-state")) }
            } }
            tbody { @for p in &snapshot.projections {
                tr {
                    td { code { (p.name) } }
                    td.num { (p.position) }
                    td.num { (p.behind) }
                    td { (age(lang, p.oldest_unapplied_age)) }
                    td { (lang.t(if p.rebuilding { "admin-health-rebuilding" } else { "admin-health-running" })) }
                }
            } }
        }
        h2 { (lang.t("admin-health-export")) }
        (verdict(lang, concern(Part::ExportWorker)))
        dl.facts {
            dt { (lang.t("admin-health-last-success")) } dd { (at(lang, e.last_success_at)) }
            dt { (lang.t("admin-health-last-run")) } dd { (at(lang, e.last_run_at)) }
            dt { (lang.t("admin-health-last-error")) } dd {
                @match &e.last_error_code { Some(code) => code { (code) }, None => (lang.t("admin-none")) }
            }
            dt { (lang.t("admin-health-failures-in-row")) } dd { (e.consecutive_failures) }
            dt { (lang.t("admin-health-runs-total")) } dd {
                (lang.t_with("admin-health-runs-text", &[
                    ("succeeded", e.runs.succeeded.into()),
                    ("failed", e.runs.failed.into()),
                    ("busy", e.runs.busy.into()),
                ]))
            }
        }
        table aria-label=(lang.t("admin-health-runs")) {
            caption { (lang.t("admin-health-runs")) }
            thead { tr {
                th scope="col" { (lang.t("admin-health-col-started")) }
                th scope="col" { (lang.t("admin-health-col-finished")) }
                th scope="col" { (lang.t("admin-health-col-outcome")) }
                th scope="col" { (lang.t("admin-health-col-error")) }
            } }
            tbody {
                @if runs.is_empty() {
                    tr { td colspan="4" { (lang.t("admin-health-no-runs")) } }
                }
                @for r in &runs {
                    tr {
                        td { (lang.date_time(r.started_at)) }
                        td { (lang.date_time(r.finished_at)) }
                        td { (lang.t(&format!("admin-health-outcome-{}", r.outcome))) }
                        td { @if let Some(code) = &r.error_code { code { (code) } } }
                    }
                }
            }
        }
        h2 { (lang.t("admin-health-ladok")) }
        (verdict(lang, concern(Part::Ladok)))
        @match &snapshot.ladok {
            None => p { (lang.t("admin-health-ladok-unknown")) },
            Some(l) => dl.facts {
                dt { (lang.t("admin-health-ladok-pending")) } dd { (l.pending) }
                dt { (lang.t("admin-health-ladok-retrying")) } dd { (l.retrying) }
                dt { (lang.t("admin-health-ladok-failed")) } dd { (l.failed) }
                dt { (lang.t("admin-health-ladok-oldest")) } dd { (age(lang, l.oldest_age)) }
            },
        }
        h2 { (lang.t("admin-health-outbox")) }
        (verdict(lang, concern(Part::Outbox)))
        dl.facts {
            dt { (lang.t("admin-health-outbox-pending")) } dd { (o.pending) }
            dt { (lang.t("admin-health-outbox-retrying")) } dd { (o.retrying) }
            dt { (lang.t("admin-health-outbox-oldest")) } dd { (age(lang, o.oldest_pending_age)) }
            dt { (lang.t("admin-health-outbox-failed")) } dd { (o.failed) " " (lang.t_with("admin-health-outbox-failed-day", &[("n", o.failed_last_day.into())])) }
            dt { (lang.t("admin-health-outbox-sent")) } dd { (o.sent) }
            dt { (lang.t("admin-health-outbox-consumer")) } dd {
                (o.consumer_behind) " · " (age(lang, o.consumer_oldest_undecided_age))
            }
        }
    };
    ctx.page(&lang.t("admin-health-title"), body)
}
