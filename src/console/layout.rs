//! The frame of every console page: language, landmarks, navigation by role, the language switch
//! and sign-out, and the message of what was just done.
//!
//! Accessibility (WCAG 2.1 AA) starts here: `<html lang>`, a skip link to `<main>`, one `<h1>` per
//! page (the title), navigation as a labelled list of links with `aria-current` on the current
//! place, and the status message in a `role="status"` region so a screen reader announces it.

use super::i18n::Lang;
use super::paths;
use crate::http::auth::{Caller, Role};
use maud::{DOCTYPE, Markup, html};

/// What the frame needs to know of the request.
#[derive(Debug, Clone)]
pub struct Frame<'a> {
    pub lang: Lang,
    /// The signed-in person, when there is one.
    pub caller: Option<&'a Caller>,
    /// The session's CSRF token (for the sign-out form).
    pub csrf: Option<&'a str>,
    /// The path and query of this page, for the language switch to come back to.
    pub here: &'a str,
    /// The key of a "done" message to show (`?done=` after a form), when known.
    pub done: Option<String>,
}

/// The places a role has in the navigation: (path, text key).
fn places(role: Role) -> &'static [(&'static str, &'static str)] {
    match role {
        Role::Student => &[("/console/me", "nav-my-portfolio")],
        Role::Coordinator => &[
            ("/console/programs", "nav-programs"),
            ("/console/evaluation", "nav-evaluation"),
        ],
        // The pilot's figures are for coordinators and admins, as the API's `/statistics` is.
        Role::Registrar => &[
            ("/console/certificates", "nav-certificates"),
            ("/console/batches", "nav-batches"),
        ],
        Role::Admin => &[
            ("/console/admin/programs", "nav-admin-programs"),
            ("/console/admin/health", "nav-admin-health"),
            ("/console/admin/erasure", "nav-admin-erasure"),
            ("/console/evaluation", "nav-evaluation"),
        ],
    }
}

/// A whole page: `title` is both the document's title and its one `<h1>`.
pub fn page(frame: &Frame<'_>, title: &str, body: Markup) -> Markup {
    let lang = frame.lang;
    let service = lang.t("service-name");
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " – " (service) }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { (lang.t("skip-to-content")) }
                header.top {
                    a.brand href="/console" { (service) }
                    @if let Some(caller) = frame.caller {
                        nav aria-label=(lang.t("nav-label")) {
                            ul {
                                @for (path, key) in places(caller.role) {
                                    li {
                                        @if frame.here.starts_with(path) {
                                            a href=(path) aria-current="page" { (lang.t(key)) }
                                        } @else {
                                            a href=(path) { (lang.t(key)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    div.tools {
                        nav aria-label=(lang.t("language-label")) {
                            ul.languages {
                                @for other in Lang::ALL {
                                    li {
                                        @if other == lang {
                                            span aria-current="true" lang=(other.tag()) { (other.own_name()) }
                                        } @else {
                                            a lang=(other.tag()) hreflang=(other.tag())
                                              href={ "/console/language?to=" (other.tag()) "&back=" (paths::encode(frame.here)) } {
                                                (other.own_name())
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        @if let (Some(caller), Some(csrf)) = (frame.caller, frame.csrf) {
                            form.signout method="post" action="/console/signout" {
                                input type="hidden" name="_csrf" value=(csrf);
                                span.who { (display_name(caller)) " · " (lang.t(role_key(caller.role))) }
                                button type="submit" { (lang.t("sign-out")) }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    div role="status" aria-live="polite" {
                        @if let Some(done) = &frame.done {
                            p.done { (lang.t(done)) }
                        }
                    }
                    (body)
                }
                footer {
                    p { (lang.t("footer-text")) }
                }
            }
        }
    }
}

/// How the signed-in person is named in the header: their names from the identity provider, or
/// their user id when it gave none.
pub fn display_name(caller: &Caller) -> String {
    let p = &caller.profile;
    match (&p.given_name, &p.family_name) {
        (Some(g), Some(f)) => format!("{g} {f}"),
        (Some(n), None) | (None, Some(n)) => n.clone(),
        (None, None) => caller.subject.clone(),
    }
}

pub fn role_key(role: Role) -> &'static str {
    match role {
        Role::Student => "role-student",
        Role::Coordinator => "role-coordinator",
        Role::Registrar => "role-registrar",
        Role::Admin => "role-admin",
    }
}
