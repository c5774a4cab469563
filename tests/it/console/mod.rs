//! The web console over HTTP (without a browser; `tests/browser/` drives Chromium): sign-in,
//! sessions, CSRF, languages and each area's pages.

mod admin;
mod coordinator;
mod evaluation;
mod foundation;
mod registrar;
mod student;
