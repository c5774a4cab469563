//! `GET /console/admin/programs` and `/console/admin/programs/{id}`: every program with its
//! coordinators, catalog and rules (the API's `ProgramView`, from the program's stream), the rules'
//! versions, and the forms to register a program and to assign and unassign coordinators.

use super::not_admin;
use crate::console::Console;
use crate::console::pages::{self, Ctx, Posted};
use crate::console::program_rules::{program, rules_table, rules_versions, versions_table};
use crate::domain::ProgramId;
use crate::http::view::ProgramView;
use axum::extract::{Path, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::console::program_rules::Failure;

/// Every registered program, as `GET /programs/{id}` shows it, ordered by code. Programs are
/// few (tens), so each is folded from its own stream, the source the API answers from.
pub async fn registered(console: &Console) -> Result<Vec<ProgramView>, Failure> {
    let streams = sqlx::query_scalar!(
        "SELECT stream_id FROM events WHERE event_type = 'ProgramRegistered' ORDER BY position"
    )
    .fetch_all(&console.app.pool)
    .await?;
    let mut programs = Vec::new();
    for stream in streams {
        let Some(id) = stream
            .strip_prefix("program-")
            .and_then(|id| Uuid::parse_str(id).ok())
        else {
            continue;
        };
        if let Some(view) = program(console, ProgramId::new(id)).await? {
            programs.push(view);
        }
    }
    programs.sort_by(|a, b| a.code.as_str().cmp(b.code.as_str()));
    Ok(programs)
}

pub async fn list(ctx: Ctx, State(console): State<Console>) -> Response {
    if let Some(no) = not_admin(&ctx) {
        return no;
    }
    let lang = ctx.lang;
    let programs = match registered(&console).await {
        Ok(programs) => programs,
        Err(e) => return pages::failure(lang, e.as_ref()),
    };
    let body = html! {
        h2 { (lang.t("admin-programs-heading")) }
        table aria-label=(lang.t("admin-programs-heading")) {
            thead { tr {
                th scope="col" { (lang.t("admin-col-code")) }
                th scope="col" { (lang.t("admin-col-name")) }
                th scope="col" { (lang.t("admin-col-coordinators")) }
                th scope="col" class="num" { (lang.t("admin-col-catalog")) }
                th scope="col" class="num" { (lang.t("admin-col-rules-version")) }
            } }
            tbody { @for p in &programs {
                tr {
                    td { a href={ "/console/admin/programs/" (p.id) } { (p.code) } }
                    td { (p.name) }
                    td { @if p.coordinators.is_empty() { (lang.t("admin-none")) } @else {
                        (p.coordinators.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
                    } }
                    td.num { (p.catalog.iter().filter(|i| !i.retired).count()) }
                    td.num { (p.rules_version) }
                }
            } }
        }
        h2 { (lang.t("admin-register-heading")) }
        form.stack method="post" action="/console/admin/programs" {
            (ctx.form_keys())
            label for="admin-program-code" { (lang.t("admin-program-code")) }
            span.hint id="admin-program-code-hint" { (lang.t("admin-program-code-hint")) }
            input id="admin-program-code" name="code" required aria-describedby="admin-program-code-hint" autocomplete="off";
            label for="admin-program-name" { (lang.t("admin-program-name")) }
            input id="admin-program-name" name="name" required autocomplete="off";
            div { button type="submit" { (lang.t("admin-register")) } }
        }
    };
    ctx.page(&lang.t("admin-programs-title"), body)
}

#[derive(Debug, Deserialize)]
pub struct Register {
    code: String,
    name: String,
}

pub async fn register(State(console): State<Console>, posted: Posted<Register>) -> Response {
    let ctx = posted.ctx;
    if let Some(no) = not_admin(&ctx) {
        return no;
    }
    let body = json!({ "code": posted.form.code.trim(), "name": posted.form.name.trim() });
    let back = "/console/admin/programs";
    match console
        .api_post(&ctx.session, "/programs", &body, posted.key.as_deref())
        .await
    {
        Ok(view) => match view["id"].as_str() {
            Some(id) => pages::done(
                &format!("/console/admin/programs/{id}"),
                "admin-program-registered",
            ),
            None => pages::done(back, "admin-program-registered"),
        },
        Err(refusal) => ctx.refused(&refusal, back),
    }
}

pub async fn show(
    ctx: Ctx,
    State(console): State<Console>,
    Path(program_id): Path<String>,
) -> Response {
    if let Some(no) = not_admin(&ctx) {
        return no;
    }
    let lang = ctx.lang;
    let Ok(id) = Uuid::parse_str(&program_id).map(ProgramId::new) else {
        return ctx.not_found();
    };
    let (p, versions) = match program(&console, id).await {
        Ok(Some(p)) => match rules_versions(&console, id).await {
            Ok(versions) => (p, versions),
            Err(e) => return pages::failure(lang, e.as_ref()),
        },
        Ok(None) => return ctx.not_found(),
        Err(e) => return pages::failure(lang, e.as_ref()),
    };
    let here = format!("/console/admin/programs/{id}");
    let body = html! {
        p { a href="/console/admin/programs" { (lang.t("admin-back-to-programs")) } }
        dl.facts {
            dt { (lang.t("admin-col-code")) } dd { (p.code) }
            dt { (lang.t("admin-col-name")) } dd { (p.name) }
        }
        h2 { (lang.t("admin-coordinators-heading")) }
        @if p.coordinators.is_empty() {
            p { (lang.t("admin-coordinators-none")) }
        } @else {
            ul.people { @for staff in &p.coordinators {
                li {
                    form.inline method="post" action={ (here) "/coordinators/unassign" }
                        data-confirm=(lang.t_with("admin-unassign-confirm", &[("staff", staff.to_string().into())])) {
                        (ctx.form_keys())
                        input type="hidden" name="staff" value=(staff);
                        span { (staff) }
                        button.secondary type="submit" { (lang.t_with("admin-unassign", &[("staff", staff.to_string().into())])) }
                    }
                }
            } }
        }
        form.inline method="post" action={ (here) "/coordinators" } {
            (ctx.form_keys())
            label for="admin-staff" { (lang.t("admin-staff")) }
            input id="admin-staff" name="staff" required autocomplete="off";
            button type="submit" { (lang.t("admin-assign")) }
        }
        h2 { (lang.t("admin-catalog-heading")) }
        p.hint { (lang.t("admin-catalog-hint")) }
        @if p.catalog.is_empty() {
            p { (lang.t("admin-catalog-none")) }
        } @else {
            table aria-label=(lang.t("admin-catalog-heading")) {
                thead { tr {
                    th scope="col" { (lang.t("admin-col-item")) }
                    th scope="col" { (lang.t("admin-col-name")) }
                    th scope="col" { (lang.t("admin-col-in-use")) }
                } }
                tbody { @for item in &p.catalog {
                    tr {
                        td { code { (item.item) } }
                        td { (item.name) }
                        td { (lang.t(if item.retired { "admin-retired" } else { "admin-in-use" })) }
                    }
                } }
            }
        }
        h2 { (lang.t_with("admin-rules-heading-version", &[("version", i64::from(p.rules_version).into())])) }
        (rules_table(lang, &p.rules))
        h3 { (lang.t("admin-versions-heading")) }
        (versions_table(lang, &versions))
    };
    let title = lang.t_with(
        "admin-program-title",
        &[("code", p.code.to_string().into())],
    );
    ctx.page(&title, body)
}

#[derive(Debug, Deserialize)]
pub struct Staff {
    staff: String,
}

/// Assigning or unassigning a coordinator through the API (`/programs/{id}/coordinators[/unassign]`).
async fn staffing(
    console: Console,
    program_id: String,
    posted: Posted<Staff>,
    unassign: bool,
) -> Response {
    let ctx = posted.ctx;
    if let Some(no) = not_admin(&ctx) {
        return no;
    }
    let Ok(id) = Uuid::parse_str(&program_id) else {
        return ctx.not_found();
    };
    let back = format!("/console/admin/programs/{id}");
    let (path, done) = if unassign {
        (
            format!("/programs/{id}/coordinators/unassign"),
            "admin-unassigned",
        )
    } else {
        (format!("/programs/{id}/coordinators"), "admin-assigned")
    };
    let body = json!({ "staff": posted.form.staff.trim() });
    match console
        .api_post(&ctx.session, &path, &body, posted.key.as_deref())
        .await
    {
        Ok(_) => pages::done(&back, done),
        Err(refusal) => ctx.refused(&refusal, &back),
    }
}

pub async fn assign(
    State(console): State<Console>,
    Path(program_id): Path<String>,
    posted: Posted<Staff>,
) -> Response {
    staffing(console, program_id, posted, false).await
}

pub async fn unassign(
    State(console): State<Console>,
    Path(program_id): Path<String>,
    posted: Posted<Staff>,
) -> Response {
    staffing(console, program_id, posted, true).await
}
