//! The review loop as people do it, in the browser, everyone signed in at the identity provider:
//! a coordinator finds a waiting reflection and returns it with feedback; the student reads the
//! feedback and resubmits; the coordinator approves the application; the registrar runs the export
//! and downloads the batch. Another program's coordinator sees nothing of it, and a form stripped of
//! its CSRF token is refused. axe-core checks each page on the way.

use crate::driver::Browser;
use crate::sign_in::console_with_idp;
use crate::support::auth::token;
use crate::support::flow::{activity, enrolment};
use crate::support::http::post;
use crate::support::idp::Idp;
use crate::support::server::TestServer;
use crate::support::{texts, unique_identity_number};
use cim::http::auth::Role;
use fantoccini::{Client, Locator};
use serde_json::{Value, json};

/// Posts through the API as `token`; the answer must be a success.
async fn ok(base: &str, path: &str, token: &str, body: Value) -> Value {
    let answer = post(&reqwest::Client::new(), base, path, token, &body).await;
    assert!(answer.status.is_success(), "POST {path}: {}", answer.body);
    answer.body
}

/// Signs whoever the provider has at the keyboard in, through the sign-in page.
async fn sign_in(c: &Client, base: &str) {
    c.goto(&format!("{base}/console/signin")).await.unwrap();
    c.find(Locator::Css("a.button[href^='/console/signin/oidc']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn sign_out(c: &Client) {
    match c.find(Locator::Css("form.signout button")).await {
        Ok(button) => button.click().await.unwrap(),
        Err(_) => panic!(
            "no sign-out at {}: {}",
            c.current_url().await.unwrap(),
            settled_text(c, "body").await
        ),
    }
}

async fn accessible(browser: &Browser, page: &str) {
    let violations = browser.axe_violations().await;
    assert!(violations.is_empty(), "{page}: {violations:#?}");
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Fills a text field through the DOM (typing a thousand words key by key takes a minute).
async fn fill(c: &Client, css: &str, text: &str) {
    let field = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    let field = serde_json::to_value(field).unwrap();
    c.execute(
        "arguments[0].value = arguments[1];",
        vec![field, json!(text)],
    )
    .await
    .unwrap();
}

async fn body_text(c: &Client) -> String {
    settled_text(c, "main").await
}

/// Waits for the "done" message a form's redirect shows; fails with the page when it is not there.
async fn expect_done(c: &Client, what: &str) {
    for _ in 0..50 {
        if let Ok(element) = c.find(Locator::Css("p.done")).await
            && element.text().await.is_ok_and(|t| !t.is_empty())
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "{what}: no done message at {}: {}",
        c.current_url().await.unwrap(),
        body_text(c).await
    );
}

/// The text of `css` once the page a click started has loaded (an element of the page before it
/// goes stale under the finder).
async fn settled_text(c: &Client, css: &str) -> String {
    for _ in 0..50 {
        if let Ok(element) = c.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
        {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no {css} on the page");
}

#[tokio::test]
async fn a_reflection_goes_back_and_forth_and_the_certificate_reaches_the_registrar() {
    let server = TestServer::start().await;
    let program = server.programs[0];
    // A student with three activities, their reflections waiting for coord-anna.
    let uid = uuid::Uuid::now_v7().to_string();
    let student = token(Role::Student, &uid);
    let mut enrol = enrolment(&uid, &unique_identity_number());
    enrol["given_names"] = json!("Stina");
    enrol["family_name"] = json!("Svensson");
    let opened = ok(
        &server.base,
        &format!("/programs/{program}/portfolios"),
        &student,
        enrol,
    )
    .await;
    let p = opened["view"]["portfolio_id"].as_str().unwrap().to_owned();
    let anna = token(Role::Coordinator, "coord-anna");
    ok(
        &server.base,
        &format!("/portfolios/{p}/expected-completion/confirm"),
        &anna,
        json!({}),
    )
    .await;
    let mut activities = Vec::new();
    for item in ["language-cafe", "tedx", "course-in-global-health"] {
        let logged = ok(
            &server.base,
            &format!("/portfolios/{p}/activities"),
            &student,
            activity(item, 10),
        )
        .await;
        let a = logged["view"]["activities"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["activity_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let reflection = json!({"format": "written", "text": texts::english(1000)});
        ok(
            &server.base,
            &format!("/portfolios/{p}/activities/{a}/reflection"),
            &student,
            reflection,
        )
        .await;
        activities.push(a);
    }

    let idp = Idp::start(json!({"sub": "coord-anna", "groups": ["cim-coordinator"],
                                "given_name": "Anna", "family_name": "Lind"}))
    .await;
    let base = console_with_idp(&server, &idp).await;
    let browser = Browser::start(1280, 900).await;
    let c = &browser.client;

    // The coordinator finds the oldest waiting reflection and returns it with feedback.
    sign_in(c, &base).await;
    assert_eq!(c.current_url().await.unwrap().path(), "/console/programs");
    accessible(&browser, "programs").await;
    click(c, &format!("main a[href='/console/programs/{program}']")).await;
    accessible(&browser, "program home").await;
    let queue = body_text(c).await;
    assert!(
        queue.contains("Stina Svensson"),
        "the queue names the student: {queue}"
    );
    click(c, &format!("main a[href='/console/portfolios/{p}']")).await;
    accessible(&browser, "portfolio").await;
    let feedback = "Tell more about what you learned from the conversations.";
    fill(c, "textarea[name='feedback']", feedback).await;
    let form = c
        .form(Locator::XPath(
            "(//textarea[@name='feedback'])[1]/ancestor::form",
        ))
        .await
        .unwrap();
    form.submit().await.unwrap();
    expect_done(c, "the reflection was returned").await;
    // A form whose token was removed is refused.
    c.execute("document.querySelector(\"textarea[name='feedback']\").form.querySelector(\"input[name='_csrf']\").remove();", vec![])
        .await
        .unwrap();
    fill(c, "textarea[name='feedback']", "This must not be recorded.").await;
    let stripped = c
        .form(Locator::XPath(
            "(//textarea[@name='feedback'])[1]/ancestor::form",
        ))
        .await
        .unwrap();
    stripped.submit().await.unwrap();
    let refused = settled_text(c, "h1").await;
    assert!(
        refused.contains("formul") || refused.contains("form"),
        "CSRF refusal page: {refused}"
    );
    c.goto(&format!("{base}/console/programs")).await.unwrap();
    sign_out(c).await;

    // The student reads the feedback and resubmits.
    idp.set_user(json!({"sub": uid, "groups": ["cim-student"], "given_name": "Stina", "family_name": "Svensson"}));
    sign_in(c, &base).await;
    c.goto(&format!("{base}/console/me/portfolios/{p}"))
        .await
        .unwrap();
    accessible(&browser, "student portfolio").await;
    assert!(
        body_text(c).await.contains(feedback),
        "the student sees the feedback"
    );
    assert!(!body_text(c).await.contains("This must not be recorded."));
    fill(
        c,
        "form[action$='/reflection/resubmit'] textarea[name='text']",
        &texts::english(1100),
    )
    .await;
    c.form(Locator::Css("form[action$='/reflection/resubmit']"))
        .await
        .unwrap()
        .submit()
        .await
        .unwrap();
    expect_done(c, "the resubmission was recorded").await;
    sign_out(c).await;

    // The rest of the path through the API: approvals, the final reflection, the application.
    for a in &activities {
        ok(
            &server.base,
            &format!("/portfolios/{p}/activities/{a}/reflection/approve"),
            &anna,
            json!({}),
        )
        .await;
    }
    let final_reflection = json!({"format": "written", "text": texts::english(3000)});
    ok(
        &server.base,
        &format!("/portfolios/{p}/final-reflection"),
        &student,
        final_reflection,
    )
    .await;
    ok(
        &server.base,
        &format!("/portfolios/{p}/final-reflection/approve"),
        &anna,
        json!({}),
    )
    .await;
    ok(
        &server.base,
        &format!("/portfolios/{p}/application"),
        &student,
        json!({}),
    )
    .await;

    // The coordinator approves the application on the portfolio page.
    idp.set_user(json!({"sub": "coord-anna", "groups": ["cim-coordinator"]}));
    sign_in(c, &base).await;
    c.goto(&format!("{base}/console/portfolios/{p}"))
        .await
        .unwrap();
    click(
        c,
        "input[name='what'][value='application-approve'] ~ button",
    )
    .await;
    expect_done(c, "the application was approved").await;
    let certified = reqwest::Client::new()
        .get(format!("{}/portfolios/{p}", server.base))
        .bearer_auth(&anna)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(certified["view"]["phase"], "certified", "{certified}");
    sign_out(c).await;

    // Another program's coordinator sees nothing of it.
    idp.set_user(json!({"sub": "coord-bert", "groups": ["cim-coordinator"]}));
    sign_in(c, &base).await;
    c.goto(&format!("{base}/console/portfolios/{p}"))
        .await
        .unwrap();
    let page = body_text(c).await;
    assert!(
        !page.contains("Stina"),
        "coord-bert sees nothing of the student: {page}"
    );
    c.goto(&format!("{base}/console/programs/{program}"))
        .await
        .unwrap();
    assert!(!body_text(c).await.contains("Stina"));
    sign_out(c).await;

    registrar_downloads_the_batch(&browser, &idp, &base).await;
    browser.close().await;
    server.stop().await;
}

/// The registrar runs the export and downloads a file of the batch with the session's cookie.
async fn registrar_downloads_the_batch(browser: &Browser, idp: &Idp, base: &str) {
    let c = &browser.client;
    idp.set_user(json!({"sub": "registrar-1", "groups": ["cim-registrar"]}));
    sign_in(c, base).await;
    accessible(browser, "certificates").await;
    c.goto(&format!("{base}/console/batches")).await.unwrap();
    accessible(browser, "batches").await;
    click(c, "form[action='/console/batches/run'] button").await;
    c.goto(&format!("{base}/console/batches")).await.unwrap();
    click(c, "main a[href^='/console/batches/']").await;
    accessible(browser, "batch").await;
    let link = c
        .find(Locator::Css("main a[href*='/files/']"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let fetched: Value = c
        .execute_async(
            "const done = arguments[1]; fetch(arguments[0]).then(r => r.text().then(t => done([r.status, t.length])));",
            vec![json!(link)],
        )
        .await
        .unwrap();
    assert_eq!(
        fetched[0], 200,
        "the batch file downloads with the session: {link}"
    );
    assert!(fetched[1].as_u64().unwrap() > 0);
    sign_out(c).await;
}
