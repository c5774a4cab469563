//! A portfolio as its coordinator reviews it: the student, the deadline and its extensions, every
//! attempt of every reflection as the student wrote or recorded it, with its measurements and the
//! feedback given, and the forms for the decisions waiting (through the API's JSON routes).

use super::{forward, portfolio_of, student_of};
use crate::console::Console;
use crate::console::i18n::{Arg, Lang};
use crate::console::pages::{self, Ctx, Posted};
use crate::domain::PortfolioId;
use crate::domain::portfolio::ReflectionPersonal;
use crate::domain::rules::AppliedBand;
use crate::http::view::PortfolioView;
use crate::projections::read_models::view::{AttemptPersonal, ReviewStatus, ReviewView};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

/// `GET /console/portfolios/{portfolio_id}`.
pub async fn page(
    State(console): State<Console>,
    ctx: Ctx,
    Path(portfolio_id): Path<String>,
) -> Response {
    let (state, version) = match portfolio_of(&console, &ctx, &portfolio_id).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Some(p) = state.opened() else {
        return ctx.not_found();
    };
    let program = match super::program_of(&console, &ctx, &p.program_id.to_string()).await {
        Ok(program) => program,
        Err(response) => return response,
    };
    let today = crate::domain::stockholm_date(chrono::Utc::now());
    let PortfolioView { view, personal, .. } =
        PortfolioView::new(p, &program.rules, version, today);
    let student = student_of(p);
    let lang = ctx.lang;
    let id = view.portfolio_id;
    let deadline = &view.deadline;
    let body = html! {
        dl.facts {
            dt { (lang.t("coord-col-student")) } dd { (student.name) }
            dt { (lang.t("coord-program")) } dd { a href={ "/console/programs/" (program.id) } { (program.name.as_str()) } }
            dt { (lang.t("coord-phase")) } dd { (lang.t(&format!("coord-phase-{}", view.phase.as_str()))) }
            dt { (lang.t("coord-expected-completion")) } dd { (lang.date(view.expected_completion)) }
            dt { (lang.t("coord-col-deadline")) }
            dd {
                (lang.date(deadline.date))
                @if deadline.extended { " (" (lang.t_with("coord-extended-from", &[("date", Arg::from(lang.date(deadline.regular)))])) ")" }
            }
        }
        p { a href={ "/console/portfolios/" (id) "/history" } { (lang.t("coord-history-link")) } }
        @if !view.expected_completion_confirmed && view.final_reflection.attempts.is_empty() {
            form method="post" action={ "/console/portfolios/" (id) "/decide" } {
                (ctx.form_keys())
                p { (lang.t("coord-completion-unconfirmed")) " "
                    button type="submit" name="what" value="completion-confirm" { (lang.t("coord-confirm-completion")) } }
            }
        }
        @if let Some(proposal) = &view.completion_proposal {
            h2 { (lang.t("coord-proposal-heading")) }
            p { (lang.t_with("coord-proposal-text", &[("date", Arg::from(lang.date(proposal.expected_completion)))])) }
            form method="post" action={ "/console/portfolios/" (id) "/decide" } {
                (ctx.form_keys())
                p { label for="proposal-reason" { (lang.t("coord-reason")) } br; textarea id="proposal-reason" name="reason" rows="2" cols="60" required {} }
                button type="submit" name="what" value="proposal-accept" { (lang.t("coord-proposal-accept")) }
                " "
                button type="submit" name="what" value="proposal-decline" { (lang.t("coord-proposal-decline")) }
            }
        }
        @if !deadline.extensions.is_empty() {
            h2 { (lang.t("coord-extensions-heading")) }
            ul {
                @for (i, e) in deadline.extensions.iter().enumerate() {
                    li {
                        (lang.date(e.until)) " · " (e.by.as_str())
                        @if let Some(Some(reason)) = personal.extension_reasons.get(i) { ": " (reason.as_str()) }
                    }
                }
            }
        }
        h2 { (lang.t("coord-activities-heading")) }
        @if view.activities.is_empty() { p { (lang.t("coord-none")) } }
        @for (a, own) in view.activities.iter().zip(&personal.activities) {
            section.activity {
                h3 { (a.item_name) " " span.badge { (status(lang, a.status)) } }
                p {
                    (lang.date(a.started_on)) " – " (lang.date(a.ended_on))
                    @if a.withdrawn { " · " (lang.t("coord-withdrawn")) }
                }
                @if let Some(details) = &own.details { p { (details.description.as_str()) } }
                @for t in &a.attempts {
                    @let content = own.attempts.iter().find(|x| x.attempt == t.attempt);
                    (attempt(lang, id, Attempt { n: t.attempt, format: format!("{:?}", t.format).to_lowercase(), words: t.word_count, seconds: t.duration_s, band: &t.band, language: None, review: t.review.as_ref(), content, is_final: false }))
                }
                @if a.status == ReviewStatus::AwaitingReview {
                    (decision(&ctx, id, "reflection", Some(&a.activity_id.to_string()), a.activity_id.to_string().as_str()))
                }
            }
        }
        h2 { (lang.t("coord-final-heading")) " " span.badge { (status(lang, view.final_reflection.status)) } }
        @for t in &view.final_reflection.attempts {
            @let content = personal.final_attempts.iter().find(|x| x.attempt == t.attempt);
            @let language = t.language.as_ref().map(|l| match t.language_confidence_pct { Some(pct) => format!("{l} ({pct} %)"), None => l.clone() });
            (attempt(lang, id, Attempt { n: t.attempt, format: format!("{:?}", t.format).to_lowercase(), words: t.word_count, seconds: t.duration_s, band: &t.band, language, review: t.review.as_ref(), content, is_final: true }))
        }
        @if view.final_reflection.status == ReviewStatus::AwaitingReview {
            (decision(&ctx, id, "final", None, "final"))
        }
        h2 { (lang.t("coord-application-heading")) }
        @if view.application.applications == 0 { p { (lang.t("coord-no-application")) } }
        @for r in &personal.rejection_reasons {
            p { (lang.t_with("coord-rejected-n", &[("n", Arg::from(i64::from(r.application)))]))
                @if let Some(reason) = &r.reason { ": " (reason.as_str()) } }
        }
        @if let Some(n) = view.application.pending {
            p { (lang.t_with("coord-application-waiting", &[("n", Arg::from(i64::from(n)))])) }
            (decision(&ctx, id, "application", None, "application"))
        }
        @if let Some(c) = &view.certificate {
            p { (lang.t_with("coord-certified-on", &[("date", Arg::from(lang.date(c.decided_on)))])) }
        }
        h2 { (lang.t("coord-extension-heading")) }
        form method="post" action={ "/console/portfolios/" (id) "/decide" } {
            (ctx.form_keys())
            input type="hidden" name="what" value="extension";
            p { label for="until" { (lang.t("coord-extension-until")) } " " input type="date" id="until" name="until" required; }
            p { label for="ext-reason" { (lang.t("coord-reason")) } br; textarea id="ext-reason" name="reason" rows="2" cols="60" required {} }
            button type="submit" { (lang.t("coord-grant-extension")) }
        }
    };
    ctx.page(&student.name, body)
}

fn status(lang: Lang, s: ReviewStatus) -> String {
    lang.t(&format!("coord-status-{}", s.as_str().replace('_', "-")))
}

fn band_text(lang: Lang, band: &AppliedBand) -> String {
    let n = |v: u32| Arg::from(i64::from(v));
    match band {
        AppliedBand::Words(w) => {
            lang.t_with("coord-band-words", &[("min", n(w.min)), ("max", n(w.max))])
        }
        AppliedBand::Duration(d) => lang.t_with(
            "coord-band-seconds",
            &[("min", n(d.min_s)), ("max", n(d.max_s))],
        ),
        AppliedBand::Instagram(i) => lang.t_with(
            "coord-band-posts",
            &[("min", n(i.min_posts)), ("max", n(i.words.max))],
        ),
        AppliedBand::MinimumDuration { min_s } => {
            lang.t_with("coord-band-min-seconds", &[("min", n(*min_s))])
        }
    }
}

/// One attempt as shown: its measurements, what the student handed in, the review and feedback.
struct Attempt<'a> {
    n: u32,
    format: String,
    words: Option<u32>,
    seconds: Option<u32>,
    band: &'a AppliedBand,
    language: Option<String>,
    review: Option<&'a ReviewView>,
    content: Option<&'a AttemptPersonal>,
    /// A final reflection's attempt, under the h2 (an activity's are under its h3).
    is_final: bool,
}

fn attempt(lang: Lang, id: PortfolioId, a: Attempt<'_>) -> Markup {
    let n = |v: u32| Arg::from(i64::from(v));
    html! {
        div.attempt {
            @let heading = html! { (lang.t_with("coord-attempt", &[("n", n(a.n))])) " · " (lang.t(&format!("coord-format-{}", a.format))) };
            @if a.is_final { h3 { (heading) } } @else { h4 { (heading) } }
            p {
                @if let Some(w) = a.words { (lang.t_with("coord-word-count", &[("count", n(w))])) " · " }
                @if let Some(s) = a.seconds { (lang.t_with("coord-duration", &[("count", n(s))])) " · " }
                (band_text(lang, a.band))
                @if let Some(l) = &a.language { " · " (lang.t("coord-language")) ": " (l) }
            }
            @if let Some(c) = a.content.and_then(|c| c.content.as_ref()) { (handed_in(lang, id, c)) }
            @match a.review {
                Some(ReviewView::Approved { by }) => p { (lang.t("coord-status-approved")) " · " (by.as_str()) },
                Some(ReviewView::Returned { by }) => p { (lang.t("coord-status-returned")) " · " (by.as_str()) },
                None => {},
            }
            @if let Some(f) = a.content.and_then(|c| c.feedback.as_ref()) {
                p { strong { (lang.t("coord-feedback")) ": " } (f.as_str()) }
            }
        }
    }
}

fn handed_in(lang: Lang, id: PortfolioId, c: &ReflectionPersonal) -> Markup {
    html! {
        @if let Some(text) = &c.text { div.reflection { (text) } }
        @if let Some(m) = &c.media {
            @let src = format!("/console/portfolios/{id}/media/{}", m.sha256());
            @if m.content_type().starts_with("video/") {
                video controls src=(src) { a href=(src) { (lang.t("coord-download-recording")) } }
            } @else if m.content_type().starts_with("audio/") {
                audio controls src=(src) { a href=(src) { (lang.t("coord-download-recording")) } }
            } @else {
                p { a href=(src) { (lang.t("coord-download-recording")) } }
            }
        }
        @if let Some(link) = &c.video_link { p { a href=(link.as_str()) { (lang.t("coord-open-video")) } } }
        @if !c.links.is_empty() {
            ul { @for l in &c.links { li { a href=(l.as_url()) { (l.to_string()) } } } }
        }
    }
}

/// The forms of one waiting decision: approve, or return with feedback (reject with a reason for
/// an application). `suffix` keeps the ids of the page unique.
fn decision(
    ctx: &Ctx,
    id: PortfolioId,
    what: &str,
    activity: Option<&str>,
    suffix: &str,
) -> Markup {
    let lang = ctx.lang;
    let action = format!("/console/portfolios/{id}/decide");
    let (no_what, no_field, no_label, no_button) = if what == "application" {
        (
            "application-reject",
            "reason",
            "coord-reason",
            "coord-reject",
        )
    } else {
        ("return", "feedback", "coord-feedback", "coord-return")
    };
    let field_id = format!("{no_field}-{suffix}");
    html! {
        div.decision {
            form method="post" action=(action) {
                (ctx.form_keys())
                input type="hidden" name="what" value={ (what) "-approve" };
                @if let Some(a) = activity { input type="hidden" name="activity" value=(a); }
                button type="submit" { (lang.t("coord-approve")) }
            }
            form method="post" action=(action) {
                (ctx.form_keys())
                input type="hidden" name="what" value=(if what == "application" { no_what.to_owned() } else { format!("{what}-{no_what}") });
                @if let Some(a) = activity { input type="hidden" name="activity" value=(a); }
                p { label for=(field_id) { (lang.t(no_label)) } br; textarea id=(field_id) name=(no_field) rows="3" cols="60" required {} }
                button type="submit" { (lang.t(no_button)) }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Decision {
    what: String,
    activity: Option<String>,
    feedback: Option<String>,
    reason: Option<String>,
    until: Option<String>,
}

/// `POST /console/portfolios/{portfolio_id}/decide`: one decision, through the API.
pub async fn decide(
    State(console): State<Console>,
    Path(portfolio_id): Path<String>,
    posted: Posted<Decision>,
) -> Response {
    let ctx = &posted.ctx;
    if let Err(response) = portfolio_of(&console, ctx, &portfolio_id).await {
        return response;
    }
    let f = &posted.form;
    let text = |v: &Option<String>| Value::from(v.clone().unwrap_or_default());
    // Both go into the API's path: only ids, so a crafted field cannot reach another route.
    let activity = f
        .activity
        .as_deref()
        .and_then(|a| uuid::Uuid::parse_str(a).ok())
        .map(|a| a.to_string())
        .unwrap_or_default();
    let Ok(portfolio_id) = uuid::Uuid::parse_str(&portfolio_id) else {
        return ctx.not_found();
    };
    let base = format!("/portfolios/{portfolio_id}");
    let (path, body, done) = match f.what.as_str() {
        "reflection-approve" => (
            format!("{base}/activities/{activity}/reflection/approve"),
            json!({}),
            "coord-approved",
        ),
        "reflection-return" => (
            format!("{base}/activities/{activity}/reflection/return"),
            json!({"feedback": text(&f.feedback)}),
            "coord-returned",
        ),
        "final-approve" => (
            format!("{base}/final-reflection/approve"),
            json!({}),
            "coord-approved",
        ),
        "final-return" => (
            format!("{base}/final-reflection/return"),
            json!({"feedback": text(&f.feedback)}),
            "coord-returned",
        ),
        "application-approve" => (
            format!("{base}/application/approve"),
            json!({}),
            "coord-application-approved",
        ),
        "application-reject" => (
            format!("{base}/application/reject"),
            json!({"reason": text(&f.reason)}),
            "coord-application-rejected",
        ),
        "completion-confirm" => (
            format!("{base}/expected-completion/confirm"),
            json!({}),
            "coord-completion-confirmed",
        ),
        "proposal-accept" => (
            format!("{base}/expected-completion/proposal/accept"),
            json!({"reason": text(&f.reason)}),
            "coord-proposal-accepted",
        ),
        "proposal-decline" => (
            format!("{base}/expected-completion/proposal/decline"),
            json!({"reason": text(&f.reason)}),
            "coord-proposal-declined",
        ),
        "extension" => (
            format!("{base}/extensions"),
            json!({"until": text(&f.until), "reason": text(&f.reason)}),
            "coord-extended",
        ),
        _ => return ctx.not_found(),
    };
    let back = format!("/console{base}");
    match console
        .api_post(&ctx.session, &path, &body, posted.key.as_deref())
        .await
    {
        Ok(_) => pages::done(&back, done),
        Err(refusal) => ctx.refused(&refusal, &back),
    }
}

/// `GET /console/portfolios/{portfolio_id}/media/{sha256}`: a recording, for `<audio>`/`<video>`.
/// The API's download route wants a bearer token, which a browser's media element cannot send;
/// this serves the API's own answer after the same checks, as the signed-in person.
pub async fn media(
    State(console): State<Console>,
    ctx: Ctx,
    headers: HeaderMap,
    Path((portfolio_id, sha256)): Path<(String, String)>,
) -> Response {
    if let Err(response) = portfolio_of(&console, &ctx, &portfolio_id).await {
        return response;
    }
    let sha: String = sha256.chars().filter(char::is_ascii_hexdigit).collect();
    forward(
        &console,
        &ctx,
        &format!("/portfolios/{portfolio_id}/media/{sha}"),
        &headers,
    )
    .await
}
