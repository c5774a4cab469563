//! Erasing a student's personal data (GDPR), in two steps: a form asking for the student's Ladok
//! UID and a reason, then a confirmation page that says what will be erased and that it cannot be
//! undone, where the UID is typed again and a box ticked. Only the second form calls the API
//! (`POST /students/{uid}/erasure`), which does the erasure and its checks (the reason must not
//! name the student: it is kept for good).
//!
//! The UID is never logged: it identifies a person.

use super::not_admin;
use crate::console::Console;
use crate::console::pages::{self, Ctx, Posted};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

const HERE: &str = "/console/admin/erasure";

/// The first form; `problem` is the text key of what was wrong with the last attempt.
fn request_form(ctx: &Ctx, uid: &str, reason: &str, problem: Option<&str>) -> Markup {
    let lang = ctx.lang;
    html! {
        p { (lang.t("admin-erasure-intro")) }
        @if let Some(problem) = problem {
            p.problem role="alert" { (lang.t(problem)) }
        }
        form.stack method="post" action=(HERE) {
            (ctx.form_keys())
            label for="admin-erasure-uid" { (lang.t("admin-erasure-uid")) }
            input id="admin-erasure-uid" name="uid" value=(uid) required autocomplete="off" spellcheck="false";
            label for="admin-erasure-reason" { (lang.t("admin-erasure-reason")) }
            span.hint id="admin-erasure-reason-hint" { (lang.t("admin-erasure-reason-hint")) }
            input id="admin-erasure-reason" name="reason" value=(reason) required
                aria-describedby="admin-erasure-reason-hint" autocomplete="off";
            div { button type="submit" { (lang.t("admin-erasure-continue")) } }
        }
    }
}

pub async fn page(ctx: Ctx) -> Response {
    if let Some(no) = not_admin(&ctx) {
        return no;
    }
    let body = request_form(&ctx, "", "", None);
    ctx.page(&ctx.t("admin-erasure-title"), body)
}

#[derive(Debug, Deserialize)]
pub struct Request {
    uid: String,
    reason: String,
}

/// The first form answered: the confirmation page (nothing is erased yet).
pub async fn check(State(console): State<Console>, posted: Posted<Request>) -> Response {
    let ctx = posted.ctx;
    if let Some(no) = not_admin(&ctx) {
        return no;
    }
    let Request { uid, reason } = posted.form;
    let (uid, reason) = (uid.trim(), reason.trim());
    let problem = if Uuid::parse_str(uid).is_err() {
        Some("admin-erasure-uid-invalid")
    } else if reason.is_empty() {
        Some("admin-erasure-reason-missing")
    } else {
        None
    };
    if let Some(problem) = problem {
        let body = request_form(&ctx, uid, reason, Some(problem));
        let page = ctx.page(&ctx.t("admin-erasure-title"), body);
        return (StatusCode::UNPROCESSABLE_ENTITY, page).into_response();
    }
    // How much there is to erase, as the read model counts it (a number, nothing personal),
    // once it has caught up as the API's reads do (it answers regardless after its wait).
    let _ = crate::http::reads::caught_up(&console.app, "portfolio").await;
    let portfolios = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM rm_portfolios WHERE student_uid = $1"#,
        Uuid::parse_str(uid).ok(),
    )
    .fetch_one(&console.app.pool)
    .await;
    // Only a figure for the person: without it (the read model not built yet) the page still asks.
    confirmation(&ctx, uid, reason, portfolios.ok(), None)
}

/// The confirmation step: what will be erased, that it is for good, the UID typed again.
fn confirmation(
    ctx: &Ctx,
    uid: &str,
    reason: &str,
    portfolios: Option<i64>,
    problem: Option<&str>,
) -> Response {
    let lang = ctx.lang;
    let body = html! {
        p.warning role="alert" { (lang.t("admin-erasure-irreversible")) }
        h2 { (lang.t("admin-erasure-what-heading")) }
        ul {
            @for key in ["admin-erasure-what-identity", "admin-erasure-what-texts", "admin-erasure-what-media", "admin-erasure-what-sessions"] {
                li { (lang.t(key)) }
            }
        }
        p { (lang.t("admin-erasure-kept")) }
        @match portfolios {
            Some(0) => p.warning { (lang.t("admin-erasure-no-portfolios")) },
            Some(n) => p { (lang.t_with("admin-erasure-portfolios", &[("n", n.into())])) },
            None => {},
        }
        dl.facts {
            dt { (lang.t("admin-erasure-uid")) } dd { code { (uid) } }
            dt { (lang.t("admin-erasure-reason")) } dd { (reason) }
        }
        @if let Some(problem) = problem {
            p.problem role="alert" { (lang.t(problem)) }
        }
        form.stack method="post" action={ (HERE) "/confirm" } data-confirm=(lang.t("admin-erasure-last-question")) {
            (ctx.form_keys())
            input type="hidden" name="uid" value=(uid);
            input type="hidden" name="reason" value=(reason);
            label for="admin-erasure-uid-again" { (lang.t("admin-erasure-uid-again")) }
            input id="admin-erasure-uid-again" name="uid_again" required autocomplete="off" spellcheck="false";
            div {
                input type="checkbox" id="admin-erasure-understood" name="understood" value="yes" required;
                " "
                label for="admin-erasure-understood" { (lang.t("admin-erasure-understood")) }
            }
            div {
                button.danger type="submit" { (lang.t("admin-erasure-erase")) }
                " "
                a href=(HERE) { (lang.t("admin-erasure-cancel")) }
            }
        }
    };
    let page = ctx.page(&lang.t("admin-erasure-confirm-title"), body);
    match problem {
        Some(_) => (StatusCode::UNPROCESSABLE_ENTITY, page).into_response(),
        None => page,
    }
}

#[derive(Debug, Deserialize)]
pub struct Confirm {
    uid: String,
    reason: String,
    #[serde(default)]
    uid_again: String,
    understood: Option<String>,
}

/// The confirmation answered: the erasure, through the API.
pub async fn confirm(State(console): State<Console>, posted: Posted<Confirm>) -> Response {
    let ctx = posted.ctx;
    if let Some(no) = not_admin(&ctx) {
        return no;
    }
    let form = posted.form;
    let uid = form.uid.trim();
    let Ok(student) = Uuid::parse_str(uid) else {
        return ctx.not_found();
    };
    if form.uid_again.trim() != uid || form.understood.as_deref() != Some("yes") {
        return confirmation(
            &ctx,
            uid,
            &form.reason,
            None,
            Some("admin-erasure-not-confirmed"),
        );
    }
    let path = format!("/students/{student}/erasure");
    let body = json!({ "reason": form.reason.trim() });
    match console
        .api_post(&ctx.session, &path, &body, posted.key.as_deref())
        .await
    {
        Ok(_) => pages::done(HERE, "admin-erased"),
        Err(refusal) => ctx.refused(&refusal, HERE),
    }
}
