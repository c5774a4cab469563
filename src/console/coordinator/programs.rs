//! A coordinator's programs and each program's home: what waits for review (oldest first), the
//! students at risk, a search by name or identity number, and the applications ready to approve.

use super::{Page, Student, program_of, students};
use crate::console::Console;
use crate::console::i18n::{Arg, Lang};
use crate::console::pages::{self, Ctx, Posted};
use crate::domain::program::Program;
use crate::domain::{PortfolioId, ProgramId};
use crate::http::reads;
use crate::projections::read_models::portfolio::{self, PortfolioSummary};
use crate::projections::read_models::review_queue::{self, QueueEntry, QueueItemKind};
use crate::projections::read_models::view::{PhaseName, PortfolioView, ReviewStatus};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{TimeDelta, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

/// Up to this many waiting items are shown (the oldest; the rest follow as they are decided).
const QUEUE_SHOWN: i64 = 200;
/// Rows per read of a program's portfolios.
const PORTFOLIO_PAGE: i64 = 200;

/// `GET /console/programs`: a card per program the coordinator is assigned to.
pub async fn list(State(console): State<Console>, ctx: Ctx) -> Response {
    let caller = &ctx.session.caller;
    if caller.role != crate::http::auth::Role::Coordinator {
        return ctx.not_found();
    }
    let _ = reads::caught_up(&console.app, "review_queue").await;
    let mut cards = Vec::new();
    for id in &caller.programs {
        let program = match program_of(&console, &ctx, &id.to_string()).await {
            Ok(p) => p,
            Err(response) => return response,
        };
        let waiting = match queue(&console, &ctx, *id).await {
            Ok(q) => q.len(),
            Err(response) => return response,
        };
        cards.push((program, waiting));
    }
    let lang = ctx.lang;
    let body = html! {
        @if cards.is_empty() {
            p { (lang.t("coord-no-programs")) }
        }
        ul.cards {
            @for (program, waiting) in &cards {
                li {
                    h2 { a href={ "/console/programs/" (program.id) } { (program.name.as_str()) } }
                    p { (program.code.as_str()) }
                    p { (lang.t_with("coord-waiting-count", &[("count", Arg::from(*waiting as i64))])) }
                }
            }
        }
    };
    ctx.page(&lang.t("coord-programs-title"), body)
}

/// The first [`QUEUE_SHOWN`] items waiting in `program`, oldest first.
async fn queue(console: &Console, ctx: &Ctx, program: ProgramId) -> Page<Vec<QueueEntry>> {
    review_queue::review_queue(&console.app.pool, program, Utc::now(), None, QUEUE_SHOWN)
        .await
        .map_err(|e| pages::failure(ctx.lang, &e))
}

/// Every portfolio of `program` (non-personal summaries).
async fn all_portfolios(
    console: &Console,
    ctx: &Ctx,
    program: ProgramId,
) -> Page<Vec<PortfolioSummary>> {
    let _ = reads::caught_up(&console.app, "portfolio").await;
    let today = crate::domain::stockholm_date(Utc::now());
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = portfolio::portfolios_of_program(
            &console.app.pool,
            program,
            None,
            after,
            PORTFOLIO_PAGE,
            today,
        )
        .await
        .map_err(|e| pages::failure(ctx.lang, &e))?;
        let full = page.len() as i64 == PORTFOLIO_PAGE;
        after = page.last().map(|p| p.portfolio_id);
        all.extend(page);
        if !full {
            return Ok(all);
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct HomeQuery {
    deadline_days: Option<String>,
    inactive_days: Option<String>,
    q: Option<String>,
}

/// A number of days from a form field: the default when empty or not a number.
fn days(field: Option<&str>, default: i64) -> i64 {
    field
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|d| (0..=3650).contains(d))
        .unwrap_or(default)
}

/// Whether a student matches a search: an identity number (its digits, 10 or 12, with or without
/// the century and the dash) or a part of the name, case-insensitive.
fn matches(student: &Student, q: &str) -> bool {
    let digits: String = q.chars().filter(char::is_ascii_digit).collect();
    if digits.len() >= 10
        && digits.len()
            == q.chars()
                .filter(|c| *c != '-' && *c != '+' && !c.is_whitespace())
                .count()
    {
        return !student.number.is_empty() && student.number.ends_with(&digits);
    }
    !q.trim().is_empty()
        && student
            .name
            .to_lowercase()
            .contains(&q.trim().to_lowercase())
}

/// `GET /console/programs/{program_id}?deadline_days=&inactive_days=&q=`: the program's home.
pub async fn home(
    State(console): State<Console>,
    ctx: Ctx,
    Path(program_id): Path<String>,
    Query(query): Query<HomeQuery>,
) -> Response {
    match home_page(&console, &ctx, &program_id, query).await {
        Ok(response) | Err(response) => response,
    }
}

/// `POST /console/programs/{program_id}`: the same page for the form's values. The form is posted
/// (with the session's token) so that an identity number searched for stays out of the URL, the
/// browser's history and proxies' access logs.
pub async fn search(
    State(console): State<Console>,
    Path(program_id): Path<String>,
    posted: Posted<HomeQuery>,
) -> Response {
    match home_page(&console, &posted.ctx, &program_id, posted.form).await {
        Ok(response) | Err(response) => response,
    }
}

async fn home_page(console: &Console, ctx: &Ctx, raw: &str, query: HomeQuery) -> Page<Response> {
    let program = program_of(console, ctx, raw).await?;
    let lang = ctx.lang;
    let _ = reads::caught_up(&console.app, "review_queue").await;
    let waiting = queue(console, ctx, program.id).await?;
    let all = all_portfolios(console, ctx, program.id).await?;
    let deadline_days = days(query.deadline_days.as_deref(), 30);
    let inactive_days = days(query.inactive_days.as_deref(), 60);
    let q = query.q.unwrap_or_default();
    let collecting = || all.iter().filter(|p| p.phase == PhaseName::Collecting);
    let mut near: Vec<&PortfolioSummary> = collecting()
        .filter(|p| p.days_left.is_some_and(|d| d <= deadline_days))
        .collect();
    near.sort_by_key(|p| p.days_left);
    let quiet_since = Utc::now() - TimeDelta::days(inactive_days);
    let mut quiet: Vec<&PortfolioSummary> = collecting()
        .filter(|p| p.updated_at < quiet_since)
        .collect();
    quiet.sort_by_key(|p| p.updated_at);
    // Names only for the rows shown, or for every portfolio of the program when searching.
    let mut shown: Vec<PortfolioId> = waiting.iter().map(|e| e.portfolio_id).collect();
    shown.extend(near.iter().chain(&quiet).map(|p| p.portfolio_id));
    if !q.trim().is_empty() {
        shown.extend(all.iter().map(|p| p.portfolio_id));
    }
    let names = students(console, ctx, shown).await?;
    let found: Vec<&PortfolioSummary> = if q.trim().is_empty() {
        Vec::new()
    } else {
        all.iter()
            .filter(|p| names.get(&p.portfolio_id).is_some_and(|s| matches(s, &q)))
            .collect()
    };
    let name = |id: &PortfolioId| names.get(id).map(|s| s.name.clone()).unwrap_or_default();
    let ready = ready_list(console, ctx, &program, &all).await?;
    let base = format!("/console/programs/{}", program.id);
    let body = html! {
        p {
            a href={ (base) "/audit" } { (lang.t("coord-audit-link")) }
            " · "
            a href={ (base) "/catalog" } { (lang.t("coord-catalog-link")) }
        }
        section aria-labelledby="queue-h" {
            h2 id="queue-h" { (lang.t("coord-queue-heading")) }
            @if waiting.is_empty() {
                p { (lang.t("coord-queue-empty")) }
            } @else {
                div.wide {
                table aria-label=(lang.t("coord-queue-heading")) {
                    thead { tr {
                        th scope="col" { (lang.t("coord-col-student")) }
                        th scope="col" { (lang.t("coord-col-what")) }
                        th scope="col" { (lang.t("coord-col-submitted")) }
                        th scope="col" class="num" { (lang.t("coord-col-waited")) }
                    } }
                    tbody {
                        @for e in &waiting {
                            tr {
                                td { a href={ "/console/portfolios/" (e.portfolio_id) } { (name(&e.portfolio_id)) } }
                                td { (what(lang, e)) }
                                td { (lang.date_time(e.submitted_at)) }
                                td.num { (lang.t_with("coord-days", &[("count", Arg::from(e.waited_days))])) }
                            }
                        }
                    }
                }
                }
            }
        }
        section aria-labelledby="risk-h" {
            h2 id="risk-h" { (lang.t("coord-risk-heading")) }
            form method="post" action=(base) {
                (ctx.form_keys())
                p {
                    label for="deadline_days" { (lang.t("coord-deadline-days")) }
                    " "
                    input type="number" id="deadline_days" name="deadline_days" min="0" value=(deadline_days);
                }
                p {
                    label for="inactive_days" { (lang.t("coord-inactive-days")) }
                    " "
                    input type="number" id="inactive_days" name="inactive_days" min="0" value=(inactive_days);
                }
                p {
                    label for="q" { (lang.t("coord-search")) }
                    " "
                    input type="search" id="q" name="q" value=(q);
                }
                button type="submit" { (lang.t("coord-show")) }
            }
            h3 { (lang.t_with("coord-near-heading", &[("count", Arg::from(deadline_days))])) }
            (portfolio_table(lang, "coord-near-heading-short", &near, &name))
            h3 { (lang.t_with("coord-quiet-heading", &[("count", Arg::from(inactive_days))])) }
            (portfolio_table(lang, "coord-quiet-heading-short", &quiet, &name))
            @if !q.trim().is_empty() {
                h3 { (lang.t("coord-found-heading")) }
                (portfolio_table(lang, "coord-found-heading", &found, &name))
            }
        }
        (ready_section(ctx, &program, &ready))
    };
    Ok(ctx.page(program.name.as_str(), body))
}

/// What waits, in words: the kind, the activity's name for a reflection, and the attempt.
fn what(lang: Lang, e: &QueueEntry) -> String {
    let kind = match e.kind {
        QueueItemKind::Reflection => "coord-kind-reflection",
        QueueItemKind::FinalReflection => "coord-kind-final-reflection",
        QueueItemKind::Application => "coord-kind-application",
        QueueItemKind::CompletionProposal => "coord-kind-completion-proposal",
        QueueItemKind::CompletionConfirmation => "coord-kind-completion-confirmation",
    };
    let mut text = lang.t(kind);
    if let Some(item) = &e.item_name {
        text = format!("{text}: {item}");
    }
    if matches!(
        e.kind,
        QueueItemKind::Reflection | QueueItemKind::FinalReflection
    ) && e.attempt > 1
    {
        text = format!(
            "{text} ({})",
            lang.t_with("coord-attempt", &[("n", Arg::from(i64::from(e.attempt)))])
        );
    }
    text
}

fn portfolio_table(
    lang: Lang,
    label: &str,
    rows: &[&PortfolioSummary],
    name: &dyn Fn(&PortfolioId) -> String,
) -> Markup {
    html! {
        @if rows.is_empty() {
            p { (lang.t("coord-none")) }
        } @else {
            table aria-label=(lang.t(label)) {
                thead { tr {
                    th scope="col" { (lang.t("coord-col-student")) }
                    th scope="col" { (lang.t("coord-col-deadline")) }
                    th scope="col" { (lang.t("coord-col-last-change")) }
                } }
                tbody {
                    @for p in rows {
                        tr {
                            td { a href={ "/console/portfolios/" (p.portfolio_id) } { (name(&p.portfolio_id)) } }
                            td {
                                (lang.date(p.deadline))
                                @if let Some(d) = p.days_left { " (" (lang.t_with("coord-days-left", &[("count", Arg::from(d))])) ")" }
                            }
                            td { (lang.date_time(p.updated_at)) }
                        }
                    }
                }
            }
        }
    }
}

/// The applications that meet every requirement: the required activities approved, the final
/// reflection approved, and the application waiting.
async fn ready_list(
    console: &Console,
    ctx: &Ctx,
    program: &Program,
    all: &[PortfolioSummary],
) -> Page<Vec<(PortfolioId, Student)>> {
    let mut ready = Vec::new();
    for summary in all.iter().filter(|p| p.phase == PhaseName::Applied) {
        let id = summary.portfolio_id;
        let (state, _) = console
            .app
            .commands
            .load_portfolio(id)
            .await
            .map_err(|e| pages::failure(ctx.lang, &e))?;
        let Some(p) = state.opened().filter(|p| p.program_id == program.id) else {
            continue;
        };
        let view = PortfolioView::build(p, &program.rules);
        let r = &view.requirements;
        if r.approved >= u32::from(r.required_activities)
            && view.final_reflection.status == ReviewStatus::Approved
            && view.application.pending.is_some()
        {
            ready.push((id, super::student_of(p)));
        }
    }
    Ok(ready)
}

fn ready_section(ctx: &Ctx, program: &Program, ready: &[(PortfolioId, Student)]) -> Markup {
    let lang = ctx.lang;
    html! {
        section aria-labelledby="ready-h" {
            h2 id="ready-h" { (lang.t("coord-ready-heading")) }
            @if ready.is_empty() {
                p { (lang.t("coord-ready-none")) }
            } @else {
                form method="post" action={ "/console/programs/" (program.id) "/approve" }
                     data-confirm=(lang.t("coord-ready-confirm")) {
                    (ctx.form_keys())
                    p {
                        input type="checkbox" id="select-all" data-select-all="portfolio";
                        " "
                        label for="select-all" { (lang.t("coord-select-all")) }
                    }
                    ul.people {
                        @for (i, (id, student)) in ready.iter().enumerate() {
                            li {
                                input type="checkbox" id={ "ready-" (i) } name="portfolio" value=(id);
                                " "
                                label for={ "ready-" (i) } { (student.name) }
                                " · "
                                a href={ "/console/portfolios/" (id) } { (lang.t_with("coord-open-portfolio-of", &[("name", Arg::from(student.name.clone()))])) }
                            }
                        }
                    }
                    button type="submit" { (lang.t("coord-approve-chosen")) }
                }
            }
        }
    }
}

/// `GET /console/programs/{program_id}/ready`: only the applications ready to approve.
pub async fn ready(
    State(console): State<Console>,
    ctx: Ctx,
    Path(program_id): Path<String>,
) -> Response {
    let page = async {
        let program = program_of(&console, &ctx, &program_id).await?;
        let all = all_portfolios(&console, &ctx, program.id).await?;
        let ready = ready_list(&console, &ctx, &program, &all).await?;
        let title = format!(
            "{} – {}",
            program.name.as_str(),
            ctx.t("coord-ready-heading")
        );
        Ok::<_, Response>(ctx.page(&title, ready_section(&ctx, &program, &ready)))
    };
    match page.await {
        Ok(response) | Err(response) => response,
    }
}

/// `POST /console/programs/{program_id}/approve` (`portfolio` once per chosen application):
/// approves each through the API and shows how many were approved and which were refused, why.
pub async fn approve(
    State(console): State<Console>,
    Path(program_id): Path<String>,
    posted: Posted<Vec<(String, String)>>,
) -> Response {
    let ctx = &posted.ctx;
    let lang = ctx.lang;
    let program = match program_of(&console, ctx, &program_id).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let chosen: Vec<PortfolioId> = posted
        .form
        .iter()
        .filter(|(k, _)| k == "portfolio")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    let names = match students(&console, ctx, chosen.clone()).await {
        Ok(n) => n,
        Err(response) => return response,
    };
    let mut approved = 0_i64;
    let mut refused = Vec::new();
    for id in &chosen {
        // Only this program's portfolios (`students` kept only those the caller coordinates).
        let Some(student) = names.get(id) else {
            refused.push((id.to_string(), lang.t("not-found-text")));
            continue;
        };
        // One idempotency key per application, derived from the form's, so a form sent twice is
        // each approval once.
        let key = posted.key.as_ref().map(|k| {
            uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, format!("{k}/{id}").as_bytes())
                .to_string()
        });
        let path = format!("/portfolios/{id}/application/approve");
        match console
            .api_post(&ctx.session, &path, &json!({}), key.as_deref())
            .await
        {
            Ok(_) => approved += 1,
            Err(refusal) => {
                refused.push((student.name.clone(), pages::refusal_text(lang, &refusal)))
            }
        }
    }
    let back = format!("/console/programs/{}", program.id);
    let body = html! {
        p.done role="status" { (lang.t_with("coord-approved-count", &[("count", Arg::from(approved))])) }
        @if !refused.is_empty() {
            h2 { (lang.t("coord-refused-heading")) }
            ul {
                @for (who, why) in &refused {
                    li { strong { (who) } ": " (why) }
                }
            }
        }
        p { a href=(back) { (lang.t("coord-back-to-program")) } }
    };
    ctx.page(&lang.t("coord-bulk-title"), body).into_response()
}
