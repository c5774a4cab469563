//! The web console in a real headless browser (Chromium through chromedriver, `driver`): signing in
//! at an identity provider the tests start, the review loop between a coordinator and a student,
//! the registrar's batch, another program's coordinator seeing nothing, a form without its CSRF
//! token refused, and every page in both languages passing axe-core's WCAG 2.1 AA rules.
//!
//! A binary of its own: each test drives one browser, and browsers are heavy beside the `it`
//! binary's hundreds of tests. The screenshots in `docs/screenshots/` come from the ignored test
//! `screenshots` (`docs/console.md` says how to run it).

#[path = "../support/mod.rs"]
mod support;

mod accessibility;
mod demo;
mod driver;
mod journey;
mod screenshots;
mod sign_in;
