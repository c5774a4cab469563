//! `GET /console/me/portfolios/{id}`: one portfolio as its student sees it: what is left to do and
//! by when, every activity with its reflection's status and the coordinator's feedback, the final
//! reflection, and the forms for the next steps; once approved, the certificate's files.
//!
//! The portfolio is the API's `GET /portfolios/{id}` asked as the student, so only its owner sees
//! it (anyone else gets the API's 404); the catalog for the activity form is `GET /programs/{id}`.

use super::{n, phase_key, portfolio_path};
use crate::console::Console;
use crate::console::i18n::Lang;
use crate::console::pages::Ctx;
use crate::domain::PortfolioId;
use crate::domain::portfolio::{FinalFormat, ReflectionFormat};
use crate::http::auth::Role;
use crate::projections::read_models::view::{
    AttemptPersonal, NextStep, NextStepCode, PhaseName, PortfolioPersonal, PortfolioView,
    ReviewStatus,
};
use axum::extract::{Path, State};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
pub struct OnPortfolio {
    portfolio_id: PortfolioId,
}

/// What the page shows, from the API's answer.
struct Shown {
    view: PortfolioView,
    personal: PortfolioPersonal,
    days_left: Option<i64>,
    /// The program's catalog: (key, name) of the items not retired.
    catalog: Vec<(String, String)>,
}

pub async fn page(
    State(console): State<Console>,
    Path(path): Path<OnPortfolio>,
    ctx: Ctx,
) -> Response {
    if ctx.session.caller.role != Role::Student {
        return ctx.not_found();
    }
    let Ok(answer) = console
        .api_get(&ctx.session, &format!("/portfolios/{}", path.portfolio_id))
        .await
    else {
        return ctx.not_found();
    };
    let (Ok(view), Ok(personal)) = (
        serde_json::from_value::<PortfolioView>(answer["view"].clone()),
        serde_json::from_value::<PortfolioPersonal>(answer["personal"].clone()),
    ) else {
        return ctx.not_found();
    };
    let program = console
        .api_get(&ctx.session, &format!("/programs/{}", view.program_id))
        .await
        .unwrap_or(Value::Null);
    let catalog = program["catalog"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| item["retired"] != Value::Bool(true))
        .filter_map(|item| {
            Some((
                item["item"].as_str()?.to_owned(),
                item["name"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let title = program["name"].as_str().map_or_else(
        || ctx.t("student-portfolio-title"),
        |name| {
            ctx.lang
                .t_with("student-portfolio-in", &[("program", name.into())])
        },
    );
    let shown = Shown {
        view,
        personal,
        days_left: answer["days_left"].as_i64(),
        catalog,
    };
    ctx.page(&title, body(&ctx, &shown))
}

fn body(ctx: &Ctx, s: &Shown) -> Markup {
    let lang = ctx.lang;
    let v = &s.view;
    let collecting = v.phase == PhaseName::Collecting;
    html! {
        p.phase { (lang.t("student-phase")) ": " strong { (lang.t(&phase_key(v.phase.as_str()))) } }
        (next_steps(lang, s))
        @if let Some(certificate) = &v.certificate {
            @if certificate.revoked.is_none() {
                (certificate_links(ctx, v.portfolio_id))
            }
        }
        h2 { (lang.t("student-activities")) }
        p { (lang.t_with("student-requirements", &[
            ("required", n(v.requirements.required_activities)),
            ("approved", n(v.requirements.approved)),
        ])) }
        @if v.activities.is_empty() {
            p { (lang.t("student-no-activities")) }
        }
        @for a in &v.activities {
            @let personal = s.personal.activities.iter().find(|p| p.activity_id == a.activity_id);
            section.activity aria-labelledby={ "act-" (a.activity_id) } {
                h3 id={ "act-" (a.activity_id) } { (a.item_name) }
                p {
                    (lang.date(a.started_on)) " – " (lang.date(a.ended_on)) " · "
                    @if a.withdrawn { (lang.t("student-withdrawn")) } @else { (status(lang, a.status)) }
                }
                @if let Some(details) = personal.and_then(|p| p.details.as_ref()) {
                    p.description { (details.description) }
                }
                (attempts(lang, a.attempts.iter().map(|t| (t.attempt, format_key(t.format), t.word_count)),
                    personal.map_or(&[][..], |p| &p.attempts[..])))
                @if collecting && !a.withdrawn {
                    @let base = format!("{}/activities/{}/reflection", portfolio_path(v.portfolio_id), a.activity_id);
                    @match a.status {
                        ReviewStatus::NotSubmitted => (reflection_forms(ctx, &base, &a.activity_id.to_string(), v.portfolio_id)),
                        ReviewStatus::Returned => (reflection_forms(ctx, &format!("{base}/resubmit"), &a.activity_id.to_string(), v.portfolio_id)),
                        _ => {}
                    }
                }
            }
        }
        @if collecting {
            (activity_form(ctx, s))
        }
        h2 { (lang.t("student-final")) }
        p { (status(lang, v.final_reflection.status)) }
        (attempts(lang, v.final_reflection.attempts.iter().map(|t| (t.attempt, final_key(t.format), t.word_count)),
            &s.personal.final_attempts))
        @if v.next_steps.iter().any(|st| st.code == NextStepCode::SubmitFinalReflection) {
            (reflection_forms(ctx, &format!("{}/final-reflection", portfolio_path(v.portfolio_id)), "final", v.portfolio_id))
        }
        @if v.next_steps.iter().any(|st| st.code == NextStepCode::ReviseFinalReflection) {
            (reflection_forms(ctx, &format!("{}/final-reflection/resubmit", portfolio_path(v.portfolio_id)), "final", v.portfolio_id))
        }
        @if v.next_steps.iter().any(|st| st.code == NextStepCode::Apply) {
            h2 { (lang.t("student-apply-heading")) }
            form method="post" action={ (portfolio_path(v.portfolio_id)) "/application" }
                data-confirm=(lang.t("student-apply-confirm")) {
                (ctx.form_keys())
                button type="submit" { (lang.t("student-apply")) }
            }
        }
        @if collecting {
            (completion_form(ctx, s))
        }
    }
}

/// The next steps, in the student's language, with the deadline and the days left.
fn next_steps(lang: Lang, s: &Shown) -> Markup {
    let v = &s.view;
    html! {
        h2 { (lang.t("student-next-steps")) }
        @if let Some(days) = s.days_left {
            p.deadline {
                (lang.t_with("student-days-left", &[("days", days.into()), ("date", lang.date(v.deadline.date).into())]))
                @if v.deadline.extended { " " (lang.t("student-deadline-extended")) }
            }
        } @else if v.phase == PhaseName::Collecting {
            p.deadline { (lang.t_with("student-deadline", &[("date", lang.date(v.deadline.date).into())])) }
        }
        ol.steps {
            @for step in &v.next_steps {
                li { (step_text(lang, step)) }
            }
        }
    }
}

fn step_text(lang: Lang, step: &NextStep) -> String {
    let code = serde_json::to_value(step.code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let key = format!("student-step-{}", code.replace('_', "-"));
    let due = step.due.map(|d| lang.date(d)).unwrap_or_default();
    let text = lang.t_with(&key, &[("due", due.into())]);
    // A step this console has no words for yet shows the API's own sentence.
    if text == key {
        step.sentence.clone()
    } else {
        text
    }
}

fn status(lang: Lang, status: ReviewStatus) -> String {
    lang.t(&format!(
        "student-status-{}",
        status.as_str().replace('_', "-")
    ))
}

fn format_key(format: ReflectionFormat) -> &'static str {
    match format {
        ReflectionFormat::Written => "student-format-written",
        ReflectionFormat::Oral => "student-format-oral",
        ReflectionFormat::Instagram => "student-format-instagram",
    }
}

fn final_key(format: FinalFormat) -> &'static str {
    match format {
        FinalFormat::Written => "student-format-written",
        FinalFormat::Oral => "student-format-oral",
    }
}

/// Every attempt, with the coordinator's feedback on a returned one shown in full.
fn attempts(
    lang: Lang,
    shown: impl Iterator<Item = (u32, &'static str, Option<u32>)>,
    personal: &[AttemptPersonal],
) -> Markup {
    html! {
        @for (attempt, format, words) in shown {
            @let p = personal.iter().find(|p| p.attempt == attempt);
            div.attempt {
                p {
                    (lang.t_with("student-attempt", &[("n", n(attempt))])) " · " (lang.t(format))
                    @if let Some(words) = words { " · " (lang.t_with("student-words", &[("n", n(words))])) }
                }
                @if let Some(text) = p.and_then(|p| p.content.as_ref()).and_then(|c| c.text.as_deref()) {
                    details {
                        summary { (lang.t("student-your-text")) }
                        div.reflection { (text) }
                    }
                }
                @if let Some(feedback) = p.and_then(|p| p.feedback.as_ref()) {
                    div.feedback {
                        p { strong { (lang.t("student-feedback")) } }
                        p { (feedback) }
                    }
                }
            }
        }
    }
}

/// The two ways to reflect: a written text, or a recording uploaded with a progress bar (the
/// script sends the file to the console's upload route first; without the script the recording
/// form is refused by the API as `recording_required`, and the written form still works).
fn reflection_forms(ctx: &Ctx, action: &str, id: &str, portfolio: PortfolioId) -> Markup {
    let lang = ctx.lang;
    let upload = format!("{}/media", portfolio_path(portfolio));
    html! {
        form.stack method="post" action=(action) {
            (ctx.form_keys())
            input type="hidden" name="format" value="written";
            label for={ "text-" (id) } { (lang.t("student-reflection-text")) }
            textarea id={ "text-" (id) } name="text" rows="12" required {}
            button type="submit" { (lang.t("student-send-text")) }
        }
        form.stack method="post" action=(action) data-upload=(upload) data-media-field="media_sha256" {
            (ctx.form_keys())
            input type="hidden" name="format" value="oral";
            input type="hidden" name="media_sha256" value="";
            label for={ "file-" (id) } { (lang.t("student-recording")) }
            input id={ "file-" (id) } type="file" accept="audio/*,video/*" required;
            progress max="100" value="0" aria-label=(lang.t("student-upload-progress")) {}
            span data-upload-status aria-live="polite" {}
            button type="submit" { (lang.t("student-send-recording")) }
        }
    }
}

/// Logging an activity from the program's catalog.
fn activity_form(ctx: &Ctx, s: &Shown) -> Markup {
    let lang = ctx.lang;
    html! {
        h2 { (lang.t("student-log-heading")) }
        form.stack method="post" action={ (portfolio_path(s.view.portfolio_id)) "/activities" } {
            (ctx.form_keys())
            label for="log-item" { (lang.t("student-log-item")) }
            select id="log-item" name="item" required {
                @for (key, name) in &s.catalog { option value=(key) { (name) } }
            }
            label for="log-start" { (lang.t("student-log-start")) }
            input id="log-start" type="date" name="started_on" required;
            label for="log-end" { (lang.t("student-log-end")) }
            input id="log-end" type="date" name="ended_on" required;
            label for="log-description" { (lang.t("student-log-description")) }
            textarea id="log-description" name="description" rows="4" required {}
            button type="submit" { (lang.t("student-log-submit")) }
        }
    }
}

/// Proposing another expected completion date (a coordinator decides).
fn completion_form(ctx: &Ctx, s: &Shown) -> Markup {
    let lang = ctx.lang;
    let v = &s.view;
    html! {
        h2 { (lang.t("student-completion-heading")) }
        p { (lang.t_with("student-completion-now", &[("date", lang.date(v.expected_completion).into())])) }
        @if let Some(proposal) = &v.completion_proposal {
            p { (lang.t_with("student-completion-pending", &[("date", lang.date(proposal.expected_completion).into())])) }
        } @else {
            form.stack method="post" action={ (portfolio_path(v.portfolio_id)) "/expected-completion" } {
                (ctx.form_keys())
                label for="completion-date" { (lang.t("student-completion-date")) }
                input id="completion-date" type="date" name="expected_completion" required;
                label for="completion-reason" { (lang.t("student-completion-reason")) }
                textarea id="completion-reason" name="reason" rows="3" required {}
                button type="submit" { (lang.t("student-completion-submit")) }
            }
        }
    }
}

/// The approved certificate's files.
fn certificate_links(ctx: &Ctx, portfolio: PortfolioId) -> Markup {
    let lang = ctx.lang;
    let base = portfolio_path(portfolio);
    html! {
        h2 { (lang.t("student-certificate")) }
        p { (lang.t("student-certificate-approved")) }
        ul {
            li { a href={ (base) "/certificate.pdf" } { (lang.t("student-certificate-pdf")) } }
            li { a href={ (base) "/credential" } download="certificate.jwt" { (lang.t("student-certificate-credential")) } }
        }
    }
}
