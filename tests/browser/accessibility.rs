//! Every page of every role, in Swedish and in English, against axe-core's WCAG 2.1 A and AA rules.
//!
//! The pages are found, not listed: from each role's start page the sweep follows the console's links
//! (one page per route shape, so forty portfolios are one portfolio page), so a page added later is
//! checked without touching this file.

use crate::demo::DemoServer;
use crate::driver::Browser;
use cim_demo::StudentPath;
use fantoccini::Locator;
use std::collections::{BTreeSet, VecDeque};

/// Links the sweep does not follow: files (CSV, PDF, batch files, media, credentials), the
/// language switch and sign-in, which are not pages of a role.
fn is_page(path: &str) -> bool {
    let skip = [
        ".csv",
        ".pdf",
        "/files/",
        "/media/",
        "/credential",
        "/language",
        "/signin",
    ];
    path.starts_with("/console") && !skip.iter().any(|s| path.contains(s))
}

/// The shape of a path: ids (UUIDs, hashes) become `{}`, the query is dropped.
fn shape(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    path.split('/')
        .map(|part| {
            if part.len() >= 32 && part.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                "{}"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Signs in on the development sign-in page as `subject` in `role`, by its form.
pub async fn sign_in_as(browser: &Browser, base: &str, role: &str, subject: &str) {
    let c = &browser.client;
    c.goto(&format!("{base}/console/signin")).await.unwrap();
    let form = c
        .form(Locator::Css("section.dev form.stack"))
        .await
        .unwrap();
    form.set_by_name("role", role).await.unwrap();
    form.set_by_name("subject", subject).await.unwrap();
    form.submit().await.unwrap();
    for _ in 0..50 {
        if !c.current_url().await.unwrap().path().contains("/signin") {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "{role} {subject} was not signed in: {}",
        c.source().await.unwrap()
    );
}

/// The console pages reachable from where the browser is, one per shape, at most `limit`.
async fn sweep(browser: &Browser, base: &str, limit: usize) -> Vec<String> {
    let c = &browser.client;
    let start = c.current_url().await.unwrap();
    let mut queue = VecDeque::from([start.path().to_owned()]);
    let mut seen = BTreeSet::new();
    let mut pages = Vec::new();
    while let Some(path) = queue.pop_front() {
        if pages.len() >= limit || !seen.insert(shape(&path)) {
            continue;
        }
        c.goto(&format!("{base}{path}")).await.unwrap();
        pages.push(path);
        for link in c
            .find_all(Locator::Css(
                "main a[href^='/console'], header nav a[href^='/console']",
            ))
            .await
            .unwrap()
        {
            if let Some(href) = link.attr("href").await.unwrap()
                && is_page(&href)
                && !seen.contains(&shape(&href))
            {
                queue.push_back(href);
            }
        }
    }
    pages
}

#[tokio::test]
async fn every_page_passes_axe_in_both_languages() {
    let server = DemoServer::start(24).await;
    let (coordinator, _) = server.coordinator();
    let people = [
        ("coordinator", coordinator),
        ("registrar", "registrar-demo".to_owned()),
        ("admin", "admin-demo".to_owned()),
        ("student", server.student(StudentPath::Certified)),
        ("student", server.student(StudentPath::InProgress)),
    ];
    let browser = Browser::start(1280, 900).await;
    let mut failures = Vec::new();
    let mut checked = 0;
    for (role, person) in &people {
        sign_in_as(&browser, &server.base, role, person).await;
        let pages = sweep(&browser, &server.base, 16).await;
        assert!(!pages.is_empty(), "{person} has no pages");
        eprintln!("{role} {person}: {} pages: {pages:?}", pages.len());
        for lang in ["sv", "en"] {
            for page in &pages {
                let back =
                    url::form_urlencoded::byte_serialize(page.as_bytes()).collect::<String>();
                let switch = format!("{}/console/language?to={lang}&back={back}", server.base);
                browser.client.goto(&switch).await.unwrap();
                let html_lang = browser
                    .client
                    .find(Locator::Css("html"))
                    .await
                    .unwrap()
                    .attr("lang")
                    .await
                    .unwrap();
                if html_lang.as_deref() != Some(lang) {
                    failures.push(format!("{person} {lang} {page}: not a page in {lang}"));
                    continue;
                }
                checked += 1;
                for violation in browser.axe_violations().await {
                    failures.push(format!("{person} {lang} {page}: {violation}"));
                }
            }
        }
        // The next person starts from a fresh browser.
        browser.client.delete_all_cookies().await.unwrap();
    }
    browser.close().await;
    server.stop().await;
    assert!(checked >= 20, "only {checked} pages were checked");
    assert!(
        failures.is_empty(),
        "axe-core found:\n{}",
        failures.join("\n")
    );
}
