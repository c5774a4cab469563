//! The read routes of the web API over real HTTP, with the projection runner keeping the read
//! models: review queues, the audit (history, CSV, time travel, the program log with cursors),
//! lists of portfolios, statistics, the registrar's certificates and `/metrics`.

use crate::support;

use support::auth::token;
use support::server::{COORDINATORS, TestServer};

use chrono::{NaiveDate, TimeDelta, Utc};
use cim::domain::ProgramId;
use cim::http::auth::Role;
use cim::projections::Scope;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use support::texts;
use uuid::Uuid;

const ANNA: &str = COORDINATORS[0];
const BERT: &str = COORDINATORS[1];

struct App {
    base: String,
    http: reqwest::Client,
    server: TestServer,
    /// Program A (coordinated by Anna) and program B (by Bert).
    a: ProgramId,
    b: ProgramId,
}

/// The real router as `cim serve` runs it (`support::server`), programs A and B coordinated by Anna
/// and Bert.
async fn spawn_app() -> App {
    let server = TestServer::start().await;
    let [a, b] = server.programs;
    App {
        base: server.base.clone(),
        http: reqwest::Client::new(),
        a,
        b,
        server,
    }
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    fn items(&self) -> &Vec<Value> {
        self.body["items"].as_array().expect("a page has items")
    }
}

impl App {
    async fn get(&self, path: &str, token: &str) -> Answer {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            text,
            body,
        }
    }

    /// A GET that must answer 200.
    async fn read(&self, path: &str, token: &str) -> Answer {
        let answer = self.get(path, token).await;
        assert_eq!(answer.status, StatusCode::OK, "GET {path}: {}", answer.text);
        answer
    }

    /// Every item of a paged list, walked `limit` at a time; also the number of pages read.
    async fn walk(&self, path: &str, token: &str, limit: u32) -> (Vec<Value>, usize) {
        let join = if path.contains('?') { '&' } else { '?' };
        let (mut items, mut pages) = (Vec::new(), 0);
        let mut cursor: Option<String> = None;
        loop {
            let page_path = match &cursor {
                Some(c) => format!("{path}{join}limit={limit}&cursor={c}"),
                None => format!("{path}{join}limit={limit}"),
            };
            let page = self.read(&page_path, token).await;
            pages += 1;
            assert!(page.items().len() <= limit as usize, "{page_path}");
            items.extend(page.items().iter().cloned());
            match page.body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return (items, pages),
            }
        }
    }

    async fn ok(&self, path: &str, token: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert!(status.is_success(), "POST {path} answered {status}: {body}");
        body
    }

    /// Opens a portfolio in `program` for a new student and has the program's coordinator confirm
    /// its date at once (the usual path), so that the queue holds only what a test puts there;
    /// returns (portfolio id, student uid, token).
    async fn open(&self, program: ProgramId) -> (String, String, String) {
        let (id, uid, student) = self.open_unconfirmed(program).await;
        let coordinator = if program == self.a { ANNA } else { BERT };
        self.ok(
            &format!("/portfolios/{id}/expected-completion/confirm"),
            &token(Role::Coordinator, coordinator),
            json!({}),
        )
        .await;
        (id, uid, student)
    }

    /// [`Self::open`] without the confirmation.
    async fn open_unconfirmed(&self, program: ProgramId) -> (String, String, String) {
        let uid = Uuid::now_v7().to_string();
        let student = token(Role::Student, &uid);
        let body = self
            .ok(
                &format!("/programs/{program}/portfolios"),
                &student,
                json!({
                    "student_uid": uid,
                    "identity_number": support::unique_identity_number(),
                    "given_names": "Tolvan",
                    "family_name": "Tolvansson",
                    "email": "tolvan@student.example.se",
                    "expected_completion": today() + TimeDelta::days(365),
                }),
            )
            .await;
        let id = body["view"]["portfolio_id"].as_str().unwrap().to_owned();
        (id, uid, student)
    }

    /// Logs an activity and submits its reflection; returns the activity id.
    async fn reflect(&self, p: &str, student: &str, item: &str, days_ago: i64) -> String {
        let view = self
            .ok(
                &format!("/portfolios/{p}/activities"),
                student,
                json!({
                    "item": item,
                    "started_on": today() - TimeDelta::days(days_ago + 2),
                    "ended_on": today() - TimeDelta::days(days_ago),
                    "description": "Two evenings a week with students from abroad.",
                }),
            )
            .await;
        let activity = view["view"]["activities"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["activity_id"]
            .as_str()
            .unwrap()
            .to_owned();
        self.ok(
            &format!("/portfolios/{p}/activities/{activity}/reflection"),
            student,
            json!({"format": "written", "text": texts::english(1000)}),
        )
        .await;
        activity
    }

    /// Waits until every read model has applied everything in the log.
    async fn settle(&self) {
        // The last event appended (all committed: every command has answered). Not
        // `store.head()`, which stays behind while any transaction of the server, in another
        // test's database too, is still open.
        let (transaction_id, position): (i64, i64) = sqlx::query_as(
            "SELECT transaction_id::text::bigint, position FROM events
             ORDER BY transaction_id DESC, position DESC LIMIT 1",
        )
        .fetch_one(&self.server.db.pool)
        .await
        .unwrap();
        let head = cim::store::Checkpoint {
            transaction_id,
            position,
        };
        self.server
            .runner
            .wait_for(Scope::All, head, Duration::from_secs(30))
            .await
            .unwrap();
    }

    async fn events_of(&self, stream: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_id = $1")
            .bind(stream)
            .fetch_one(&self.server.db.pool)
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// Every data row of a CSV answer (the header is checked and left out).
fn csv_rows(answer: &Answer) -> Vec<csv::StringRecord> {
    assert!(
        answer.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"),
        "{:?}",
        answer.headers
    );
    let mut reader = csv::Reader::from_reader(answer.text.as_bytes());
    let header = reader.headers().unwrap().clone();
    assert_eq!(&header[0], "position");
    assert_eq!(&header[2], "event_type");
    reader.records().map(Result::unwrap).collect()
}

#[tokio::test]
async fn a_date_given_at_enrolment_waits_in_the_queue_until_a_coordinator_confirms_it() {
    let app = spawn_app().await;
    let anna = token(Role::Coordinator, ANNA);
    let (p, _, _) = app.open_unconfirmed(app.a).await;
    app.settle().await;
    let path = format!("/programs/{}/review-queue", app.a);
    let queue = app.read(&path, &anna).await;
    let items = queue.items();
    assert_eq!(items.len(), 1, "{}", queue.text);
    assert_eq!(
        (items[0]["kind"].as_str(), items[0]["portfolio_id"].as_str()),
        (Some("completion_confirmation"), Some(p.as_str())),
        "{}",
        queue.text
    );
    app.ok(
        &format!("/portfolios/{p}/expected-completion/confirm"),
        &anna,
        json!({}),
    )
    .await;
    app.settle().await;
    assert!(app.read(&path, &anna).await.items().is_empty());
    app.server.db.drop().await;
}

#[tokio::test]
async fn coordinators_read_the_queue_the_audit_and_time_travel_and_nobody_else_does() {
    let app = spawn_app().await;
    let anna = token(Role::Coordinator, ANNA);
    let bert = token(Role::Coordinator, BERT);
    let (p, _, student) = app.open(app.a).await;
    app.reflect(&p, &student, "tedx", 20).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let between = Utc::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    app.reflect(&p, &student, "language-cafe", 10).await;
    app.settle().await;

    // The review queue: both reflections, oldest first, with how long they waited.
    let queue = app
        .read(&format!("/programs/{}/review-queue", app.a), &anna)
        .await;
    let items = queue.items();
    assert_eq!(items.len(), 2, "{}", queue.text);
    assert_eq!(items[0]["item_name"], "TEDx");
    assert!(items[0]["submitted_at"].as_str() <= items[1]["submitted_at"].as_str());
    assert!(items[0]["waited_seconds"].as_i64().unwrap() >= 0);
    assert!(queue.body["next_cursor"].is_null());
    let path = format!("/programs/{}/review-queue", app.a);
    // One item per page: the same items in the same order.
    let (paged, pages) = app.walk(&path, &anna, 1).await;
    let positions = |items: &[Value]| -> Vec<i64> {
        items
            .iter()
            .map(|i| i["position"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(positions(&paged), positions(items));
    assert_eq!(pages, 3, "two full pages and an empty last one");
    // An item decided while the coordinator is between pages drops out; nothing repeats.
    let first = app.read(&format!("{path}?limit=1"), &anna).await;
    let next = first.body["next_cursor"].as_str().unwrap().to_owned();
    let decided = items[0]["activity_id"].as_str().unwrap();
    app.ok(
        &format!("/portfolios/{p}/activities/{decided}/reflection/approve"),
        &anna,
        json!({}),
    )
    .await;
    app.settle().await;
    let rest = app
        .read(&format!("{path}?limit=1&cursor={next}"), &anna)
        .await;
    assert_eq!(rest.items().len(), 1);
    assert_eq!(rest.items()[0]["position"], items[1]["position"]);
    assert_eq!(app.get(&path, &bert).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get(&path, &student).await.status, StatusCode::FORBIDDEN);

    // The portfolio's history: every event, in order; the CSV has one row per event.
    let stream_events = app.events_of(&format!("portfolio-{p}")).await;
    let history = app.read(&format!("/portfolios/{p}/history"), &anna).await;
    let versions: Vec<i64> = history
        .items()
        .iter()
        .map(|e| e["stream_version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, (1..=stream_events).collect::<Vec<_>>());
    assert_eq!(history.items()[0]["event_type"], "PortfolioOpened");
    let (paged, pages) = app
        .walk(&format!("/portfolios/{p}/history"), &anna, 2)
        .await;
    assert_eq!(&paged, history.items());
    assert!(pages > 2);
    let csv = app
        .read(&format!("/portfolios/{p}/history.csv"), &anna)
        .await;
    let rows = csv_rows(&csv);
    assert_eq!(rows.len() as i64, stream_events);
    assert_eq!(&rows[0][2], "PortfolioOpened");
    for path in [
        format!("/portfolios/{p}/history"),
        format!("/portfolios/{p}/history.csv"),
        format!("/portfolios/{p}/as-of?at=2026-01-01T00:00:00Z"),
    ] {
        let hidden = app.get(&path, &bert).await;
        assert_eq!(
            (hidden.status, hidden.code()),
            (StatusCode::NOT_FOUND, "portfolio_not_found"),
            "{path}"
        );
        assert_eq!(app.get(&path, &student).await.status, StatusCode::FORBIDDEN);
    }

    // Time travel: between the two activities the portfolio had one.
    let at = between.to_rfc3339().replace('+', "%2B");
    let then = app
        .read(&format!("/portfolios/{p}/as-of?at={at}"), &anna)
        .await;
    assert_eq!(then.body["view"]["activities"].as_array().unwrap().len(), 1);
    let now = Utc::now().to_rfc3339().replace('+', "%2B");
    let later = app
        .read(&format!("/portfolios/{p}/as-of?at={now}"), &anna)
        .await;
    assert_eq!(
        later.body["view"]["activities"].as_array().unwrap().len(),
        2
    );
    let before = app
        .get(
            &format!("/portfolios/{p}/as-of?at=2001-01-01T00:00:00Z"),
            &anna,
        )
        .await;
    assert_eq!(before.status, StatusCode::NOT_FOUND);
    for bad in [
        "",
        "?at=yesterday",
        "?at=2026-13-01T00:00:00Z",
        "?at=2999-01-01T00:00:00Z",
    ] {
        let refused = app.get(&format!("/portfolios/{p}/as-of{bad}"), &anna).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            refused.text
        );
        assert_eq!(refused.body["field"], "at", "{bad}");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_program_log_and_the_lists_walk_in_pages_without_gaps_or_duplicates() {
    let app = spawn_app().await;
    let anna = token(Role::Coordinator, ANNA);
    let mut opened = BTreeSet::new();
    let mut students = Vec::new();
    for _ in 0..5 {
        let (p, uid, student) = app.open(app.a).await;
        opened.insert(p);
        students.push((uid, student));
    }
    app.open(app.b).await;
    app.settle().await;

    // The program's portfolios, two per page.
    let (seen, _) = app
        .walk(&format!("/programs/{}/portfolios", app.a), &anna, 2)
        .await;
    let seen: Vec<String> = seen
        .iter()
        .map(|s| s["portfolio_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, opened.iter().cloned().collect::<Vec<_>>());
    let filtered = app
        .read(
            &format!("/programs/{}/portfolios?phase=certified", app.a),
            &anna,
        )
        .await;
    assert!(filtered.items().is_empty());
    let bad_phase = app
        .get(&format!("/programs/{}/portfolios?phase=done", app.a), &anna)
        .await;
    assert_eq!(bad_phase.body["field"], "phase");

    // A student's own list.
    let (uid, student) = &students[0];
    let mine = app.read("/me/portfolios", student).await;
    assert_eq!(mine.items().len(), 1);
    assert_eq!(mine.items()[0]["student_uid"], uid.as_str());
    assert!(opened.contains(mine.items()[0]["portfolio_id"].as_str().unwrap()));
    let (walked, pages) = app.walk("/me/portfolios", student, 1).await;
    assert_eq!((walked.as_slice(), pages), (mine.items().as_slice(), 2));
    assert_eq!(
        app.get("/me/portfolios", &anna).await.status,
        StatusCode::FORBIDDEN
    );

    // The program log, three per page: every event of the program and its portfolios, once.
    let expected: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_audit WHERE program_id = $1")
        .bind(app.a.as_uuid())
        .fetch_one(&app.server.db.pool)
        .await
        .unwrap();
    let (entries, pages) = app
        .walk(&format!("/programs/{}/audit", app.a), &anna, 3)
        .await;
    let positions: Vec<i64> = entries
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert!(pages > 2);
    let unique: BTreeSet<i64> = positions.iter().copied().collect();
    assert_eq!(
        unique.len(),
        positions.len(),
        "a duplicate in {positions:?}"
    );
    assert_eq!(positions.len() as i64, expected);

    // Filters, and the CSV of the same selection.
    let opened_only = app
        .read(
            &format!(
                "/programs/{}/audit?event_type=PortfolioOpened&limit=200",
                app.a
            ),
            &anna,
        )
        .await;
    assert_eq!(opened_only.items().len(), 5);
    let by_student = app
        .read(&format!("/programs/{}/audit?actor={uid}", app.a), &anna)
        .await;
    assert_eq!(by_student.items().len(), 1);
    let csv = app
        .read(
            &format!("/programs/{}/audit.csv?event_type=PortfolioOpened", app.a),
            &anna,
        )
        .await;
    assert_eq!(csv_rows(&csv).len(), 5);
    let future = app
        .read(
            &format!("/programs/{}/audit?from=2999-01-01T00:00:00Z", app.a),
            &anna,
        )
        .await;
    assert!(future.items().is_empty());

    // Tampered and foreign cursors, bad limits and times are 400s naming the parameter.
    let cursor = app
        .read(&format!("/programs/{}/audit?limit=1", app.a), &anna)
        .await
        .body["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut tampered = cursor.clone();
    let flipped = if tampered.ends_with('A') { "B" } else { "A" };
    tampered.replace_range(tampered.len() - 1.., flipped);
    let portfolio_cursor = app
        .read(&format!("/programs/{}/portfolios?limit=1", app.a), &anna)
        .await
        .body["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    for (query, field) in [
        (format!("cursor={tampered}"), "cursor"),
        ("cursor=bm90IGEgY3Vyc29y".to_owned(), "cursor"),
        (format!("cursor={portfolio_cursor}"), "cursor"),
        ("limit=0".to_owned(), "limit"),
        ("limit=201".to_owned(), "limit"),
        ("from=last-week".to_owned(), "from"),
    ] {
        let refused = app
            .get(&format!("/programs/{}/audit?{query}", app.a), &anna)
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(refused.body["field"], field, "{query}: {}", refused.text);
        if field == "cursor" {
            assert_eq!(refused.code(), "invalid_cursor");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn statistics_certificates_and_metrics_show_no_personal_data() {
    let app = spawn_app().await;
    let anna = token(Role::Coordinator, ANNA);
    let bert = token(Role::Coordinator, BERT);
    let registrar = token(Role::Registrar, "registrar-1");
    let admin = token(Role::Admin, "admin-1");
    let (p, uid, student) = app.open(app.a).await;
    let mut activities = Vec::new();
    for (i, item) in ["language-cafe", "tedx", "course-in-global-health"]
        .iter()
        .enumerate()
    {
        activities.push(app.reflect(&p, &student, item, 30 - 5 * i as i64).await);
    }
    for a in &activities {
        app.ok(
            &format!("/portfolios/{p}/activities/{a}/reflection/approve"),
            &anna,
            json!({}),
        )
        .await;
    }
    app.ok(
        &format!("/portfolios/{p}/final-reflection"),
        &student,
        json!({"format": "written", "text": texts::english(3000)}),
    )
    .await;
    app.ok(
        &format!("/portfolios/{p}/final-reflection/approve"),
        &anna,
        json!({}),
    )
    .await;
    app.ok(&format!("/portfolios/{p}/application"), &student, json!({}))
        .await;
    let approved = app
        .ok(
            &format!("/portfolios/{p}/application/approve"),
            &anna,
            json!({}),
        )
        .await;
    let certificate = approved["view"]["certificate"]["certificate_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.open(app.a).await;
    app.settle().await;

    // Statistics: aggregates for admin and coordinators, no names, no ids of students.
    let program = app
        .read(&format!("/programs/{}/statistics", app.a), &anna)
        .await;
    assert_eq!(
        program.body["statistics"]["students_started"], 2,
        "{}",
        program.text
    );
    assert_eq!(program.body["statistics"]["approved"], 1);
    assert_eq!(program.body["drop_off"]["open"], 1);
    let overall = app.read("/statistics", &bert).await;
    assert_eq!(overall.body["statistics"]["students_started"], 2);
    app.read(&format!("/programs/{}/statistics", app.a), &admin)
        .await;
    for text in [&program.text, &overall.text] {
        assert!(!text.contains(&uid) && !text.contains(&p) && !text.contains("Tolvan"));
    }
    let path = format!("/programs/{}/statistics", app.a);
    assert_eq!(app.get(&path, &bert).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/statistics", &registrar).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/statistics", &student).await.status,
        StatusCode::FORBIDDEN
    );

    // The registrar's certificates.
    let list = app.read("/certificates", &registrar).await;
    assert_eq!(list.items().len(), 1);
    assert_eq!(list.items()[0]["certificate_id"], certificate.as_str());
    assert!(!list.text.contains("Tolvan") && !list.text.contains("199602"));
    let of_b = app
        .read(&format!("/certificates?program={}", app.b), &registrar)
        .await;
    assert!(of_b.items().is_empty());
    let revoked = app.read("/certificates?status=revoked", &registrar).await;
    assert!(revoked.items().is_empty());
    let one = app
        .read(&format!("/certificates/{certificate}"), &registrar)
        .await;
    assert_eq!(one.body["program_id"], app.a.to_string());
    // What the registrar must still do by hand in Ladok for an approved certificate.
    assert_eq!(
        one.body["ladok_manual_steps"][0]["code"],
        "allow_in_degree_certificate"
    );
    assert!(
        one.body["ladok_manual_steps"][0]["text"]
            .as_str()
            .unwrap()
            .contains("TillatenIBevis")
    );
    let missing = app
        .get(&format!("/certificates/{}", Uuid::now_v7()), &registrar)
        .await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::NOT_FOUND, "certificate_not_found")
    );
    for caller in [&admin, &anna, &student] {
        assert_eq!(
            app.get("/certificates", caller).await.status,
            StatusCode::FORBIDDEN
        );
    }

    // Metrics: latency by route template (no id in any label), projection lag, export counts.
    app.read(&format!("/portfolios/{p}/history.csv"), &anna)
        .await;
    let response = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let metrics = response.text().await.unwrap();
    assert!(
        metrics.contains(
            "cim_http_request_duration_seconds_bucket{method=\"GET\",route=\"/certificates/{certificate_id}\",status=\"200\",le=\"+Inf\"}"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("route=\"/portfolios/{portfolio_id}/history.csv\",status=\"200\""));
    assert!(metrics.contains("cim_projection_lag_events{projection=\"audit\"}"));
    assert!(metrics.contains("cim_exports_total{kind=\"audit_csv\"}"));
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        let labels = line.split('}').next().unwrap();
        for word in labels.split(|c: char| !(c.is_ascii_hexdigit() || c == '-')) {
            assert!(Uuid::parse_str(word).is_err(), "an id in a label: {line}");
        }
    }
    app.stop().await;
}
