//! `GET /console/programs/{id}/catalog`: a program's activity catalog and rules, which its
//! coordinators manage (`domain.md`: "manage their program's activity catalog"): add, rename and
//! retire catalog items, change the rules, and see the rules' versions. Every change goes through
//! the API (`/programs/{id}/catalog…`, `/programs/{id}/rules`), which records who made it.

use super::{Page, program_of};
use crate::console::Console;
use crate::console::pages::{self, Ctx, Posted};
use crate::console::program_rules::{
    Failure, program, rules_table, rules_versions, versions_table,
};
use crate::domain::{CatalogItemId, ProgramId, ProgramRules};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

/// The page.
pub async fn page(
    ctx: Ctx,
    State(console): State<Console>,
    Path(program_id): Path<String>,
) -> Response {
    match render(&ctx, &console, &program_id).await {
        Ok(response) | Err(response) => response,
    }
}

async fn render(ctx: &Ctx, console: &Console, raw: &str) -> Page<Response> {
    let id = program_of(console, ctx, raw).await?.id;
    let lang = ctx.lang;
    let failed = |e: Failure| pages::failure(lang, e.as_ref());
    let p = program(console, id)
        .await
        .map_err(failed)?
        .ok_or_else(|| ctx.not_found())?;
    let versions = rules_versions(console, id).await.map_err(failed)?;
    let here = format!("/console/programs/{id}/catalog");
    let body = html! {
        p { a href={ "/console/programs/" (id) } { (lang.t("coord-back-to-program")) } }
        h2 { (lang.t("admin-catalog-heading")) }
        table aria-label=(lang.t("admin-catalog-heading")) {
            thead { tr {
                th scope="col" { (lang.t("admin-col-item")) }
                th scope="col" { (lang.t("admin-col-name")) }
                th scope="col" { (lang.t("admin-col-in-use")) }
                th scope="col" { (lang.t("coord-catalog-change")) }
            } }
            tbody { @for (i, item) in p.catalog.iter().enumerate() {
                tr {
                    td { code { (item.item) } }
                    td { (item.name) }
                    td { (lang.t(if item.retired { "admin-retired" } else { "admin-in-use" })) }
                    td {
                        form.inline method="post" action={ (here) "/" (item.item) "/rename" } {
                            (ctx.form_keys())
                            label for={ "rename-" (i) } { (lang.t("coord-catalog-new-name")) }
                            input id={ "rename-" (i) } name="name" required value=(item.name);
                            button.secondary type="submit" { (lang.t("coord-catalog-rename")) }
                        }
                        @if !item.retired {
                            form.inline method="post" action={ (here) "/" (item.item) "/retire" }
                                data-confirm=(lang.t("coord-catalog-retire-confirm")) {
                                (ctx.form_keys())
                                button.secondary type="submit" { (lang.t("coord-catalog-retire")) }
                            }
                        }
                    }
                }
            } }
        }
        h3 { (lang.t("coord-catalog-add-heading")) }
        form.stack method="post" action=(here) {
            (ctx.form_keys())
            label for="add-item" { (lang.t("admin-col-item")) span.hint { " " (lang.t("coord-catalog-item-hint")) } }
            input id="add-item" name="item" required pattern="[a-z0-9-]+" autocomplete="off";
            label for="add-name" { (lang.t("admin-col-name")) }
            input id="add-name" name="name" required;
            button type="submit" { (lang.t("coord-catalog-add")) }
        }
        h2 { (lang.t_with("admin-rules-heading-version", &[("version", i64::from(p.rules_version).into())])) }
        (rules_table(lang, &p.rules))
        h3 { (lang.t("coord-rules-change-heading")) }
        p.hint { (lang.t("coord-rules-change-hint")) }
        (rules_form(ctx, &format!("/console/programs/{id}/rules"), &p.rules))
        h3 { (lang.t("admin-versions-heading")) }
        (versions_table(lang, &versions))
    };
    let title = lang.t_with(
        "coord-catalog-title",
        &[("program", p.name.to_string().into())],
    );
    Ok(ctx.page(&title, body))
}

/// The rules as a form, one field per rule, filled with the rules in force.
fn rules_form(ctx: &Ctx, action: &str, r: &ProgramRules) -> Markup {
    let lang = ctx.lang;
    let number = |name: &str, key: &str, value: u32| {
        html! {
            label for={ "rule-" (name) } { (lang.t(key)) }
            input id={ "rule-" (name) } name=(name) type="number" min="0" required value=(value);
        }
    };
    let check = |name: &str, key: &str, on: bool| {
        html! {
            label for={ "rule-" (name) } {
                input id={ "rule-" (name) } name=(name) type="checkbox" value="on" checked[on];
                " " (lang.t(key))
            }
        }
    };
    html! {
        form.stack method="post" action=(action) data-confirm=(lang.t("coord-rules-confirm")) {
            (ctx.form_keys())
            (number("required_activities", "admin-rule-required", u32::from(r.required_activities)))
            (check("allow_repeat_items", "admin-rule-repeat", r.allow_repeat_items))
            (number("written_min", "coord-rule-written-min", r.written.min))
            (number("written_max", "coord-rule-written-max", r.written.max))
            (number("oral_min_s", "coord-rule-oral-min", r.oral.min_s))
            (number("oral_max_s", "coord-rule-oral-max", r.oral.max_s))
            (number("oral_tolerance_s", "coord-rule-oral-tolerance", r.oral.tolerance_s))
            (number("instagram_min_posts", "coord-rule-instagram-posts", r.instagram.min_posts))
            (number("instagram_words_min", "coord-rule-instagram-min", r.instagram.words.min))
            (number("instagram_words_max", "coord-rule-instagram-max", r.instagram.words.max))
            (number("final_written_min", "coord-rule-final-min", r.final_written.min))
            (number("final_written_max", "coord-rule-final-max", r.final_written.max))
            (number("final_oral_min_s", "admin-rule-final-oral", r.final_oral_min_s))
            (number("final_deadline_offset_days", "admin-rule-deadline", r.final_deadline_offset_days))
            (check("allow_declared_duration", "admin-rule-declared", r.allow_declared_duration))
            label for="rule-video_platform_hosts" { (lang.t("admin-rule-video-hosts")) span.hint { " " (lang.t("coord-rule-hosts-hint")) } }
            input id="rule-video_platform_hosts" name="video_platform_hosts" value=(r.video_platform_hosts.join(", "));
            button type="submit" { (lang.t("coord-rules-save")) }
        }
    }
}

/// The rules form as posted. Numbers arrive as text; a checkbox left empty is absent.
#[derive(Debug, Deserialize)]
pub struct RulesForm {
    required_activities: String,
    allow_repeat_items: Option<String>,
    written_min: String,
    written_max: String,
    oral_min_s: String,
    oral_max_s: String,
    oral_tolerance_s: String,
    instagram_min_posts: String,
    instagram_words_min: String,
    instagram_words_max: String,
    final_written_min: String,
    final_written_max: String,
    final_oral_min_s: String,
    final_deadline_offset_days: String,
    allow_declared_duration: Option<String>,
    #[serde(default)]
    video_platform_hosts: String,
}

impl RulesForm {
    /// The API's `{"rules": …}`, or `None` when a number is not one.
    fn body(&self) -> Option<Value> {
        let n = |s: &str| s.trim().parse::<u32>().ok();
        let hosts: Vec<&str> = self
            .video_platform_hosts
            .split([',', ' '])
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect();
        Some(json!({ "rules": {
            "required_activities": n(&self.required_activities)?,
            "allow_repeat_items": self.allow_repeat_items.is_some(),
            "written": { "min": n(&self.written_min)?, "max": n(&self.written_max)? },
            "oral": { "min_s": n(&self.oral_min_s)?, "max_s": n(&self.oral_max_s)?,
                      "tolerance_s": n(&self.oral_tolerance_s)? },
            "instagram": { "min_posts": n(&self.instagram_min_posts)?,
                           "words": { "min": n(&self.instagram_words_min)?, "max": n(&self.instagram_words_max)? } },
            "final_written": { "min": n(&self.final_written_min)?, "max": n(&self.final_written_max)? },
            "final_oral_min_s": n(&self.final_oral_min_s)?,
            "final_deadline_offset_days": n(&self.final_deadline_offset_days)?,
            "allow_declared_duration": self.allow_declared_duration.is_some(),
            "video_platform_hosts": hosts,
        }}))
    }
}

/// `POST /console/programs/{id}/rules`.
pub async fn change_rules(
    State(console): State<Console>,
    Path(program_id): Path<String>,
    posted: Posted<RulesForm>,
) -> Response {
    let ctx = &posted.ctx;
    let Some(body) = posted.form.body() else {
        return pages::bare(
            ctx.lang,
            StatusCode::BAD_REQUEST,
            "bad-form-title",
            "bad-form-text",
        );
    };
    send(
        &console,
        &posted,
        &program_id,
        "/rules",
        &body,
        "coord-rules-changed",
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct NewItem {
    item: String,
    name: String,
}

/// `POST /console/programs/{id}/catalog`.
pub async fn add(
    State(console): State<Console>,
    Path(program_id): Path<String>,
    posted: Posted<NewItem>,
) -> Response {
    let body = json!({ "item": posted.form.item.trim(), "name": posted.form.name.trim() });
    send(
        &console,
        &posted,
        &program_id,
        "/catalog",
        &body,
        "coord-item-added",
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct OnItem {
    program_id: String,
    item: String,
}

#[derive(Debug, Deserialize)]
pub struct NewName {
    name: String,
}

/// The API's path (after the program's) of `action` on catalog item `raw`; `None` when `raw` is
/// not an item key, so a crafted value cannot reach another route.
fn item_route(raw: &str, action: &str) -> Option<String> {
    let item = CatalogItemId::parse(raw).ok()?;
    Some(format!("/catalog/{item}/{action}"))
}

/// `POST /console/programs/{id}/catalog/{item}/rename`.
pub async fn rename(
    State(console): State<Console>,
    Path(path): Path<OnItem>,
    posted: Posted<NewName>,
) -> Response {
    let Some(suffix) = item_route(&path.item, "rename") else {
        return posted.ctx.not_found();
    };
    let body = json!({ "name": posted.form.name.trim() });
    send(
        &console,
        &posted,
        &path.program_id,
        &suffix,
        &body,
        "coord-item-renamed",
    )
    .await
}

/// `POST /console/programs/{id}/catalog/{item}/retire`.
pub async fn retire(
    State(console): State<Console>,
    Path(path): Path<OnItem>,
    posted: Posted<Value>,
) -> Response {
    let Some(suffix) = item_route(&path.item, "retire") else {
        return posted.ctx.not_found();
    };
    // The API's retire takes no body (it ignores one).
    let body = json!({});
    send(
        &console,
        &posted,
        &path.program_id,
        &suffix,
        &body,
        "coord-item-retired",
    )
    .await
}

/// One change of the program through the API, after the same check as the page (404 for
/// another program's coordinator); back to the page with `done`, or the API's refusal.
async fn send<T>(
    console: &Console,
    posted: &Posted<T>,
    program_id: &str,
    suffix: &str,
    body: &Value,
    done: &str,
) -> Response {
    let ctx = &posted.ctx;
    let id: ProgramId = match program_of(console, ctx, program_id).await {
        Ok(program) => program.id,
        Err(response) => return response,
    };
    let back = format!("/console/programs/{id}/catalog");
    let path = format!("/programs/{id}{suffix}");
    match console
        .api_post(&ctx.session, &path, body, posted.key.as_deref())
        .await
    {
        Ok(_) => pages::done(&back, done),
        Err(refusal) => ctx.refused(&refusal, &back),
    }
}
