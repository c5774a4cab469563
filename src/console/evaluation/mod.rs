//! The pilot evaluation (issue #19, item 5): the statistics read model's figures, overall and per
//! program, as plots with their numbers beside them, for one academic year or all, and as CSV.
//! Aggregates only: nothing here identifies a student.
//!
//! Who sees what is `GET /statistics`'s rule (`http::routes::statistics`): the overall figures are
//! for administrators and every coordinator, a program's for its coordinators and administrators.
//! The API gives the registrar nothing here, so neither does the console (404, as for students).

mod figures;
mod plots;

use super::i18n::Lang;
use super::pages::{self, Ctx};
use super::session::Session;
use super::{Console, ConsoleRoute, r};
use crate::domain::ProgramId;
use crate::http::auth::{Caller, Role};
use crate::projections::read_models::statistics::{self, Opened};
use axum::extract::{Path, Query, State};
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{Datelike, NaiveDate, TimeZone};
use figures::{Figures, Section};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;
use std::collections::HashMap;

/// The routes of this area.
pub fn routes() -> Vec<ConsoleRoute> {
    use Method as M;
    vec![
        r(M::GET, "/console/evaluation", get(overall)),
        r(M::GET, "/console/evaluation.csv", get(overall_csv)),
        r(M::GET, "/console/evaluation/{program_id}", get(of_program)),
        r(
            M::GET,
            "/console/evaluation/{program_id}/figures.csv",
            get(program_csv),
        ),
    ]
}

/// Days without a student's own event after which an open portfolio counts as dropped off: the
/// API's default (`http::routes::statistics::DEFAULT_INACTIVE_DAYS`, private to the API).
const INACTIVE_DAYS: u32 = 60;
/// The first academic year offered in the filter: the pilot's.
const FIRST_YEAR: i32 = 2025;

#[derive(Debug, Default, Deserialize)]
pub struct YearQuery {
    /// The calendar year the academic year starts in (`2025` = 1 July 2025 – 30 June 2026).
    year: Option<String>,
}

impl YearQuery {
    fn year(&self) -> Option<i32> {
        self.year.as_deref().and_then(|y| y.trim().parse().ok())
    }
}

/// An academic year, 1 July to 30 June, as the instants (Swedish time) its portfolios were opened
/// in; all years when `None`.
fn academic_year(year: Option<i32>) -> Opened {
    let start = |y: i32| {
        NaiveDate::from_ymd_opt(y, 7, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|t| {
                chrono_tz::Europe::Stockholm
                    .from_local_datetime(&t)
                    .single()
            })
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    match year {
        Some(y) => Opened {
            from: start(y),
            until: start(y + 1),
        },
        None => Opened::default(),
    }
}

/// The academic year today is in.
fn current_year() -> i32 {
    let today = crate::domain::stockholm_date(chrono::Utc::now());
    if today.month() >= 7 {
        today.year()
    } else {
        today.year() - 1
    }
}

fn year_name(year: i32) -> String {
    format!("{year}/{:02}", (year + 1) % 100)
}

/// Whether `caller` may see the figures of `program` (overall when `None`): the API's rule.
fn may_see(caller: &Caller, program: Option<ProgramId>) -> bool {
    match (caller.role, program) {
        (Role::Admin, _) | (Role::Coordinator, None) => true,
        (Role::Coordinator, Some(p)) => crate::http::reads::coordinator_of(caller, p).is_ok(),
        _ => false,
    }
}

#[derive(Debug, Deserialize)]
pub struct ProgramPath {
    program_id: ProgramId,
}

async fn overall(ctx: Ctx, State(console): State<Console>, Query(q): Query<YearQuery>) -> Response {
    page(ctx, console, None, q).await
}

async fn of_program(
    State(console): State<Console>,
    Path(path): Path<ProgramPath>,
    ctx: Ctx,
    Query(q): Query<YearQuery>,
) -> Response {
    page(ctx, console, Some(path.program_id), q).await
}

async fn overall_csv(
    ctx: Ctx,
    State(console): State<Console>,
    Query(q): Query<YearQuery>,
) -> Response {
    csv(ctx, console, None, q).await
}

async fn program_csv(
    State(console): State<Console>,
    Path(path): Path<ProgramPath>,
    ctx: Ctx,
    Query(q): Query<YearQuery>,
) -> Response {
    csv(ctx, console, Some(path.program_id), q).await
}

/// The figures of `program` (or overall) for the query's year.
async fn read(
    console: &Console,
    session: &Session,
    program: Option<ProgramId>,
    q: &YearQuery,
) -> Result<Figures, crate::projections::read_models::ReadError> {
    let opened = academic_year(q.year());
    let pool = &console.app.pool;
    let stats = statistics::statistics_opened(pool, program, opened).await?;
    let drop_off =
        statistics::drop_off_opened(pool, program, opened, chrono::Utc::now(), INACTIVE_DAYS)
            .await?;
    let item_names = item_names(console, session, program).await;
    Ok(Figures {
        stats,
        drop_off,
        item_names,
    })
}

/// The names of the catalog items of `program`, or of every program (the pilot's share one
/// catalog; the first name of a key wins), from the API's `GET /programs/{id}`. Without them the
/// keys are shown.
async fn item_names(
    console: &Console,
    session: &Session,
    program: Option<ProgramId>,
) -> HashMap<String, String> {
    let programs = match program {
        Some(p) => vec![p],
        None => super::student::programs(console)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|(id, _)| id)
            .collect(),
    };
    let mut names = HashMap::new();
    for id in programs {
        let Ok(view) = console.api_get(session, &format!("/programs/{id}")).await else {
            continue;
        };
        for item in view["catalog"].as_array().into_iter().flatten() {
            if let (Some(key), Some(name)) = (item["item"].as_str(), item["name"].as_str()) {
                names
                    .entry(key.to_owned())
                    .or_insert_with(|| name.to_owned());
            }
        }
    }
    names
}

async fn page(ctx: Ctx, console: Console, program: Option<ProgramId>, q: YearQuery) -> Response {
    if !may_see(&ctx.session.caller, program) {
        return ctx.not_found();
    }
    let figures = match read(&console, &ctx.session, program, &q).await {
        Ok(figures) => figures,
        Err(e) => return pages::failure(ctx.lang, &e),
    };
    let programs = match super::student::programs(&console).await {
        Ok(all) => all
            .into_iter()
            .filter(|(id, _)| may_see(&ctx.session.caller, Some(*id)))
            .collect::<Vec<_>>(),
        Err(e) => return pages::failure(ctx.lang, &e),
    };
    let lang = ctx.lang;
    let title = match program {
        None => lang.t("eval-title-overall"),
        Some(p) => {
            let name = programs
                .iter()
                .find(|(id, _)| *id == p)
                .map_or_else(|| p.to_string(), |(_, n)| n.clone());
            lang.t_with("eval-title-program", &[("program", name.into())])
        }
    };
    let here = program.map_or_else(
        || "/console/evaluation".to_owned(),
        |p| format!("/console/evaluation/{p}"),
    );
    let csv_link = match program {
        None => "/console/evaluation.csv".to_owned(),
        Some(p) => format!("/console/evaluation/{p}/figures.csv"),
    };
    let csv_link = match q.year() {
        Some(y) => format!("{csv_link}?year={y}"),
        None => csv_link,
    };
    let sections = figures::sections(lang, &figures);
    let body = html! {
        p { (lang.t("eval-intro")) }
        (year_form(lang, &here, q.year()))
        (scopes(lang, program, &programs, q.year()))
        p { a href=(csv_link) download { (lang.t("eval-csv")) } }
        @for (i, section) in sections.iter().enumerate() {
            (show(lang, i, section))
        }
    };
    ctx.page(&title, body)
}

/// The academic-year filter (a GET form: the page's address names the year).
fn year_form(lang: Lang, here: &str, chosen: Option<i32>) -> Markup {
    html! {
        form.filter method="get" action=(here) {
            label for="eval-year" { (lang.t("eval-year")) }
            select id="eval-year" name="year" {
                option value="" selected[chosen.is_none()] { (lang.t("eval-all-years")) }
                @for y in (FIRST_YEAR..=current_year().max(FIRST_YEAR)).rev() {
                    option value=(y) selected[chosen == Some(y)] { (year_name(y)) }
                }
            }
            button type="submit" { (lang.t("eval-show")) }
        }
    }
}

/// Links to the overall figures and to each program the person may see.
fn scopes(
    lang: Lang,
    current: Option<ProgramId>,
    programs: &[(ProgramId, String)],
    year: Option<i32>,
) -> Markup {
    let query = year.map(|y| format!("?year={y}")).unwrap_or_default();
    html! {
        nav aria-label=(lang.t("eval-scopes")) {
            ul.scopes {
                li {
                    @if current.is_none() {
                        a href={ "/console/evaluation" (query) } aria-current="page" { (lang.t("eval-overall")) }
                    } @else {
                        a href={ "/console/evaluation" (query) } { (lang.t("eval-overall")) }
                    }
                }
                @for (id, name) in programs {
                    li {
                        @if current == Some(*id) {
                            a href={ "/console/evaluation/" (id) (query) } aria-current="page" { (name) }
                        } @else {
                            a href={ "/console/evaluation/" (id) (query) } { (name) }
                        }
                    }
                }
            }
        }
    }
}

/// One section: its heading, its plot when it has one, and its numbers in a table.
fn show(lang: Lang, i: usize, section: &Section) -> Markup {
    let title = lang.t(&format!("eval-section-{}", section.key.replace('_', "-")));
    html! {
        section aria-labelledby={ "eval-s" (i) } {
            h2 id={ "eval-s" (i) } { (title) }
            @if section.rows.is_empty() {
                p { (lang.t("eval-none")) }
            } @else {
                @if section.plotted {
                    figure.plot {
                        (PreEscaped(plots::bar_chart(&title, &section.bars())))
                        figcaption { (lang.t(&format!("eval-caption-{}", section.key.replace('_', "-")))) }
                    }
                }
                table.numbers aria-label=(title) {
                    thead { tr {
                        th scope="col" { (lang.t("eval-col-what")) }
                        th scope="col" { (lang.t("eval-col-number")) }
                    } }
                    tbody {
                        @for row in &section.rows {
                            tr { th scope="row" { (row.label) } td.num { (row.shown) } }
                        }
                    }
                }
            }
        }
    }
}

/// The numbers of every section as CSV: `section,key,value`, keys and values as the API names and
/// counts them (not translated, for spreadsheets and scripts).
async fn csv(ctx: Ctx, console: Console, program: Option<ProgramId>, q: YearQuery) -> Response {
    if !may_see(&ctx.session.caller, program) {
        return ctx.not_found();
    }
    let figures = match read(&console, &ctx.session, program, &q).await {
        Ok(figures) => figures,
        Err(e) => return pages::failure(ctx.lang, &e),
    };
    let mut out = String::from("section,key,value\r\n");
    for section in figures::sections(ctx.lang, &figures) {
        for row in &section.rows {
            out.push_str(&format!(
                "{},{},{}\r\n",
                figures::csv_field(section.key),
                figures::csv_field(&row.key),
                figures::csv_field(&row.raw)
            ));
        }
    }
    let scope = program.map_or_else(|| "overall".to_owned(), |p| p.to_string());
    let year = q.year().map_or_else(|| "all".to_owned(), |y| y.to_string());
    let disposition = format!("attachment; filename=\"evaluation-{scope}-{year}.csv\"");
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_academic_year_runs_from_july_to_june_in_swedish_time() {
        let opened = academic_year(Some(2025));
        assert_eq!(
            opened.from.unwrap().to_rfc3339(),
            "2025-06-30T22:00:00+00:00"
        );
        assert_eq!(
            opened.until.unwrap().to_rfc3339(),
            "2026-06-30T22:00:00+00:00"
        );
        assert_eq!(academic_year(None), Opened::default());
        assert_eq!(year_name(2025), "2025/26");
        assert_eq!(year_name(2099), "2099/00");
    }
}
