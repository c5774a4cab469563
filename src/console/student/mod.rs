//! The student pages: a student's own portfolios (`/console/me`), opening one, and one portfolio
//! with what is left to do and the forms to do it (`portfolio`, `forms`); uploads of recordings and
//! the certificate's files (`files`).
//!
//! A student sees only their own portfolios: the list is the `portfolio` read model's
//! `portfolios_of_student` (what `GET /me/portfolios` answers), and one portfolio is the API's own
//! `GET /portfolios/{id}` asked as the student, so its access rule (only the owner, else 404) is
//! the API's. Every form goes through the API (`console.api_post`).

mod files;
mod forms;
mod portfolio;

use super::pages::{self, Ctx};
use super::{Console, ConsoleRoute, r};
use crate::domain::ProgramId;
use crate::http::auth::Role;
use crate::projections::read_models::portfolio::portfolios_of_student;
use crate::projections::read_models::view::PhaseName;
use axum::extract::State;
use axum::http::Method;
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};

/// The routes of this area.
pub fn routes() -> Vec<ConsoleRoute> {
    use Method as M;
    vec![
        r(M::GET, "/console/me", get(home)),
        r(M::POST, "/console/me/portfolios", post(forms::open)),
        r(
            M::GET,
            "/console/me/portfolios/{portfolio_id}",
            get(portfolio::page),
        ),
        r(
            M::POST,
            "/console/me/portfolios/{portfolio_id}/activities",
            post(forms::log_activity),
        ),
        r(
            M::POST,
            "/console/me/portfolios/{portfolio_id}/activities/{activity_id}/reflection",
            post(forms::reflection),
        ),
        r(
            M::POST,
            "/console/me/portfolios/{portfolio_id}/activities/{activity_id}/reflection/resubmit",
            post(forms::reflection_again),
        ),
        r(
            M::POST,
            "/console/me/portfolios/{portfolio_id}/final-reflection",
            post(forms::final_reflection),
        ),
        r(
            M::POST,
            "/console/me/portfolios/{portfolio_id}/final-reflection/resubmit",
            post(forms::final_reflection_again),
        ),
        r(
            M::POST,
            "/console/me/portfolios/{portfolio_id}/application",
            post(forms::apply),
        ),
        r(
            M::POST,
            "/console/me/portfolios/{portfolio_id}/expected-completion",
            post(forms::propose_completion),
        ),
        r(
            M::POST,
            "/console/me/portfolios/{portfolio_id}/media",
            post(files::upload),
        ),
        r(
            M::GET,
            "/console/me/portfolios/{portfolio_id}/certificate.pdf",
            get(files::certificate),
        ),
        r(
            M::GET,
            "/console/me/portfolios/{portfolio_id}/credential",
            get(files::credential),
        ),
    ]
}

/// The console path of a portfolio.
fn portfolio_path(id: impl std::fmt::Display) -> String {
    format!("/console/me/portfolios/{id}")
}

/// The programs a student may open a portfolio in, by name: read from the programs' registrations
/// in the log (there is no read model of programs; the list is short).
pub(super) async fn programs(console: &Console) -> Result<Vec<(ProgramId, String)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT stream_id AS "stream_id!", payload->>'name' AS name
           FROM events WHERE event_type = 'ProgramRegistered' AND version = 1
           ORDER BY payload->>'name'"#
    )
    .fetch_all(&console.app.pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let id = row.stream_id.strip_prefix("program-")?.parse().ok()?;
            Some((ProgramId::new(id), row.name.unwrap_or_default()))
        })
        .collect())
}

/// `GET /console/me`: the student's portfolios, and the form to open one when none is open.
async fn home(ctx: Ctx, State(console): State<Console>) -> Response {
    let Some(student) = ctx.session.caller.student_uid() else {
        return ctx.not_found();
    };
    if ctx.session.caller.role != Role::Student {
        return ctx.not_found();
    }
    let today = crate::domain::stockholm_date(chrono::Utc::now());
    let mine = match portfolios_of_student(&console.app.pool, student, None, 50, today).await {
        Ok(mine) => mine,
        Err(e) => return pages::failure(ctx.lang, &e),
    };
    let programs = match programs(&console).await {
        Ok(programs) => programs,
        Err(e) => return pages::failure(ctx.lang, &e),
    };
    let name_of = |id: ProgramId| {
        programs
            .iter()
            .find(|(p, _)| *p == id)
            .map_or_else(|| id.to_string(), |(_, name)| name.clone())
    };
    let lang = ctx.lang;
    // A revoked portfolio stays listed; beside only revoked ones a student may open another.
    let none_open = mine.iter().all(|p| p.phase == PhaseName::Revoked);
    let body = html! {
        @if mine.is_empty() {
            p { (lang.t("student-none-yet")) }
        } @else {
            h2 { (lang.t("student-my-portfolios")) }
            ul.cards {
                @for p in &mine {
                    li {
                        a href=(portfolio_path(p.portfolio_id)) {
                            (lang.t_with("student-portfolio-in", &[("program", name_of(p.program_id).into())]))
                        }
                        " · " (lang.t(&phase_key(p.phase.as_str())))
                        @if let Some(days) = p.days_left {
                            " · " (lang.t_with("student-days-left", &[("days", days.into()), ("date", lang.date(p.deadline).into())]))
                        }
                    }
                }
            }
        }
        @if none_open {
            (open_form(&ctx, &programs))
        }
    };
    ctx.page(&ctx.t("student-home-title"), body)
}

/// The key of a phase's name.
fn phase_key(phase: &str) -> String {
    format!("student-phase-{phase}")
}

/// The form that opens a portfolio (`POST /programs/{id}/portfolios`): the program, the expected
/// completion date, and the identity number, which the API takes from Ladok when it can.
fn open_form(ctx: &Ctx, programs: &[(ProgramId, String)]) -> Markup {
    let lang = ctx.lang;
    html! {
        h2 { (lang.t("student-open-heading")) }
        form.stack method="post" action="/console/me/portfolios" {
            (ctx.form_keys())
            label for="open-program" { (lang.t("student-open-program")) }
            select id="open-program" name="program" required {
                @for (id, name) in programs {
                    option value=(id) { (name) }
                }
            }
            label for="open-completion" { (lang.t("student-open-completion")) }
            input id="open-completion" type="date" name="expected_completion" required;
            // What the identity provider did not say, the student types (the API's DTO).
            @let profile = &ctx.session.caller.profile;
            @if profile.given_name.is_none() {
                label for="open-given" { (lang.t("student-open-given")) }
                input id="open-given" type="text" name="given_names" autocomplete="given-name" required;
            }
            @if profile.family_name.is_none() {
                label for="open-family" { (lang.t("student-open-family")) }
                input id="open-family" type="text" name="family_name" autocomplete="family-name" required;
            }
            @if profile.email.is_none() {
                label for="open-email" { (lang.t("student-open-email")) }
                input id="open-email" type="email" name="email" autocomplete="email" required;
            }
            label for="open-identity" { (lang.t("student-open-identity")) }
            input id="open-identity" type="text" name="identity_number" autocomplete="off"
                aria-describedby="open-identity-help";
            p.hint id="open-identity-help" { (lang.t("student-open-identity-help")) }
            button type="submit" { (lang.t("student-open-submit")) }
        }
    }
}

/// A field of a form, empty meaning absent.
fn given(field: &Option<String>) -> Option<&str> {
    field.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A number for the texts.
fn n(value: impl Into<i64>) -> super::i18n::Arg {
    value.into().into()
}
