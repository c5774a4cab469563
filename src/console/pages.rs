//! What every page handler shares: the request's context ([`Ctx`]: the session, the language,
//! where the page is), the posted form checked against CSRF ([`Posted`]), and the pages for what
//! went wrong.

use super::Console;
use super::api::ApiRefusal;
use super::i18n::Lang;
use super::layout::{self, Frame};
use super::session::Session;
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::de::DeserializeOwned;

/// A signed-in page request: who, in which language, and where.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub session: Session,
    pub lang: Lang,
    /// Path and query of the page.
    pub here: String,
    /// The "done" message key of `?done=`, when it is one of ours (`done-…`).
    pub done: Option<String>,
}

impl Ctx {
    pub fn frame(&self) -> Frame<'_> {
        Frame {
            lang: self.lang,
            caller: Some(&self.session.caller),
            csrf: Some(&self.session.csrf),
            here: &self.here,
            done: self.done.clone(),
        }
    }

    /// The page with this title and body, in the frame.
    pub fn page(&self, title: &str, body: Markup) -> Response {
        Html(layout::page(&self.frame(), title, body).into_string()).into_response()
    }

    /// 404 in the frame: nothing here, or nothing this person may see (the API's rule: the two look
    /// the same).
    pub fn not_found(&self) -> Response {
        self.framed(StatusCode::NOT_FOUND, "not-found-title", "not-found-text")
    }

    /// 403 in the frame: a form without this session's token, or from another site.
    pub fn forbidden(&self) -> Response {
        self.framed(StatusCode::FORBIDDEN, "csrf-title", "csrf-text")
    }

    fn framed(&self, status: StatusCode, title: &str, text: &str) -> Response {
        let body = html! {
            p { (self.t(text)) }
            p { a href="/console" { (self.t("go-start")) } }
        };
        (status, self.page(&self.t(title), body)).into_response()
    }

    /// The text of `key` in the request's language.
    pub fn t(&self, key: &str) -> String {
        self.lang.t(key)
    }

    /// The hidden fields every form of the console carries: the session's CSRF token, and an
    /// idempotency key minted for this rendering of the form (so sending it twice is one command).
    pub fn form_keys(&self) -> Markup {
        html! {
            input type="hidden" name="_csrf" value=(self.session.csrf);
            input type="hidden" name="_key" value=(uuid::Uuid::new_v4());
        }
    }

    /// The page for what the API refused, with the console's sentence for its code when it has
    /// one, and the way back.
    pub fn refused(&self, refusal: &ApiRefusal, back: &str) -> Response {
        let status = refusal.status;
        let body = html! {
            p.problem role="alert" { (refusal_text(self.lang, refusal)) }
            p { a href=(back) { (self.t("go-back")) } }
        };
        (status, self.page(&self.t("refused-title"), body)).into_response()
    }
}

/// The console's sentence for a refusal: `problem-<code>` when the files have it, else the API's
/// own sentence (English), so no refusal is shown without words.
pub fn refusal_text(lang: Lang, refusal: &ApiRefusal) -> String {
    let key = format!("problem-{}", refusal.code.replace('_', "-"));
    let text = lang.t(&key);
    if text == key {
        refusal.detail.clone()
    } else {
        text
    }
}

impl FromRequestParts<Console> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        let session = Session::from_request_parts(parts, console).await?;
        let lang = Lang::of(parts);
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.clone(), |u| u.0.clone());
        let done = uri.query().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "done")
                .map(|(_, v)| format!("done-{v}"))
                .filter(|key| lang.t(key) != *key)
        });
        Ok(Ctx {
            session,
            lang,
            here: uri.to_string(),
            done,
        })
    }
}

/// A form posted by a signed-in person, its CSRF token checked: the fields as `T`, and the
/// idempotency key the form was rendered with.
#[derive(Debug)]
pub struct Posted<T> {
    pub ctx: Ctx,
    pub form: T,
    pub key: Option<String>,
}

/// Up to this many bytes of a form (the longest field is a 1000-word reflection).
const FORM_LIMIT: usize = 256 * 1024;

impl<T: DeserializeOwned> FromRequest<Console> for Posted<T> {
    type Rejection = Response;

    async fn from_request(request: Request, console: &Console) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let ctx = Ctx::from_request_parts(&mut parts, console).await?;
        if !same_origin(&parts) {
            return Err(ctx.forbidden());
        }
        let bytes = axum::body::to_bytes(body, FORM_LIMIT)
            .await
            .map_err(|_| bad_form(ctx.lang))?;
        let mut pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(&bytes).map_err(|_| bad_form(ctx.lang))?;
        let take = |pairs: &mut Vec<(String, String)>, name: &str| {
            let at = pairs.iter().position(|(k, _)| k == name)?;
            Some(pairs.remove(at).1)
        };
        let csrf = take(&mut pairs, "_csrf");
        if !ctx.session.check_csrf(csrf.as_deref()) {
            return Err(ctx.forbidden());
        }
        let key = take(&mut pairs, "_key").filter(|k| uuid::Uuid::parse_str(k).is_ok());
        let encoded = serde_urlencoded::to_string(&pairs).map_err(|_| bad_form(ctx.lang))?;
        let form = serde_urlencoded::from_str(&encoded).map_err(|_| bad_form(ctx.lang))?;
        Ok(Posted { ctx, form, key })
    }
}

/// Whether a form comes from our own pages: browsers send `Origin` (or at least
/// `Sec-Fetch-Site`) with a POST; one naming another site is refused even before the token is
/// compared. Clients that send neither rely on the token alone.
pub fn same_origin(parts: &Parts) -> bool {
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    if let Some(origin) = parts.headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let origin_host = origin.split_once("://").map(|(_, rest)| rest);
        return origin_host.is_some() && origin_host == host;
    }
    match parts
        .headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
    {
        Some(site) => site == "same-origin" || site == "none",
        None => true,
    }
}

/// 403: a form without this session's token, or from another site.
pub fn forbidden(lang: Lang) -> Response {
    bare(lang, StatusCode::FORBIDDEN, "csrf-title", "csrf-text")
}

fn bad_form(lang: Lang) -> Response {
    bare(
        lang,
        StatusCode::BAD_REQUEST,
        "bad-form-title",
        "bad-form-text",
    )
}

/// 500: the database failed; the details go to the log, not the page.
pub fn failure(lang: Lang, error: &(dyn std::error::Error + 'static)) -> Response {
    tracing::error!(error = %error, "console page failed");
    bare(
        lang,
        StatusCode::INTERNAL_SERVER_ERROR,
        "failure-title",
        "failure-text",
    )
}

/// 404 for what the person may not see or what does not exist (the API's rule: the two look the
/// same).
pub fn not_found(lang: Lang) -> Response {
    bare(
        lang,
        StatusCode::NOT_FOUND,
        "not-found-title",
        "not-found-text",
    )
}

/// A page without a session's frame.
pub fn bare(lang: Lang, status: StatusCode, title: &str, text: &str) -> Response {
    let frame = Frame {
        lang,
        caller: None,
        csrf: None,
        here: "/console",
        done: None,
    };
    let body = html! {
        p { (lang.t(text)) }
        p { a href="/console" { (lang.t("go-start")) } }
    };
    (
        status,
        Html(layout::page(&frame, &lang.t(title), body).into_string()),
    )
        .into_response()
}

/// After a form: back to `to` with the "done" message `done` (Post/Redirect/Get, so a reload does
/// not send the form again).
pub fn done(to: &str, done: &str) -> Response {
    let sep = if to.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{to}{sep}done={done}")).into_response()
}
