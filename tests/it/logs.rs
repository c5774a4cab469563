//! No personal data in any log line, over a whole flow: `cim serve` as a child process at `debug`
//! (every crate), driven over HTTP as the clients drive it, from the admin's set-up to the
//! registrar's download of the batch Ladok was sent, with error answers on the way. Then its whole
//! standard error is searched for every personal value the flow carried.

use crate::support;

use chrono::{NaiveDate, TimeDelta, Utc};
use cim::http::auth::Role;
use cim::store::EventStore;
use cim_fake_ladok::FakeLadok;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::auth::{SECRET, token};
use support::ladok::LadokFiles;
use support::process::{ServeProcess, wait_ready};
use support::{recordings, texts};
use uuid::Uuid;

/// Distinctive values, so a hit in the log can only come from this flow.
const IDENTITY_NUMBER: &str = "19890714-3286";
const GIVEN_NAMES: &str = "Ottilia Margareta";
const FAMILY_NAME: &str = "Quennerstedt-Lindqvist";
const EMAIL: &str = "ottilia.quennerstedt@student.example.se";
const DESCRIPTION: &str = "Cooked with the Valparaiso harbour volunteers every Thursday.";
const WRITTEN: &str = "Working beside the Valparaiso harbour cooks taught me patience.";
const INSTAGRAM: &str = "My tandem partner Kazimiera showed me how Lodz celebrates spring.";
const FINAL: &str = "Looking back, the Lodz tandem evenings changed how I listen to people.";
const LINKS: [&str; 3] = [
    "https://www.instagram.com/p/QuennLogA1/",
    "https://www.instagram.com/p/QuennLogB2/",
    "https://www.instagram.com/p/QuennLogC3/",
];
const COORDINATOR: &str = "coord-logtest";
/// The clients connect from this address, so a logged client address would be found.
const CLIENT_ADDRESS: &str = "127.0.0.9";

/// Prose the server counts as `words` words, opening with `sentence` (which `texts` never writes).
fn prose(sentence: &str, words: usize) -> String {
    let own = sentence.split_whitespace().count();
    format!("{sentence} {}", texts::english(words - own))
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// The API as a client sees it.
struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.unwrap();
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    async fn post(&self, path: &str, bearer: &str, body: Value) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.base);
        self.send(self.http.post(url).bearer_auth(bearer).json(&body))
            .await
    }

    async fn get(&self, path: &str, bearer: &str) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.base);
        self.send(self.http.get(url).bearer_auth(bearer)).await
    }

    /// A POST that must succeed.
    async fn ok(&self, path: &str, bearer: &str, body: Value) -> Value {
        let (status, answer) = self.post(path, bearer, body).await;
        assert!(status.is_success(), "POST {path}: {status} {answer}");
        answer
    }
}

/// The log without its ANSI colour codes (the fmt layer writes them even into a pipe).
fn without_colours(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ parameters, ended by a letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// What the flow gave the service that must never reach a log line, by name.
fn personal_values(student_uid: &str, upload: &str, tokens: &[&str]) -> Vec<(String, String)> {
    let digits: String = IDENTITY_NUMBER
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let mut values = vec![
        ("identity number (12 digits)", digits.clone()),
        (
            "identity number (YYYYMMDD-NNNN)",
            IDENTITY_NUMBER.to_owned(),
        ),
        ("identity number (10 digits)", digits[2..].to_owned()),
        (
            "identity number (YYMMDD-NNNN)",
            format!("{}-{}", &digits[2..8], &digits[8..]),
        ),
        ("given names", GIVEN_NAMES.to_owned()),
        ("first given name", "Ottilia".to_owned()),
        ("family name", FAMILY_NAME.to_owned()),
        ("family name, first part", "Quennerstedt".to_owned()),
        ("e-mail", EMAIL.to_owned()),
        ("activity description", DESCRIPTION.to_owned()),
        ("written reflection", WRITTEN.to_owned()),
        ("Instagram reflection", INSTAGRAM.to_owned()),
        ("final reflection", FINAL.to_owned()),
        ("student's Ladok UID", student_uid.to_owned()),
        ("the recording's SHA-256", upload.to_owned()),
        ("client address", CLIENT_ADDRESS.to_owned()),
        ("Ladok's student UID", FakeLadok::student_uid(&digits)),
    ];
    for link in LINKS {
        values.push(("Instagram link", link.to_owned()));
        let code = link.trim_end_matches('/').rsplit('/').next().unwrap();
        values.push(("Instagram post code", code.to_owned()));
    }
    for t in tokens {
        values.push(("bearer token", (*t).to_owned()));
        values.push((
            "bearer token signature",
            t.rsplit('.').next().unwrap().to_owned(),
        ));
    }
    values
        .into_iter()
        .map(|(what, value)| (what.to_owned(), value))
        .collect()
}

#[tokio::test]
async fn a_whole_flow_at_debug_logs_no_personal_value() {
    let db = support::fresh().await;
    let fake = FakeLadok::start().await.unwrap();
    let ladok = LadokFiles::write(&fake);
    let (exports, media) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut serve = ServeProcess::builder()
        .database(&db.url)
        .env("CIM_LOG", "debug")
        .env("CIM_JWT_DEV_SECRET", SECRET)
        .env("CIM_EXPORT_DIR", exports.path())
        .env("CIM_MEDIA_DIR", media.path())
        .ladok(&ladok)
        .args(["--export-scheduler", "false"])
        .capture_logs()
        .start();
    wait_ready(&serve.base).await;
    let api = Api {
        base: serve.base.clone(),
        http: reqwest::Client::builder()
            .local_address(CLIENT_ADDRESS.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap(),
    };

    // The admin registers a program and assigns its coordinator, who fills its catalog.
    let admin = token(Role::Admin, "admin-logtest");
    let program = api
        .ok(
            "/programs",
            &admin,
            json!({"name": "Bachelor programme in Log Hygiene", "code": "loghygiene"}),
        )
        .await;
    let program_id = program["id"].as_str().unwrap().to_owned();
    api.ok(
        &format!("/programs/{program_id}/coordinators"),
        &admin,
        json!({"staff": COORDINATOR}),
    )
    .await;
    let coordinator = token(Role::Coordinator, COORDINATOR);
    let items = ["harbour-kitchen", "tandem-language", "global-film-club"];
    for item in items {
        api.ok(
            &format!("/programs/{program_id}/catalog"),
            &coordinator,
            json!({"item": item, "name": format!("Catalog item {item}")}),
        )
        .await;
    }

    // The student opens a portfolio and logs three activities.
    let student_uid = Uuid::now_v7().to_string();
    let student = token(Role::Student, &student_uid);
    let opened = api
        .ok(
            &format!("/programs/{program_id}/portfolios"),
            &student,
            json!({
                "student_uid": student_uid,
                "identity_number": IDENTITY_NUMBER,
                "given_names": GIVEN_NAMES,
                "family_name": FAMILY_NAME,
                "email": EMAIL,
                "expected_completion": today() + TimeDelta::days(365),
            }),
        )
        .await;
    let p = opened["view"]["portfolio_id"].as_str().unwrap().to_owned();
    let mut activities = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ended = today() - TimeDelta::days(30 - 5 * i as i64);
        let view = api
            .ok(
                &format!("/portfolios/{p}/activities"),
                &student,
                json!({
                    "item": item,
                    "started_on": ended - TimeDelta::days(2),
                    "ended_on": ended,
                    "description": DESCRIPTION,
                }),
            )
            .await;
        let id = view["view"]["activities"][i]["activity_id"]
            .as_str()
            .unwrap()
            .to_owned();
        activities.push(id);
    }

    // A written reflection, an oral one with its uploaded recording, an Instagram report.
    let reflection = |i: usize| format!("/portfolios/{p}/activities/{}/reflection", activities[i]);
    api.ok(
        &reflection(0),
        &student,
        json!({"format": "written", "text": prose(WRITTEN, 1000)}),
    )
    .await;
    let (status, upload) = api
        .send(
            api.http
                .post(format!("{}/portfolios/{p}/media", api.base))
                .bearer_auth(&student)
                .body(recordings::wav(150)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{upload}");
    api.ok(
        &reflection(1),
        &student,
        json!({"format": "oral", "media_sha256": upload["sha256"]}),
    )
    .await;
    api.ok(
        &reflection(2),
        &student,
        json!({"format": "instagram", "links": LINKS, "text": prose(INSTAGRAM, 500)}),
    )
    .await;
    for i in 0..3 {
        api.ok(
            &format!("{}/approve", reflection(i)),
            &coordinator,
            json!({}),
        )
        .await;
    }
    // The final reflection waits for a coordinator to confirm the expected completion.
    api.ok(
        &format!("/portfolios/{p}/expected-completion/confirm"),
        &coordinator,
        json!({}),
    )
    .await;
    api.ok(
        &format!("/portfolios/{p}/final-reflection"),
        &student,
        json!({"format": "written", "text": prose(FINAL, 3000)}),
    )
    .await;
    api.ok(
        &format!("/portfolios/{p}/final-reflection/approve"),
        &coordinator,
        json!({}),
    )
    .await;
    api.ok(&format!("/portfolios/{p}/application"), &student, json!({}))
        .await;
    let approved = api
        .ok(
            &format!("/portfolios/{p}/application/approve"),
            &coordinator,
            json!({}),
        )
        .await;
    assert_eq!(approved["view"]["phase"], "certified", "{approved}");
    // Reads of both sides, so the read paths log too.
    let (status, _) = api.get(&format!("/portfolios/{p}"), &student).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api
        .get(&format!("/portfolios/{p}/history"), &coordinator)
        .await;
    assert_eq!(status, StatusCode::OK);

    // The registrar runs the export, which delivers to Ladok, and downloads every file. First the
    // approval must be readable by the export's tailing read, which a transaction open in another
    // test's database can hold back for a moment.
    support::settle(&EventStore::new(db.pool.clone(), cim::log::upcasters())).await;
    let registrar = token(Role::Registrar, "registrar-logtest");
    let run = api.ok("/exports/run", &registrar, json!({})).await;
    assert_eq!(run["delivered"], 1, "{run}");
    assert_eq!(fake.merits().len(), 1);
    let batch = run["completed"][0].as_str().unwrap().to_owned();
    let (status, detail) = api
        .get(&format!("/exports/batches/{batch}"), &registrar)
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    let files = detail["files"].as_array().unwrap();
    assert!(files.len() >= 2, "{detail}");
    for file in files {
        let name = file["name"].as_str().unwrap();
        let response = api
            .http
            .get(format!("{}/exports/batches/{batch}/files/{name}", api.base))
            .bearer_auth(&registrar)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        let _ = response.bytes().await.unwrap();
    }

    // Error paths: a token signed with another secret, a portfolio that does not exist, a refusal.
    let forged = cim::http::auth::dev_token(&cim::http::auth::DevToken {
        secret: "not-the-secret-of-this-server-0123456789",
        issuer: cim::http::auth::DEFAULT_ISSUER,
        audience: cim::http::auth::DEFAULT_AUDIENCE,
        role: Role::Student,
        subject: &student_uid,
        programs: vec![],
        now: Utc::now(),
        ttl: TimeDelta::minutes(10),
        profile: Default::default(),
    })
    .unwrap();
    let (status, _) = api.get(&format!("/portfolios/{p}"), &forged).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = api
        .get(&format!("/portfolios/{}", Uuid::now_v7()), &student)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, refused) = api
        .post(
            &format!("/programs/{program_id}/portfolios"),
            &student,
            json!({
                "student_uid": student_uid,
                "identity_number": "19890714-3287",
                "given_names": GIVEN_NAMES,
                "family_name": FAMILY_NAME,
                "email": EMAIL,
                "expected_completion": today() + TimeDelta::days(365),
            }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");

    // Stopped first, so the shutdown is in the log too (`wait` collects its last lines).
    serve.signal("TERM");
    assert!(serve.wait(std::time::Duration::from_secs(60)).success());
    let logs = without_colours(&serve.logs());
    // Not vacuous: the log is the debug log of this flow, from start to stop, outbound calls included.
    assert!(logs.contains("cim serve started"), "{logs}");
    assert!(logs.contains("cim serve stopped"), "{logs}");
    let requests = logs
        .lines()
        .filter(|l| l.contains("request finished"))
        .count();
    assert!(requests >= 30, "only {requests} request lines:\n{logs}");
    assert!(logs.contains("route=\"/exports/run\""), "{logs}");
    assert!(
        logs.lines()
            .any(|l| l.contains("DEBUG") && l.contains("reqwest::connect")),
        "no debug line of the Ladok client:\n{logs}"
    );

    let tokens = [
        admin.as_str(),
        coordinator.as_str(),
        student.as_str(),
        registrar.as_str(),
        forged.as_str(),
    ];
    let mut leaks = Vec::new();
    let recording = upload["sha256"].as_str().unwrap();
    for (what, value) in personal_values(&student_uid, recording, &tokens) {
        let needle = value.to_lowercase();
        for line in logs.lines() {
            if line.to_lowercase().contains(&needle) {
                leaks.push(format!("{what} ({value}) in: {line}"));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "personal data in the log:\n{}",
        leaks.join("\n")
    );
    db.drop().await;
}
