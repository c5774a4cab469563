//! Signing in and out: the sign-in page, the identity provider's round trip (`oidc`), the
//! development sign-in, sign-out and the language switch.
//!
//! The development sign-in exists only when `CIM_JWT_DEV_SECRET` is set, the same switch as the
//! API's development tokens, and says so in a banner on the page: one picks a demo person (the
//! demo's coordinators, registrar and admin, and students with portfolios) or types a subject.

use super::Console;
use super::i18n::{LANG_COOKIE, Lang};
use super::layout::{self, Frame};
use super::pages;
use super::paths;
use super::session::{self, PRESESSION_COOKIE, Session};
use crate::http::auth::claims::Identity;
use crate::http::auth::{Authenticator, Profile, Role};
use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use std::collections::BTreeSet;

#[derive(Debug, Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// `GET /console/signin`: the ways to sign in.
pub async fn page(
    State(console): State<Console>,
    lang: Lang,
    parts: Parts,
    Query(q): Query<Next>,
) -> Response {
    let next = paths::local(q.next.as_deref());
    let (token, set_cookie) = session::presession_token(&parts);
    let people = if console.dev_signin {
        demo_people(&console).await.unwrap_or_default()
    } else {
        Vec::new()
    };
    let frame = Frame {
        lang,
        caller: None,
        csrf: None,
        here: "/console/signin",
        done: None,
    };
    let body = html! {
        @if let Some(oidc) = &console.oidc_label {
            p {
                a.button href={ "/console/signin/oidc?next=" (paths::encode(&next)) } {
                    (lang.t_with("signin-with", &[("provider", oidc.as_str().into())]))
                }
            }
        }
        @if console.oidc_label.is_none() && !console.dev_signin {
            p role="alert" { (lang.t("signin-not-configured")) }
        }
        @if console.dev_signin {
            section.dev aria-labelledby="dev-heading" {
                h2 id="dev-heading" { (lang.t("dev-signin-heading")) }
                p.warning { (lang.t("dev-signin-warning")) }
                @if !people.is_empty() {
                    ul.people {
                        @for person in &people {
                            li {
                                form method="post" action="/console/signin/dev" {
                                    input type="hidden" name="_csrf" value=(token);
                                    input type="hidden" name="next" value=(next);
                                    input type="hidden" name="role" value=(person.role);
                                    input type="hidden" name="subject" value=(person.subject);
                                    @if let Some(code) = &person.program { input type="hidden" name="program" value=(code); }
                                    button type="submit" { (lang.t(&format!("role-{}", person.role))) ": " (person.label) }
                                }
                            }
                        }
                    }
                }
                form.stack method="post" action="/console/signin/dev" {
                    input type="hidden" name="_csrf" value=(token);
                    input type="hidden" name="next" value=(next);
                    label for="dev-role" { (lang.t("dev-role")) }
                    select id="dev-role" name="role" {
                        @for role in ["student", "coordinator", "registrar", "admin"] {
                            option value=(role) { (lang.t(&format!("role-{role}"))) }
                        }
                    }
                    label for="dev-subject" { (lang.t("dev-subject")) }
                    input id="dev-subject" name="subject" required autocomplete="off";
                    label for="dev-program" { (lang.t("dev-program")) }
                    input id="dev-program" name="program" autocomplete="off";
                    button type="submit" { (lang.t("sign-in")) }
                }
            }
        }
    };
    let mut response =
        Html(layout::page(&frame, &lang.t("signin-title"), body).into_string()).into_response();
    if let Some(cookie) = set_cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// One person of the development sign-in's list.
#[derive(Debug)]
struct DemoPerson {
    role: &'static str,
    subject: String,
    program: Option<String>,
    label: String,
}

/// The demo's staff and up to a dozen students with portfolios, from what is recorded.
async fn demo_people(console: &Console) -> Result<Vec<DemoPerson>, sqlx::Error> {
    let pool = &console.app.pool;
    let mut people = Vec::new();
    // The staff ids the programs' streams have ever assigned, with the program's code (from its
    // registration, the stream's first event); `caller_of` still reads what they coordinate now.
    let coordinators = sqlx::query!(
        r#"SELECT DISTINCT a.payload->>'staff' AS "staff!", r.payload->>'code' AS "code!"
           FROM events a
           JOIN events r ON r.stream_id = a.stream_id AND r.version = 1
           WHERE a.event_type = 'CoordinatorAssigned'
           ORDER BY 2, 1
           LIMIT 12"#
    )
    .fetch_all(pool)
    .await?;
    for row in coordinators {
        people.push(DemoPerson {
            role: "coordinator",
            label: format!("{} ({})", row.staff, row.code),
            subject: row.staff,
            program: Some(row.code),
        });
    }
    for (role, subject) in [("registrar", "registrar-demo"), ("admin", "admin-demo")] {
        people.push(DemoPerson {
            role,
            subject: subject.to_owned(),
            program: None,
            label: subject.to_owned(),
        });
    }
    let students =
        sqlx::query_scalar!("SELECT DISTINCT student_uid FROM rm_portfolios ORDER BY 1 LIMIT 12")
            .fetch_all(pool)
            .await?;
    for uid in students {
        people.push(DemoPerson {
            role: "student",
            subject: uid.to_string(),
            program: None,
            label: uid.to_string(),
        });
    }
    Ok(people)
}

#[derive(Debug, Deserialize)]
pub struct DevForm {
    #[serde(rename = "_csrf")]
    csrf: String,
    next: Option<String>,
    role: String,
    subject: String,
    program: Option<String>,
}

/// `POST /console/signin/dev`: signs in as the chosen demo person (development only).
pub async fn dev(
    State(console): State<Console>,
    lang: Lang,
    parts: Parts,
    body: axum::body::Bytes,
) -> Response {
    if !console.dev_signin {
        return pages::not_found(lang);
    }
    let Ok(form) = serde_urlencoded::from_bytes::<DevForm>(&body) else {
        return pages::bare(
            lang,
            StatusCode::BAD_REQUEST,
            "bad-form-title",
            "bad-form-text",
        );
    };
    // Login CSRF: the form's token must be the browser's own pre-session cookie.
    let cookie = super::i18n::cookie(&parts, PRESESSION_COOKIE);
    if !pages::same_origin(&parts) || !cookie.is_some_and(|c| session::same_token(&c, &form.csrf)) {
        return pages::forbidden(lang);
    }
    let role = match form.role.as_str() {
        "student" => Role::Student,
        "coordinator" => Role::Coordinator,
        "registrar" => Role::Registrar,
        "admin" => Role::Admin,
        _ => {
            return pages::bare(
                lang,
                StatusCode::BAD_REQUEST,
                "bad-form-title",
                "bad-form-text",
            );
        }
    };
    let program_codes = form
        .program
        .filter(|p| !p.trim().is_empty())
        .map(|p| BTreeSet::from([p.trim().to_owned()]));
    let identity = Identity {
        subject: form.subject.trim().to_owned(),
        role,
        program_codes,
        profile: Profile::default(),
    };
    sign_in(
        &console,
        lang,
        identity,
        &paths::local(form.next.as_deref()),
    )
    .await
}

/// Starts the session of `identity` and goes to `next`; refuses an identity the API would refuse.
pub async fn sign_in(
    console: &Console,
    lang: Lang,
    mut identity: Identity,
    next: &str,
) -> Response {
    let pool = &console.app.pool;
    // A student's subject in the one spelling the log and erasure use (a provider may send a UID
    // in capitals or without hyphens), so an erasure finds their sessions.
    if identity.role == Role::Student
        && let Ok(uid) = uuid::Uuid::parse_str(identity.subject.trim())
    {
        identity.subject = uid.to_string();
    }
    if let Err(refusal) = Authenticator::caller_of(pool, identity.clone()).await {
        tracing::info!(code = %refusal.code, "console sign-in refused");
        return pages::bare(
            lang,
            StatusCode::FORBIDDEN,
            "signin-refused-title",
            "signin-refused-text",
        );
    }
    if identity.role != Role::Student
        && let Some(email) = &identity.profile.email
    {
        console
            .app
            .staff_addresses
            .remember(pool, &identity.subject, email)
            .await;
    }
    match session::start(pool, &identity).await {
        Ok(cookie) => {
            let mut response = Redirect::to(next).into_response();
            response.headers_mut().append(header::SET_COOKIE, cookie);
            response
        }
        Err(e) => pages::failure(lang, &e),
    }
}

/// `GET /console/signin/oidc`: to the identity provider, bound to this browser's pre-session
/// cookie (set here when it has none).
pub async fn oidc_begin(
    State(console): State<Console>,
    lang: Lang,
    parts: Parts,
    Query(q): Query<Next>,
) -> Response {
    let Some(provider) = &console.oidc else {
        return pages::not_found(lang);
    };
    let (browser, set_cookie) = session::presession_token(&parts);
    let next = paths::local(q.next.as_deref());
    match provider.begin(&console.app.pool, &next, &browser).await {
        Ok(url) => {
            let mut response = Redirect::to(&url).into_response();
            if let Some(cookie) = set_cookie {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(e) => {
            tracing::warn!(error = %e, "console sign-in could not start");
            pages::bare(
                lang,
                StatusCode::BAD_GATEWAY,
                "signin-failed-title",
                "signin-failed-text",
            )
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /console/callback`: back from the identity provider, in the browser that started it.
pub async fn oidc_callback(
    State(console): State<Console>,
    lang: Lang,
    parts: Parts,
    Query(q): Query<Callback>,
) -> Response {
    let Some(provider) = &console.oidc else {
        return pages::not_found(lang);
    };
    let browser = super::i18n::cookie(&parts, PRESESSION_COOKIE);
    let (Some(code), Some(state), None, Some(browser)) = (q.code, q.state, q.error, browser) else {
        return pages::bare(
            lang,
            StatusCode::FORBIDDEN,
            "signin-failed-title",
            "signin-failed-text",
        );
    };
    match provider
        .finish(&console.app.pool, &state, &code, &browser)
        .await
    {
        Ok((identity, next)) => sign_in(&console, lang, identity, &paths::local(Some(&next))).await,
        Err(e) => {
            tracing::warn!(error = %e, "console sign-in failed");
            pages::bare(
                lang,
                StatusCode::FORBIDDEN,
                "signin-failed-title",
                "signin-failed-text",
            )
        }
    }
}

/// `POST /console/signout`.
pub async fn sign_out(
    State(console): State<Console>,
    posted: pages::Posted<serde_json::Map<String, serde_json::Value>>,
) -> Response {
    let session: Session = posted.ctx.session;
    match session.end(&console.app.pool).await {
        Ok(cookie) => {
            let mut response = Redirect::to("/console/signin").into_response();
            response.headers_mut().append(header::SET_COOKIE, cookie);
            response
        }
        Err(e) => pages::failure(posted.ctx.lang, &e),
    }
}

#[derive(Debug, Deserialize)]
pub struct Switch {
    to: String,
    back: Option<String>,
}

/// `GET /console/language?to=en&back=…`: remembers the choice (a year) and goes back.
pub async fn language(Query(q): Query<Switch>) -> Response {
    let lang = Lang::parse(&q.to).unwrap_or(Lang::Sv);
    let mut response = Redirect::to(&paths::local(q.back.as_deref())).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        session::cookie(LANG_COOKIE, lang.tag(), 365 * 86_400),
    );
    response
}

/// `GET /console`: each role's start page, or the sign-in.
pub async fn home(State(console): State<Console>, headers: HeaderMap, parts: Parts) -> Response {
    let _ = headers;
    let mut parts = parts;
    match <Session as axum::extract::FromRequestParts<Console>>::from_request_parts(
        &mut parts, &console,
    )
    .await
    {
        Ok(session) => {
            let to = match session.caller.role {
                Role::Student => "/console/me",
                Role::Coordinator => "/console/programs",
                Role::Registrar => "/console/certificates",
                Role::Admin => "/console/admin/programs",
            };
            Redirect::to(to).into_response()
        }
        Err(_) => Redirect::to("/console/signin").into_response(),
    }
}
