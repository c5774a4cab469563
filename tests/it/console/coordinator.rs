//! The coordinator's pages: the review queue with names, oldest first; returning a reflection with
//! feedback; bulk approval; another program's coordinator sees nothing; both languages; the CSV.

use crate::support::auth::token;
use crate::support::console::{Person, sign_in};
use crate::support::eventually;
use crate::support::flow::{activity, enrolment};
use crate::support::http::{get, post};
use crate::support::server::TestServer;
use crate::support::texts;
use crate::support::unique_identity_number;
use cim::domain::ProgramId;
use cim::http::auth::Role;
use serde_json::{Value, json};

/// An API client for one test: posts that must succeed.
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn ok(&self, path: &str, token: &str, body: Value) -> Value {
        let answer = post(&self.http, &self.base, path, token, &body).await;
        assert!(answer.status.is_success(), "POST {path}: {}", answer.body);
        answer.body
    }

    /// A new student of `program` named `given family`, with one activity whose reflection is
    /// submitted: (portfolio id, activity id, student token).
    async fn student_with_reflection(
        &self,
        program: ProgramId,
        given: &str,
        family: &str,
    ) -> (String, String, String) {
        let uid = uuid::Uuid::now_v7().to_string();
        let student = token(Role::Student, &uid);
        let mut body = enrolment(&uid, &unique_identity_number());
        body["given_names"] = json!(given);
        body["family_name"] = json!(family);
        let opened = self
            .ok(&format!("/programs/{program}/portfolios"), &student, body)
            .await;
        let p = opened["view"]["portfolio_id"].as_str().unwrap().to_owned();
        let logged = self
            .ok(
                &format!("/portfolios/{p}/activities"),
                &student,
                activity("language-cafe", 10),
            )
            .await;
        let a = logged["view"]["activities"][0]["activity_id"]
            .as_str()
            .unwrap()
            .to_owned();
        self.ok(
            &format!("/portfolios/{p}/activities/{a}/reflection"),
            &student,
            json!({"format": "written", "text": texts::english(1000)}),
        )
        .await;
        (p, a, student)
    }
}

async fn coordinators(server: &TestServer) -> (Person, Person) {
    let pool = &server.db.pool;
    let anna = sign_in(&server.base, pool, Role::Coordinator, "coord-anna", None).await;
    let bert = sign_in(&server.base, pool, Role::Coordinator, "coord-bert", None).await;
    (anna, bert)
}

#[tokio::test]
async fn the_queue_names_students_oldest_first_and_a_returned_reflection_leaves_it() {
    let server = TestServer::start().await;
    let api = Api {
        http: reqwest::Client::new(),
        base: server.base.clone(),
    };
    let program = server.programs[0];
    let (p1, a1, _) = api
        .student_with_reflection(program, "Astrid", "Första")
        .await;
    let (_p2, _, _) = api
        .student_with_reflection(program, "Bertil", "Andra")
        .await;
    let (anna, _) = coordinators(&server).await;
    let home = format!("/console/programs/{program}");

    // The programs list links to the program; the home lists both, the older first.
    let list = anna.get("/console/programs").await;
    assert_eq!(list.status, 200);
    assert!(list.html.contains(&home), "{}", list.html);
    let mut page = anna.get(&home).await;
    eventually("both reflections are in the queue", async || {
        page = anna.get(&home).await;
        page.html.contains("Bertil Andra")
    })
    .await;
    assert_eq!(page.status, 200);
    let (first, second) = (
        page.html.find("Astrid Första").unwrap(),
        page.html.find("Bertil Andra").unwrap(),
    );
    assert!(first < second, "oldest first");
    assert!(page.html.contains("Väntar på granskning"), "Swedish");
    let english = anna.clone().in_language("en").get(&home).await;
    assert!(english.html.contains("Waiting for review"), "English");

    // Search by identity number finds nobody else; by name finds Astrid.
    // Posted, so a searched identity number stays out of URLs.
    let found = anna.post(&home, &page.csrf(), &[("q", "astrid")]).await;
    assert_eq!(found.status, 200);
    assert!(found.html.contains("Sökresultat"));
    assert!(
        found.html.matches("Astrid Första").count() >= 2,
        "queue + result"
    );

    // The portfolio page shows the text and the forms; returning it with feedback (PRG).
    let portfolio = format!("/console/portfolios/{p1}");
    let shown = anna.get(&portfolio).await;
    assert_eq!(shown.status, 200);
    assert!(shown.html.contains("Astrid Första"));
    assert!(shown.html.contains("1000 ord"), "word count");
    let fields = [
        ("_key", uuid::Uuid::new_v4().to_string()),
        ("what", "reflection-return".to_owned()),
        ("activity", a1.clone()),
        ("feedback", "Berätta mer om vad du tar med dig.".to_owned()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let decide = format!("{portfolio}/decide");
    let forged = anna.post_raw(&decide, &fields).await;
    assert_eq!(forged.status, 403, "no CSRF token");
    let answered = anna.post(&decide, &shown.csrf(), &fields).await;
    assert_eq!(answered.status, 303, "{}", answered.html);
    let to = answered.location.unwrap();
    assert_eq!(to, format!("{portfolio}?done=coord-returned"));
    let after = anna.get(&to).await;
    assert!(
        after.html.contains("Återlämnat till studenten"),
        "done message"
    );
    assert!(after.html.contains("Berätta mer om vad du tar med dig."));
    // The expected completion date is confirmed with the form's button.
    let confirmed = anna
        .post(&decide, &after.csrf(), &[("what", "completion-confirm")])
        .await;
    assert_eq!(
        confirmed.location.as_deref(),
        Some(format!("{portfolio}?done=coord-completion-confirmed").as_str())
    );
    // (Astrid's expected completion date waited for confirmation too: the rows are told apart.)
    let row = format!("{p1}\">Astrid Första</a></td><td>Reflektion");
    assert!(page.html.contains(&row), "{}", page.html);
    eventually("the returned reflection leaves the queue", async || {
        !anna.get(&home).await.html.contains(&row)
    })
    .await;

    // The history says it in words; the audit's CSV has its header row.
    eventually("the history shows the return", async || {
        let history = anna.get(&format!("{portfolio}/history")).await;
        history
            .html
            .contains("Reflektion återlämnad med återkoppling")
    })
    .await;
    let audit = anna
        .get(&format!("{home}/audit?event_type=ReflectionReturned"))
        .await;
    assert_eq!(audit.status, 200);
    assert!(audit.html.contains(&portfolio), "{}", audit.html);
    let csv = anna
        .get(&format!("{home}/audit.csv?event_type=ReflectionReturned"))
        .await;
    assert_eq!(csv.status, 200);
    let header = csv.html.lines().next().unwrap();
    assert!(
        header.starts_with("position,recorded_at,event_type"),
        "{header}"
    );
    assert_eq!(csv.html.lines().count(), 2, "the header and the one return");
    server.stop().await;
}

#[tokio::test]
async fn another_programs_coordinator_gets_404_everywhere() {
    let server = TestServer::start().await;
    let api = Api {
        http: reqwest::Client::new(),
        base: server.base.clone(),
    };
    let program = server.programs[0];
    let (p, a, student) = api
        .student_with_reflection(program, "Cecilia", "Tredje")
        .await;
    // A second activity with an oral reflection, its recording uploaded.
    let uploaded = crate::support::http::send(
        api.http
            .post(format!("{}/portfolios/{p}/media", server.base))
            .bearer_auth(&student)
            .body(crate::support::recordings::ogg_opus(150)),
    )
    .await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    let sha = uploaded.body["sha256"].as_str().unwrap().to_owned();
    let logged = api
        .ok(
            &format!("/portfolios/{p}/activities"),
            &student,
            activity("tedx", 5),
        )
        .await;
    let oral = logged["view"]["activities"][1]["activity_id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.ok(
        &format!("/portfolios/{p}/activities/{oral}/reflection"),
        &student,
        json!({"format": "oral", "media_sha256": sha}),
    )
    .await;
    let (anna, bert) = coordinators(&server).await;
    let media = format!("/console/portfolios/{p}/media/{sha}");
    let shown = anna.get(&format!("/console/portfolios/{p}")).await;
    assert!(
        shown
            .html
            .contains(&format!("<audio controls src=\"{media}\"")),
        "{}",
        shown.html
    );
    let pages = [
        format!("/console/programs/{program}"),
        format!("/console/programs/{program}/ready"),
        format!("/console/programs/{program}/audit"),
        format!("/console/programs/{program}/audit.csv"),
        format!("/console/portfolios/{p}"),
        format!("/console/portfolios/{p}/history"),
        media,
    ];
    for path in &pages {
        assert_eq!(anna.get(path).await.status, 200, "anna: {path}");
        let refused = bert.get(path).await;
        assert_eq!(refused.status, 404, "bert: {path}");
        assert!(!refused.html.contains("Cecilia"), "bert: {path}");
    }
    let csrf = bert.get("/console/programs").await.csrf();
    let fields = [("what", "reflection-approve"), ("activity", a.as_str())];
    let decided = bert
        .post(&format!("/console/portfolios/{p}/decide"), &csrf, &fields)
        .await;
    assert_eq!(decided.status, 404);
    let bulk = bert
        .post(
            &format!("/console/programs/{program}/approve"),
            &csrf,
            &[("portfolio", p.as_str())],
        )
        .await;
    assert_eq!(bulk.status, 404);
    // Nothing was decided: the reflection still waits.
    let view = get(
        &api.http,
        &server.base,
        &format!("/portfolios/{p}"),
        &token(Role::Coordinator, "coord-anna"),
    )
    .await;
    assert_eq!(
        view.body["view"]["activities"][0]["status"],
        "awaiting_review"
    );
    server.stop().await;
}

#[tokio::test]
async fn bulk_approval_approves_the_ready_applications() {
    let server = TestServer::start().await;
    let api = Api {
        http: reqwest::Client::new(),
        base: server.base.clone(),
    };
    let program = server.programs[0];
    let anna_token = token(Role::Coordinator, "coord-anna");
    let (p, a, student) = api
        .student_with_reflection(program, "Doris", "Fjärde")
        .await;
    let mut activities = vec![a];
    for item in ["tedx", "course-in-global-health"] {
        let logged = api
            .ok(
                &format!("/portfolios/{p}/activities"),
                &student,
                activity(item, 5),
            )
            .await;
        let id = logged["view"]["activities"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["activity_id"]
            .as_str()
            .unwrap()
            .to_owned();
        api.ok(
            &format!("/portfolios/{p}/activities/{id}/reflection"),
            &student,
            json!({"format": "written", "text": texts::english(1000)}),
        )
        .await;
        activities.push(id);
    }
    for id in &activities {
        api.ok(
            &format!("/portfolios/{p}/activities/{id}/reflection/approve"),
            &anna_token,
            json!({}),
        )
        .await;
    }
    api.ok(
        &format!("/portfolios/{p}/expected-completion/confirm"),
        &anna_token,
        json!({}),
    )
    .await;
    api.ok(
        &format!("/portfolios/{p}/final-reflection"),
        &student,
        json!({"format": "written", "text": texts::english(3000)}),
    )
    .await;
    api.ok(
        &format!("/portfolios/{p}/final-reflection/approve"),
        &anna_token,
        json!({}),
    )
    .await;
    api.ok(&format!("/portfolios/{p}/application"), &student, json!({}))
        .await;

    let (anna, _) = coordinators(&server).await;
    let ready = format!("/console/programs/{program}/ready");
    let mut page = anna.get(&ready).await;
    eventually("the application is listed as ready", async || {
        page = anna.get(&ready).await;
        page.html.contains("Doris Fjärde")
    })
    .await;
    assert!(page.html.contains("data-select-all=\"portfolio\""));
    let done = anna
        .post(
            &format!("/console/programs/{program}/approve"),
            &page.csrf(),
            &[("portfolio", p.as_str())],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.html);
    assert!(done.html.contains("En ansökan godkändes."), "{}", done.html);
    let view = get(
        &api.http,
        &server.base,
        &format!("/portfolios/{p}"),
        &anna_token,
    )
    .await;
    assert_eq!(view.body["view"]["phase"], "certified");
    // Sent again, it is refused by name, with the reason.
    let again = anna
        .post(
            &format!("/console/programs/{program}/approve"),
            &page.csrf(),
            &[("portfolio", p.as_str())],
        )
        .await;
    assert!(
        again.html.contains("0 ansökningar godkändes."),
        "{}",
        again.html
    );
    assert!(again.html.contains("Doris Fjärde"));
    server.stop().await;
}

#[tokio::test]
async fn a_coordinator_manages_the_catalog_and_the_rules() {
    let server = TestServer::start().await;
    let program = server.programs[0];
    let (anna, bert) = coordinators(&server).await;
    let page_path = format!("/console/programs/{program}/catalog");
    let page = anna.get(&page_path).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("language-cafe"));
    let csrf = page.csrf();
    let added = anna
        .post(
            &page_path,
            &csrf,
            &[
                ("item", "buddy-programme"),
                ("name", "Buddy for an exchange student"),
            ],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.html);
    let renamed = anna
        .post(
            &format!("{page_path}/buddy-programme/rename"),
            &csrf,
            &[("name", "Buddy programme")],
        )
        .await;
    assert_eq!(renamed.status, 303, "{}", renamed.html);
    let retired = anna
        .post(&format!("{page_path}/tedx/retire"), &csrf, &[])
        .await;
    assert_eq!(retired.status, 303, "{}", retired.html);
    // The rules form sends every rule; one is changed.
    let rules: Vec<(&str, &str)> = vec![
        ("required_activities", "3"),
        ("written_min", "800"),
        ("written_max", "1100"),
        ("oral_min_s", "120"),
        ("oral_max_s", "180"),
        ("oral_tolerance_s", "15"),
        ("instagram_min_posts", "3"),
        ("instagram_words_min", "450"),
        ("instagram_words_max", "550"),
        ("final_written_min", "2700"),
        ("final_written_max", "3300"),
        ("final_oral_min_s", "300"),
        ("final_deadline_offset_days", "28"),
        ("video_platform_hosts", "play.ki.se"),
    ];
    let changed = anna
        .post(&format!("/console/programs/{program}/rules"), &csrf, &rules)
        .await;
    assert_eq!(changed.status, 303, "{}", changed.html);
    let bad = anna
        .post(
            &format!("/console/programs/{program}/rules"),
            &csrf,
            &[("required_activities", "three")],
        )
        .await;
    assert_eq!(bad.status, 400);
    // The API's view of the program has all of it, by coord-anna.
    let view = get(
        &reqwest::Client::new(),
        &server.base,
        &format!("/programs/{program}"),
        &token(Role::Coordinator, "coord-anna"),
    )
    .await;
    let catalog = view.body["catalog"].as_array().unwrap();
    let buddy = catalog
        .iter()
        .find(|i| i["item"] == "buddy-programme")
        .unwrap();
    assert_eq!(buddy["name"], "Buddy programme");
    assert_eq!(
        catalog.iter().find(|i| i["item"] == "tedx").unwrap()["retired"],
        true
    );
    assert_eq!(view.body["rules"]["written"]["min"], 800);
    assert_eq!(
        view.body["rules"]["video_platform_hosts"],
        json!(["play.ki.se"])
    );
    let after = anna.get(&page_path).await;
    assert!(after.html.contains("Buddy programme"));
    // Another program's coordinator: 404 on the page and the forms, and nothing changed.
    assert_eq!(bert.get(&page_path).await.status, 404);
    let bert_csrf = bert.get("/console/programs").await.csrf();
    let refused = bert
        .post(&page_path, &bert_csrf, &[("item", "x-item"), ("name", "X")])
        .await;
    assert_eq!(refused.status, 404);
    server.stop().await;
}
