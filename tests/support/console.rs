//! A person using the web console over HTTP, without a browser: signed in by a session started
//! directly in the database (the sign-in pages have tests of their own), pages fetched with the
//! session cookie, forms posted with the page's CSRF token. Redirects are not followed, so a test
//! sees where a form sends the browser.

use cim::http::auth::claims::Identity;
use cim::http::auth::{Profile, Role};
use sqlx::PgPool;
use std::collections::BTreeSet;

#[derive(Debug, Clone)]
pub struct Person {
    pub base: String,
    pub cookie: String,
    pub lang: &'static str,
    http: reqwest::Client,
}

/// What a page or form answered.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub html: String,
}

impl Page {
    /// The session's CSRF token, as the page's forms carry it.
    pub fn csrf(&self) -> String {
        let at = self
            .html
            .find("name=\"_csrf\" value=\"")
            .expect("the page has a form");
        let rest = &self.html[at + "name=\"_csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

/// Signs `subject` in as `role` (a coordinator of `program` when given), in Swedish.
pub async fn sign_in(
    base: &str,
    pool: &PgPool,
    role: Role,
    subject: &str,
    program: Option<&str>,
) -> Person {
    let identity = Identity {
        subject: subject.to_owned(),
        role,
        program_codes: program.map(|p| BTreeSet::from([p.to_owned()])),
        profile: Profile {
            given_name: Some("Test".into()),
            family_name: Some("Person".into()),
            email: None,
        },
    };
    let set = cim::console::session::start(pool, &identity).await.unwrap();
    let cookie = set.to_str().unwrap().split(';').next().unwrap().to_owned();
    Person {
        base: base.to_owned(),
        cookie,
        lang: "sv",
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

impl Person {
    /// The same person, reading in `lang`.
    pub fn in_language(mut self, lang: &'static str) -> Self {
        self.lang = lang;
        self
    }

    fn cookies(&self) -> String {
        format!("{}; cim_lang={}", self.cookie, self.lang)
    }

    pub async fn get(&self, path: &str) -> Page {
        let answer = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookies())
            .send()
            .await
            .unwrap();
        read(answer).await
    }

    /// Posts `fields` with the CSRF token `csrf` (and an origin of this server, as a browser does).
    pub async fn post(&self, path: &str, csrf: &str, fields: &[(&str, &str)]) -> Page {
        let mut form: Vec<(&str, &str)> = vec![("_csrf", csrf)];
        form.extend_from_slice(fields);
        self.post_raw(path, &form).await
    }

    /// Posts exactly `fields` (a test of what happens without the token sends none).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let answer = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookies())
            .header("origin", &self.base)
            .form(fields)
            .send()
            .await
            .unwrap();
        read(answer).await
    }
}

async fn read(answer: reqwest::Response) -> Page {
    let status = answer.status().as_u16();
    let location = answer
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    Page {
        status,
        location,
        html: answer.text().await.unwrap(),
    }
}
