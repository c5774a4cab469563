//! The student's pages: their own portfolio with what is left to do, the forms that log an
//! activity and send a reflection through the API, the upload of a recording with the session's
//! CSRF token in a header, and nobody else's portfolio.

use crate::support::console::{Person, sign_in};
use crate::support::flow::{self, Api};
use crate::support::server::TestServer;
use crate::support::{eventually, recordings, texts};
use cim::http::auth::Role;

/// A student with a portfolio opened through the API in the first program: (person, portfolio id).
async fn student_with_portfolio(server: &TestServer, api: &Api) -> (Person, String) {
    let uid = uuid::Uuid::now_v7().to_string();
    let opened = flow::open(api, 0, server.programs[0], &uid, 1)
        .await
        .unwrap();
    let person = sign_in(&server.base, &server.db.pool, Role::Student, &uid, None).await;
    (person, opened.portfolio)
}

/// The id of the first activity on the page (`<section … aria-labelledby="act-<id>">`).
fn first_activity(html: &str) -> String {
    let at = html.find("id=\"act-").expect("an activity on the page") + "id=\"act-".len();
    html[at..at + 36].to_owned()
}

#[tokio::test]
async fn a_student_sees_their_portfolio_logs_an_activity_and_sends_a_reflection() {
    let server = TestServer::start().await;
    let api = Api::new(vec![server.base.clone()]);
    let (student, portfolio) = student_with_portfolio(&server, &api).await;
    let page_path = format!("/console/me/portfolios/{portfolio}");

    // The list links to the portfolio once the read model has it.
    eventually("the portfolio is listed", async || {
        student.get("/console/me").await.html.contains(&page_path)
    })
    .await;

    let page = student.get(&page_path).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("Det här återstår"), "{}", page.html);
    assert!(
        page.html
            .contains("Registrera ytterligare en aktivitet ur katalogen.")
    );
    assert!(page.html.contains("dagar kvar"));
    assert!(page.html.contains("<textarea id=\"log-description\""));

    // The form without the session's token does nothing.
    let action = format!("{page_path}/activities");
    let refused = student.post_raw(&action, &[("item", "tedx")]).await;
    assert_eq!(refused.status, 403);

    let today = flow::today();
    let (start, end) = (
        (today - chrono::TimeDelta::days(10)).to_string(),
        (today - chrono::TimeDelta::days(8)).to_string(),
    );
    let csrf = page.csrf();
    let logged = student
        .post(
            &action,
            &csrf,
            &[
                ("item", "language-cafe"),
                ("started_on", &start),
                ("ended_on", &end),
                (
                    "description",
                    "Two evenings a week with students from abroad.",
                ),
            ],
        )
        .await;
    assert_eq!(logged.status, 303, "{}", logged.html);
    assert_eq!(
        logged.location.as_deref(),
        Some(format!("{page_path}?done=student-activity-logged").as_str())
    );
    let page = student.get(logged.location.as_deref().unwrap()).await;
    assert!(page.html.contains("Aktiviteten är registrerad."));
    assert!(
        page.html
            .contains("Two evenings a week with students from abroad.")
    );
    assert!(page.html.contains("Reflektionen är inte inlämnad"));

    // A reflection that is too short is refused with the console's own words.
    let activity = first_activity(&page.html);
    let reflect = format!("{page_path}/activities/{activity}/reflection");
    let short = student
        .post(
            &reflect,
            &csrf,
            &[("format", "written"), ("text", "Too short.")],
        )
        .await;
    assert_eq!(short.status, 422);
    assert!(
        short.html.contains("Reflektionens längd ligger utanför"),
        "{}",
        short.html
    );

    let text = texts::english(1000);
    let sent = student
        .post(&reflect, &csrf, &[("format", "written"), ("text", &text)])
        .await;
    assert_eq!(sent.status, 303, "{}", sent.html);
    let page = student.get(&page_path).await;
    assert!(page.html.contains("Reflektionen väntar på granskning"));
    assert!(page.html.contains("1000 ord"));

    // The coordinator returns it with feedback: the page shows the feedback and a form to send
    // it again.
    let feedback = "Please say more about what you will take with you.";
    let path = format!("/portfolios/{portfolio}/activities/{activity}/reflection/return");
    let returned = api
        .command(
            0,
            &path,
            &flow::Caller::coordinator("coord-anna"),
            serde_json::json!({"feedback": feedback}),
            None,
            |id| vec![id],
        )
        .await
        .unwrap();
    assert_eq!(returned.status, 200, "{}", returned.body);
    let page = student.get(&page_path).await;
    assert!(page.html.contains("Återsänd för bearbetning"));
    assert!(page.html.contains(feedback));
    assert!(
        page.html
            .contains(&format!("action=\"{reflect}/resubmit\""))
    );
    let again = student
        .post(
            &format!("{reflect}/resubmit"),
            &csrf,
            &[("format", "written"), ("text", &texts::english(900))],
        )
        .await;
    assert_eq!(again.status, 303, "{}", again.html);
    assert!(student.get(&page_path).await.html.contains("Försök 2"));

    // In English too.
    let english = student.clone().in_language("en").get(&page_path).await;
    assert!(english.html.contains("What is left to do"));
    assert!(english.html.contains("Reflection awaiting review"));

    // Another student, and the program's coordinator, see nothing here (404, as in the API).
    let other = sign_in(
        &server.base,
        &server.db.pool,
        Role::Student,
        &uuid::Uuid::now_v7().to_string(),
        None,
    )
    .await;
    assert_eq!(other.get(&page_path).await.status, 404);
    assert_eq!(
        other
            .get(&format!("{page_path}/certificate.pdf"))
            .await
            .status,
        404
    );
    let home = other.get("/console/me").await;
    assert!(home.html.contains("action=\"/console/me/portfolios\""));
    assert!(!home.html.contains(&page_path));
    let anna = sign_in(
        &server.base,
        &server.db.pool,
        Role::Coordinator,
        "coord-anna",
        None,
    )
    .await;
    assert_eq!(anna.get(&page_path).await.status, 404);

    // The other student opens their own in the second program with the form (the session has
    // no e-mail, so the form asks for it).
    assert!(home.html.contains("id=\"open-email\""));
    let completion = (today + chrono::TimeDelta::days(365)).to_string();
    let program = server.programs[1].to_string();
    let number = flow::identity_number(2);
    let opened = other
        .post(
            "/console/me/portfolios",
            &home.csrf(),
            &[
                ("program", &program),
                ("expected_completion", &completion),
                ("identity_number", &number),
                ("email", "other@student.example.se"),
            ],
        )
        .await;
    assert_eq!(opened.status, 303, "{}", opened.html);
    let to = opened.location.unwrap();
    assert!(to.starts_with("/console/me/portfolios/") && to.ends_with("?done=student-opened"));
    assert_eq!(other.get(&to).await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn an_approved_student_gets_the_certificate_and_the_credential() {
    let server = TestServer::start().await;
    let api = Api::new(vec![server.base.clone()]);
    let anna = flow::Caller::coordinator("coord-anna");
    flow::certify(&api, server.programs[0], &anna, 1)
        .await
        .unwrap();
    // flow::certify makes up the student; the read model says who they are.
    let mut found = None;
    eventually("the certified portfolio is in the read model", async || {
        found = sqlx::query_as::<_, (uuid::Uuid, uuid::Uuid)>(
            "SELECT portfolio_id, student_uid FROM rm_portfolios WHERE phase = 'certified'",
        )
        .fetch_optional(&server.db.pool)
        .await
        .unwrap();
        found.is_some()
    })
    .await;
    let (portfolio, uid) = found.unwrap();
    let student = sign_in(
        &server.base,
        &server.db.pool,
        Role::Student,
        &uid.to_string(),
        None,
    )
    .await
    .in_language("en");
    let page_path = format!("/console/me/portfolios/{portfolio}");
    let page = student.get(&page_path).await;
    assert!(
        page.html.contains("Your certificate has been approved."),
        "{}",
        page.html
    );
    assert!(
        page.html
            .contains(&format!("href=\"{page_path}/certificate.pdf\""))
    );
    let http = reqwest::Client::new();
    let fetch = |path: String| {
        http.get(format!("{}{path}", server.base))
            .header("cookie", format!("{}; cim_lang=en", student.cookie))
            .send()
    };
    let pdf = fetch(format!("{page_path}/certificate.pdf")).await.unwrap();
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF"));
    let credential = fetch(format!("{page_path}/credential")).await.unwrap();
    assert_eq!(credential.status(), 200);
    assert_eq!(
        credential.text().await.unwrap().split('.').count(),
        3,
        "a JWT"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_recording_is_uploaded_only_with_the_sessions_token_in_the_header() {
    let server = TestServer::start().await;
    let api = Api::new(vec![server.base.clone()]);
    let uid = uuid::Uuid::now_v7().to_string();
    let mut opened = flow::open(&api, 0, server.programs[0], &uid, 1)
        .await
        .unwrap();
    opened
        .step(
            "/activities",
            &flow::Caller::student(&uid),
            flow::activity("tedx", 10),
        )
        .await
        .unwrap();
    let student = sign_in(&server.base, &server.db.pool, Role::Student, &uid, None).await;
    let page_path = format!("/console/me/portfolios/{}", opened.portfolio);
    let page = student.get(&page_path).await;
    assert!(page.html.contains("<progress"));
    assert!(
        page.html
            .contains(&format!("data-upload=\"{page_path}/media\""))
    );
    let csrf = page.csrf();
    let http = reqwest::Client::new();
    let upload = |token: Option<&str>| {
        let mut request = http
            .post(format!("{}{page_path}/media", server.base))
            .header("cookie", &student.cookie)
            .header("content-type", "audio/wav")
            .body(recordings::wav(2));
        if let Some(token) = token {
            request = request.header("x-csrf-token", token);
        }
        request.send()
    };
    assert_eq!(upload(None).await.unwrap().status(), 403);
    assert_eq!(upload(Some("not-the-token")).await.unwrap().status(), 403);
    let stored = upload(Some(&csrf)).await.unwrap();
    assert_eq!(stored.status(), 201);
    let answer: serde_json::Value = stored.json().await.unwrap();
    assert_eq!(answer["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(answer["content_type"], "audio/wav");

    // Another student cannot upload into this portfolio, even with their own token.
    let other = sign_in(
        &server.base,
        &server.db.pool,
        Role::Student,
        &uuid::Uuid::now_v7().to_string(),
        None,
    )
    .await;
    let other_csrf = other.get("/console/me").await.csrf();
    let theirs = http
        .post(format!("{}{page_path}/media", server.base))
        .header("cookie", &other.cookie)
        .header("x-csrf-token", other_csrf)
        .body(recordings::wav(2))
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), 404);
    server.stop().await;
}
