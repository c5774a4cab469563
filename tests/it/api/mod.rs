//! The web API over real HTTP against a real PostgreSQL: a student's whole path, bad input, bad
//! tokens, idempotency and `If-Match`. Who may call which route: `tests/authorisation/`.

use crate::support;

use support::auth::{SECRET, dev_verifier, token};

use chrono::{NaiveDate, TimeDelta, Utc};
use cim::app::{self};
use cim::domain::ProgramId;
use cim::http::auth::{
    AuthLimitSettings, AuthSettings, DEFAULT_AUDIENCE, DEFAULT_ISSUER, Role, Verifier,
};
use cim::http::{AppState, route_list, router};
use cim::store::EventStore;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use support::texts;
use uuid::Uuid;

const ANNA: &str = "coord-anna";
const BERT: &str = "coord-bert";

struct App {
    base: String,
    http: reqwest::Client,
    db: support::TestDb,
    /// Program A (coordinated by Anna) and program B (by Bert).
    a: ProgramId,
    b: ProgramId,
}

/// Starts the real router on port 0 against a fresh database with the pilot programs seeded,
/// verifying tokens with the development secret.
async fn spawn_app() -> App {
    spawn_app_with(dev_verifier()).await
}

async fn spawn_app_with(verifier: Verifier) -> App {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), app::upcasters());
    let staffed = support::staffed_programs(&store, &[ANNA, BERT]).await;
    let (a, b) = (staffed[0], staffed[1]);
    // Off: the tests of bad tokens fail more often from one address than the limit allows. The
    // limit has tests of its own (tests/auth_limit.rs).
    let state = AppState::new(db.pool.clone())
        .with_verifier(verifier)
        .with_auth_limit(AuthLimitSettings::off());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    App {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        db,
        a,
        b,
    }
}

/// One answer: status, headers, JSON body (`Null` when the body is not JSON).
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    fn etag(&self) -> String {
        self.headers["etag"].to_str().unwrap().to_owned()
    }

    fn is_problem(&self) -> bool {
        self.headers
            .get("content-type")
            .is_some_and(|v| v == "application/problem+json")
            && !self.code().is_empty()
            && self.body["status"] == self.status.as_u16()
    }
}

impl App {
    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str, token: &str) -> Answer {
        self.send(
            self.http
                .get(format!("{}{path}", self.base))
                .bearer_auth(token),
        )
        .await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .bearer_auth(token)
                .json(&body),
        )
        .await
    }

    /// A POST that must succeed; returns the body.
    async fn ok(&self, path: &str, token: &str, body: Value) -> Value {
        let answer = self.post(path, token, body).await;
        assert!(
            answer.status.is_success(),
            "POST {path} answered {}: {}",
            answer.status,
            answer.body
        );
        answer.body
    }

    /// Logs three activities on different catalog items; returns their ids.
    async fn log_three(&self, p: &str, student: &str) -> Vec<String> {
        let mut ids = Vec::new();
        for (i, item) in ["tedx", "language-cafe", "student-ambassador"]
            .iter()
            .enumerate()
        {
            let view = self
                .ok(
                    &format!("/portfolios/{p}/activities"),
                    student,
                    activity(item, 10 + i as i64),
                )
                .await;
            ids.push(last_activity_id(&view));
        }
        ids
    }

    /// Opens a portfolio in `program` for a new student; returns (portfolio id, student token).
    async fn open(&self, program: ProgramId) -> (String, String) {
        let uid = Uuid::now_v7().to_string();
        let student = token(Role::Student, &uid);
        let answer = self
            .post(
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
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        (
            answer.body["view"]["portfolio_id"]
                .as_str()
                .unwrap()
                .to_owned(),
            student,
        )
    }

    async fn events(&self, portfolio: &str, event_type: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = $2")
            .bind(format!("portfolio-{portfolio}"))
            .bind(event_type)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn activity(item: &str, days_ago: i64) -> Value {
    json!({
        "item": item,
        "started_on": today() - TimeDelta::days(days_ago + 2),
        "ended_on": today() - TimeDelta::days(days_ago),
        "description": "Two evenings a week with students from abroad.",
    })
}

fn last_activity_id(portfolio: &Value) -> String {
    let activities = portfolio["view"]["activities"].as_array().unwrap();
    activities.last().unwrap()["activity_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_student_goes_from_enrolment_to_an_approved_certificate_over_http() {
    let app = spawn_app().await;
    let anna = token(Role::Coordinator, ANNA);
    let (p, student) = app.open(app.a).await;

    let program = app.get(&format!("/programs/{}", app.a), &student).await;
    assert_eq!(program.status, StatusCode::OK);
    assert_eq!(program.body["catalog"].as_array().unwrap().len(), 13);

    let mut ids = Vec::new();
    for (i, item) in ["language-cafe", "tedx", "course-in-global-health"]
        .iter()
        .enumerate()
    {
        let view = app
            .ok(
                &format!("/portfolios/{p}/activities"),
                &student,
                activity(item, 30 - 5 * i as i64),
            )
            .await;
        ids.push(last_activity_id(&view));
    }

    // A reflection outside its band is refused with the measured value and the band.
    let short = app
        .post(
            &format!("/portfolios/{p}/activities/{}/reflection", ids[0]),
            &student,
            json!({"format": "written", "text": texts::english(642)}),
        )
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(short.code(), "reflection_word_count_out_of_band");
    assert_eq!(short.body["field"], "text");
    assert!(short.body["detail"].as_str().unwrap().contains("642"));

    for id in &ids {
        app.ok(
            &format!("/portfolios/{p}/activities/{id}/reflection"),
            &student,
            json!({"format": "written", "text": texts::english(1000)}),
        )
        .await;
    }

    // The coordinator returns one with feedback; the student resubmits; all three are approved.
    let returned = app
        .ok(
            &format!("/portfolios/{p}/activities/{}/reflection/return", ids[1]),
            &anna,
            json!({"feedback": "Please say more about what you will take with you."}),
        )
        .await;
    assert_eq!(returned["view"]["activities"][1]["status"], "returned");
    let review = &returned["view"]["activities"][1]["attempts"][0]["review"];
    assert_eq!(review["outcome"], "returned");
    assert_eq!(review["by"], ANNA);
    assert_eq!(
        returned["personal"]["activities"][1]["attempts"][0]["feedback"],
        "Please say more about what you will take with you."
    );
    app.ok(
        &format!("/portfolios/{p}/activities/{}/reflection/resubmit", ids[1]),
        &student,
        json!({"format": "oral", "link": "https://play.ki.se/media/0_resubmitted", "duration_s": 170}),
    )
    .await;
    for id in &ids {
        app.ok(
            &format!("/portfolios/{p}/activities/{id}/reflection/approve"),
            &anna,
            json!({}),
        )
        .await;
    }

    // The final reflection waits for a coordinator to confirm the expected completion.
    app.ok(
        &format!("/portfolios/{p}/expected-completion/confirm"),
        &anna,
        json!({}),
    )
    .await;
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
    let applied = app
        .ok(&format!("/portfolios/{p}/application"), &student, json!({}))
        .await;
    assert_eq!(applied["view"]["phase"], "applied");
    let approved = app
        .post(
            &format!("/portfolios/{p}/application/approve"),
            &anna,
            json!({}),
        )
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    assert_eq!(approved.body["view"]["phase"], "certified");
    assert_eq!(approved.body["view"]["certificate"]["decided_by"], ANNA);
    assert_eq!(
        approved.body["view"]["certificate"]["activities"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Every attempt is kept, and the read agrees with the command's answer, ETag included.
    let read = app.get(&format!("/portfolios/{p}"), &student).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.etag(), approved.etag());
    assert_eq!(read.etag(), format!("\"{}\"", read.body["version"]));
    assert_eq!(
        read.body["view"]["activities"][1]["attempts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(read.body, approved.body);
    app.db.drop().await;
}

#[tokio::test]
async fn every_body_refuses_malformed_json_wrong_types_unknown_fields_and_oversize() {
    let app = spawn_app().await;
    let admin = token(Role::Admin, "admin-1");
    let anna = token(Role::Coordinator, ANNA);
    let (p, student) = app.open(app.a).await;
    let view = app
        .ok(
            &format!("/portfolios/{p}/activities"),
            &student,
            activity("tedx", 10),
        )
        .await;
    let act = last_activity_id(&view);
    let a = app.a;
    // (path, caller, a valid body to break).
    let bodies: Vec<(String, &str, Value)> = vec![
        (
            "/programs".into(),
            &admin,
            json!({"name": "Nursing", "code": "nursing"}),
        ),
        (
            format!("/programs/{a}/coordinators"),
            &admin,
            json!({"staff": "x"}),
        ),
        (
            format!("/programs/{a}/coordinators/unassign"),
            &admin,
            json!({"staff": "x"}),
        ),
        (
            format!("/programs/{a}/catalog"),
            &anna,
            json!({"item": "new-item", "name": "New"}),
        ),
        (
            format!("/programs/{a}/catalog/tedx/rename"),
            &anna,
            json!({"name": "TEDx KI"}),
        ),
        (format!("/programs/{a}/rules"), &anna, json!({"rules": {}})),
        (
            format!("/programs/{a}/portfolios"),
            &student,
            json!({"student_uid": Uuid::now_v7(), "identity_number": "x", "given_names": "a",
                   "family_name": "b", "email": "c", "expected_completion": "2030-01-01"}),
        ),
        (
            format!("/portfolios/{p}/expected-completion"),
            &anna,
            json!({"expected_completion": "2030-01-01", "reason": "r"}),
        ),
        (
            format!("/portfolios/{p}/expected-completion/proposal"),
            &student,
            json!({"expected_completion": "2030-01-01", "reason": "r"}),
        ),
        (
            format!("/portfolios/{p}/expected-completion/proposal/accept"),
            &anna,
            json!({"reason": "r"}),
        ),
        (
            format!("/portfolios/{p}/expected-completion/proposal/decline"),
            &anna,
            json!({"reason": "r"}),
        ),
        (
            format!("/portfolios/{p}/activities"),
            &student,
            activity("tedx", 3),
        ),
        (
            format!("/portfolios/{p}/activities/{act}/reflection"),
            &student,
            json!({"format": "written", "text": "t"}),
        ),
        (
            format!("/portfolios/{p}/activities/{act}/reflection/resubmit"),
            &student,
            json!({"format": "written", "text": "t"}),
        ),
        (
            format!("/portfolios/{p}/activities/{act}/reflection/return"),
            &anna,
            json!({"feedback": "f"}),
        ),
        (
            format!("/portfolios/{p}/final-reflection"),
            &student,
            json!({"format": "written", "text": "t"}),
        ),
        (
            format!("/portfolios/{p}/final-reflection/resubmit"),
            &student,
            json!({"format": "written", "text": "t"}),
        ),
        (
            format!("/portfolios/{p}/final-reflection/return"),
            &anna,
            json!({"feedback": "f"}),
        ),
        (
            format!("/portfolios/{p}/extensions"),
            &anna,
            json!({"until": "2030-01-01", "reason": "r"}),
        ),
        (
            format!("/portfolios/{p}/application/reject"),
            &anna,
            json!({"reason": "r"}),
        ),
        (
            format!("/portfolios/{p}/revocation"),
            &anna,
            json!({"reason": "r"}),
        ),
        (
            format!("/students/{}/erasure", Uuid::now_v7()),
            &admin,
            json!({"reason": "r"}),
        ),
    ];
    let url = |path: &str| format!("{}{path}", app.base);
    for (path, caller, valid) in &bodies {
        let raw = |body: String| {
            app.http
                .post(url(path))
                .bearer_auth(caller)
                .header("content-type", "application/json")
                .body(body)
        };
        let malformed = app.send(raw("{\"name\": ".into())).await;
        assert_eq!(malformed.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(malformed.is_problem(), "{path}: {malformed:?}");
        assert_eq!(malformed.code(), "malformed_json", "{path}");

        let mut unknown = valid.clone();
        unknown["surprise"] = json!(1);
        let answer = app.post(path, caller, unknown).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert!(answer.is_problem(), "{path}");
        assert_eq!(answer.code(), "unknown_field", "{path}");
        assert_eq!(answer.body["field"], "surprise", "{path}");

        // The first field of the valid body, given the wrong type.
        let (first, _) = valid.as_object().unwrap().iter().next().unwrap();
        let mut wrong = valid.clone();
        wrong[first] = json!([1, 2]);
        let answer = app.post(path, caller, wrong).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {:?}",
            answer
        );
        assert!(answer.is_problem(), "{path}");
        assert!(!answer.body["detail"].as_str().unwrap().is_empty());

        let huge = app
            .send(raw(format!("{{\"x\": \"{}\"}}", "a".repeat(300 * 1024))))
            .await;
        assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert!(huge.is_problem(), "{path}");

        let text = app
            .send(
                app.http
                    .post(url(path))
                    .bearer_auth(caller)
                    .header("content-type", "text/plain")
                    .body(valid.to_string()),
            )
            .await;
        assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{path}");
    }
    assert_eq!(
        bodies.len(),
        body_routes(),
        "a route with a body is missing here"
    );

    // Bad path values, unknown routes and wrong methods are problems too.
    let bad = app.get("/portfolios/not-a-uuid", &student).await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "invalid_path_parameter")
    );
    assert_eq!(bad.body["field"], "portfolio_id");
    let none = app.get("/nowhere", &student).await;
    assert_eq!(
        (none.status, none.is_problem()),
        (StatusCode::NOT_FOUND, true)
    );
    let method = app
        .send(app.http.delete(url(&format!("/portfolios/{p}"))))
        .await;
    assert_eq!(
        (method.status, method.is_problem()),
        (StatusCode::METHOD_NOT_ALLOWED, true)
    );
    app.db.drop().await;
}

/// How many routes take a JSON body (as the authorisation table says).
fn body_routes() -> usize {
    support::routes::TABLE.iter().filter(|row| row.2).count()
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_is_not_cached() {
    let app = spawn_app().await;
    let (p, student) = app.open(app.a).await;
    let answers = [
        app.get(&format!("/portfolios/{p}"), &student).await,
        app.get(&format!("/portfolios/{p}"), "not-a-token").await,
        app.get("/no/such/route", &student).await,
        app.send(app.http.get(format!("{}/healthz", app.base)))
            .await,
    ];
    for answer in &answers {
        let h = &answer.headers;
        let status = answer.status;
        assert_eq!(h["x-content-type-options"], "nosniff", "{status}");
        assert_eq!(h["x-frame-options"], "DENY", "{status}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{status}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'none'"),
            "{status}"
        );
        assert_eq!(h["cache-control"], "no-store", "{status}");
    }
    app.db.drop().await;
}

#[tokio::test]
async fn bad_tokens_are_401_with_a_bearer_challenge() {
    let app = spawn_app().await;
    let (p, student) = app.open(app.a).await;
    let uid = {
        let v = app.get(&format!("/portfolios/{p}"), &student).await;
        v.body["view"]["student_uid"].as_str().unwrap().to_owned()
    };
    let now = Utc::now().timestamp();
    let claims = |iss: &str, aud: &str, exp: i64, nbf: i64| json!({"sub": uid, "groups": ["cim-student"], "iss": iss, "aud": aud, "exp": exp, "nbf": nbf, "iat": now});
    let sign = |claims: Value, secret: &str| {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let good = claims(DEFAULT_ISSUER, DEFAULT_AUDIENCE, now + 600, now);
    let payload = sign(good.clone(), SECRET)
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    let cases = [
        (
            "expired",
            sign(
                claims(DEFAULT_ISSUER, DEFAULT_AUDIENCE, now - 600, now - 1200),
                SECRET,
            ),
            "token_expired",
        ),
        (
            "not yet valid",
            sign(
                claims(DEFAULT_ISSUER, DEFAULT_AUDIENCE, now + 1200, now + 600),
                SECRET,
            ),
            "token_not_yet_valid",
        ),
        (
            "wrong issuer",
            sign(claims("evil", DEFAULT_AUDIENCE, now + 600, now), SECRET),
            "token_issuer",
        ),
        (
            "wrong audience",
            sign(claims(DEFAULT_ISSUER, "other", now + 600, now), SECRET),
            "token_audience",
        ),
        (
            "bad signature",
            sign(good.clone(), "not-the-secret-but-long-enough-0123456789"),
            "token_signature",
        ),
        (
            "alg none",
            format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}."),
            "token_algorithm",
        ),
        ("garbage", "abc.def".to_owned(), "token_malformed"),
    ];
    // The well-signed token works, so each refusal below is about the one thing changed.
    assert_eq!(
        app.get(&format!("/portfolios/{p}"), &sign(good, SECRET))
            .await
            .status,
        StatusCode::OK
    );
    for (what, bad, code) in cases {
        let answer = app.get(&format!("/portfolios/{p}"), &bad).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(answer.code(), code, "{what}");
        assert!(answer.is_problem(), "{what}");
        let challenge = answer.headers["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{what}");
    }
    let missing = app
        .send(app.http.get(format!("{}/portfolios/{p}", app.base)))
        .await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::UNAUTHORIZED, "token_missing")
    );
    assert!(missing.headers.contains_key("www-authenticate"));
    app.db.drop().await;
}

#[tokio::test]
async fn a_retried_command_answers_the_same_and_a_stale_if_match_is_412() {
    let app = spawn_app().await;
    let (p, student) = app.open(app.a).await;
    let path = format!("{}/portfolios/{p}/activities", app.base);
    let log = |key: &str, if_match: Option<&str>| {
        let mut request = app
            .http
            .post(&path)
            .bearer_auth(&student)
            .header("idempotency-key", key)
            .header("x-request-id", "0190a5f2-7c4e-7d1a-9b3e-2f1c0d9e8a77")
            .json(&activity("tedx", 5));
        if let Some(v) = if_match {
            request = request.header("if-match", v);
        }
        request
    };
    let first = app.send(log("retry-me", Some("\"1\""))).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.etag(), "\"2\"");
    assert_eq!(
        first.headers["x-request-id"],
        "0190a5f2-7c4e-7d1a-9b3e-2f1c0d9e8a77"
    );
    // The retry (with the If-Match of the first attempt) gets the first answer, not a 412 or a
    // "repeated activity" refusal, and nothing new is written.
    let retry = app.send(log("retry-me", Some("\"1\""))).await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
    assert_eq!(retry.body, first.body);
    assert_eq!(retry.etag(), first.etag());
    assert_eq!(app.events(&p, "ActivityLogged").await, 1);
    let correlation: Uuid = sqlx::query_scalar(
        "SELECT correlation_id FROM events WHERE stream_id = $1 AND event_type = 'ActivityLogged'",
    )
    .bind(format!("portfolio-{p}"))
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        correlation.to_string(),
        "0190a5f2-7c4e-7d1a-9b3e-2f1c0d9e8a77"
    );

    // The same key with another body is refused (IETF Idempotency-Key draft) instead of answering
    // with the first request's outcome as if this one had been carried out, and nothing is stored.
    let changed = app
        .send(
            app.http
                .post(&path)
                .bearer_auth(&student)
                .header("idempotency-key", "retry-me")
                .json(&activity("bip", 5)),
        )
        .await;
    assert_eq!(
        (changed.status, changed.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
        "{}",
        changed.body
    );
    assert!(changed.is_problem());
    assert_eq!(changed.body["field"], "Idempotency-Key");
    assert_eq!(app.events(&p, "ActivityLogged").await, 1);
    // The first body still gets its answer.
    let again = app.send(log("retry-me", Some("\"1\""))).await;
    assert_eq!(again.body, first.body);

    // Another key is another command: refused by the rules (the same item twice), not deduplicated.
    let other = app.send(log("another-key", None)).await;
    assert_eq!(other.code(), "repeated_catalog_item");

    // A new command that names an old version is refused with 412 and writes nothing.
    let propose = json!({"expected_completion": today() + TimeDelta::days(400), "reason": "Placement moved."});
    let stale = app
        .send(
            app.http
                .post(format!(
                    "{}/portfolios/{p}/expected-completion/proposal",
                    app.base
                ))
                .bearer_auth(&student)
                .header("if-match", "\"1\"")
                .json(&propose),
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.code(), "version_mismatch");
    assert_eq!(app.events(&p, "ExpectedCompletionProposed").await, 0);
    let current = app
        .send(
            app.http
                .post(format!(
                    "{}/portfolios/{p}/expected-completion/proposal",
                    app.base
                ))
                .bearer_auth(&student)
                .header("if-match", first.etag())
                .json(&propose),
        )
        .await;
    assert_eq!(current.status, StatusCode::OK, "{}", current.body);
    assert_eq!(current.etag(), "\"3\"");
    app.db.drop().await;
}

#[tokio::test]
async fn an_oral_reflection_needs_a_recording_unless_the_rules_allow_a_declared_duration() {
    let app = spawn_app().await;
    let anna = token(Role::Coordinator, ANNA);
    let (p, student) = app.open(app.a).await;
    let acts = app.log_three(&p, &student).await;
    let reflect = |act: &str, body: Value| {
        let path = format!("/portfolios/{p}/activities/{act}/reflection");
        let student = student.clone();
        let app = &app;
        async move { app.post(&path, &student, body).await }
    };

    // A duration alone is no recording.
    let declared = reflect(&acts[0], json!({"format": "oral", "duration_s": 150})).await;
    assert_eq!(
        (declared.status, declared.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "recording_required")
    );
    assert!(declared.is_problem());
    assert!(
        declared.body["detail"].as_str().unwrap().contains("upload"),
        "{}",
        declared.body
    );
    let final_declared = app
        .post(
            &format!("/portfolios/{p}/final-reflection"),
            &student,
            json!({"format": "oral", "duration_s": 400}),
        )
        .await;
    assert_ne!(final_declared.status, StatusCode::OK);
    // A client-typed reference to a file never uploaded to this portfolio is no recording either.
    let typed = reflect(
        &acts[0],
        json!({"format": "oral", "duration_s": 150, "media": {
        "sha256": "ab".repeat(32), "content_type": "video/mp4", "size_bytes": 4096}}),
    )
    .await;
    assert_eq!(
        (typed.code(), typed.body["field"].as_str()),
        ("media_not_uploaded", Some("media"))
    );

    // Links go to the program's video platform only, over https.
    for (link, code) in [
        (
            "https://www.youtube.com/watch?v=abc",
            "video_link_host_not_allowed",
        ),
        ("http://play.ki.se/media/0_abc", "video_link_not_https"),
        ("play.ki.se/media", "video_link_invalid"),
    ] {
        let answer = reflect(
            &acts[0],
            json!({"format": "oral", "link": link, "duration_s": 150}),
        )
        .await;
        assert_eq!(
            (answer.status, answer.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, code),
            "{link}"
        );
        assert_eq!(answer.body["field"], "link");
    }
    let linked = reflect(
        &acts[0],
        json!({"format": "oral", "link": "https://play.ki.se/media/0_abc", "duration_s": 150}),
    )
    .await;
    assert_eq!(linked.status, StatusCode::OK, "{}", linked.body);
    let attempt = &linked.body["view"]["activities"][0]["attempts"][0];
    assert_eq!(
        (
            attempt["recording"].as_str(),
            attempt["duration_measured"].as_bool()
        ),
        (Some("link"), Some(false))
    );
    assert!(
        linked.body["personal"]
            .to_string()
            .contains("https://play.ki.se/media/0_abc"),
        "{}",
        linked.body["personal"]
    );

    // A program that explicitly allows declared durations accepts one, and the coordinator sees it.
    let rules = app
        .post(
            &format!("/programs/{}/rules", app.a),
            &anna,
            json!({"rules": {"allow_declared_duration": true}}),
        )
        .await;
    assert_eq!(rules.status, StatusCode::OK, "{}", rules.body);
    let declared = reflect(&acts[1], json!({"format": "oral", "duration_s": 150})).await;
    assert_eq!(declared.status, StatusCode::OK, "{}", declared.body);
    let seen = app.get(&format!("/portfolios/{p}"), &anna).await;
    let recordings: Vec<&Value> = seen.body["view"]["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["attempts"][0]["recording"])
        .collect();
    assert_eq!(
        recordings,
        [&json!("link"), &json!("declared"), &Value::Null]
    );
    app.db.drop().await;
}

#[tokio::test]
async fn the_date_given_at_enrolment_binds_the_final_reflection_only_once_a_coordinator_confirms_it()
 {
    let app = spawn_app().await;
    let anna = token(Role::Coordinator, ANNA);
    let (p, student) = app.open(app.a).await;
    for act in app.log_three(&p, &student).await {
        app.ok(
            &format!("/portfolios/{p}/activities/{act}/reflection"),
            &student,
            json!({"format": "written", "text": texts::english(1000)}),
        )
        .await;
    }
    let before = app.get(&format!("/portfolios/{p}"), &student).await.body;
    assert_eq!(before["view"]["expected_completion_confirmed"], false);
    assert_eq!(
        before["view"]["next_steps"][0]["code"],
        "await_completion_confirmation"
    );
    let final_reflection = json!({"format": "written", "text": texts::english(3000)});
    let early = app
        .post(
            &format!("/portfolios/{p}/final-reflection"),
            &student,
            final_reflection.clone(),
        )
        .await;
    assert_eq!(
        (early.status, early.code()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "expected_completion_unconfirmed"
        ),
        "{}",
        early.body
    );
    assert!(early.is_problem());

    // The student cannot confirm their own date; the program's coordinator can, once.
    let path = format!("/portfolios/{p}/expected-completion/confirm");
    let own = app.post(&path, &student, json!({})).await;
    assert_eq!(
        (own.status, own.code()),
        (
            StatusCode::FORBIDDEN,
            "expected_completion_set_by_coordinator"
        )
    );
    let bert = app
        .post(&path, &token(Role::Coordinator, BERT), json!({}))
        .await;
    // A coordinator of another program does not see the portfolio at all.
    assert_eq!(bert.status, StatusCode::NOT_FOUND, "{}", bert.body);
    let confirmed = app.ok(&path, &anna, json!({})).await;
    assert_eq!(confirmed["view"]["expected_completion_confirmed"], true);
    assert_eq!(
        confirmed["view"]["expected_completion"],
        before["view"]["expected_completion"]
    );
    let again = app.post(&path, &anna, json!({})).await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "no_change")
    );
    app.ok(
        &format!("/portfolios/{p}/final-reflection"),
        &student,
        final_reflection,
    )
    .await;
    // The log says who confirmed which date.
    let (by, date): (String, String) = sqlx::query_as(
        "SELECT payload->>'by', payload->>'expected_completion' FROM events
         WHERE stream_id = $1 AND event_type = 'ExpectedCompletionConfirmed'",
    )
    .bind(format!("portfolio-{p}"))
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        (by.as_str(), date.as_str()),
        (
            ANNA,
            before["view"]["expected_completion"].as_str().unwrap()
        )
    );
    app.db.drop().await;
}

#[tokio::test]
async fn the_expected_completion_is_set_by_a_coordinator_and_only_proposed_by_the_student() {
    let app = spawn_app().await;
    let anna = token(Role::Coordinator, ANNA);
    let (p, student) = app.open(app.a).await;
    let path = format!("/portfolios/{p}/expected-completion");
    let first = app.get(&format!("/portfolios/{p}"), &student).await.body;
    let date = |v: &Value, key: &str| v["view"][key].as_str().unwrap_or("").to_owned();
    let (start, deadline) = (
        date(&first, "expected_completion"),
        first["view"]["deadline"]["date"].clone(),
    );
    let later = |days: i64| today() + TimeDelta::days(365 + days);

    // The student cannot move the date that binds them, and is told what to do instead.
    let direct = app
        .post(
            &path,
            &student,
            json!({"expected_completion": later(30), "reason": "r"}),
        )
        .await;
    assert_eq!(direct.status, StatusCode::FORBIDDEN);
    assert!(direct.is_problem());
    assert_eq!(direct.code(), "expected_completion_set_by_coordinator");
    assert!(
        direct.body["detail"].as_str().unwrap().contains("propose"),
        "{}",
        direct.body
    );

    // Nothing to decide yet.
    let none = app
        .post(
            &format!("{path}/proposal/accept"),
            &anna,
            json!({"reason": "ok"}),
        )
        .await;
    assert_eq!(
        (none.status, none.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "no_pending_proposal")
    );
    assert!(none.is_problem());

    // A proposal is shown but changes neither the date nor the deadline; a declined one vanishes.
    let proposed = app
        .ok(
            &format!("{path}/proposal"),
            &student,
            json!({"expected_completion": later(30), "reason": "Placement moved."}),
        )
        .await;
    assert_eq!(date(&proposed, "expected_completion"), start);
    assert_eq!(proposed["view"]["deadline"]["date"], deadline);
    assert_eq!(proposed["view"]["completion_proposal"]["proposal"], 1);
    assert_eq!(
        proposed["view"]["completion_proposal"]["expected_completion"],
        later(30).to_string()
    );
    let declined = app
        .ok(
            &format!("{path}/proposal/decline"),
            &anna,
            json!({"reason": "Not in the study plan."}),
        )
        .await;
    assert_eq!(date(&declined, "expected_completion"), start);
    assert!(declined["view"].get("completion_proposal").is_none());
    let again = app
        .post(
            &format!("{path}/proposal/decline"),
            &anna,
            json!({"reason": "again"}),
        )
        .await;
    assert_eq!(again.code(), "no_pending_proposal");

    // An accepted proposal moves the date and the deadline; a coordinator may also set it directly.
    app.ok(
        &format!("{path}/proposal"),
        &student,
        json!({"expected_completion": later(60), "reason": "Placement moved again."}),
    )
    .await;
    let accepted = app
        .ok(
            &format!("{path}/proposal/accept"),
            &anna,
            json!({"reason": "Confirmed."}),
        )
        .await;
    assert_eq!(
        date(&accepted, "expected_completion"),
        later(60).to_string()
    );
    assert_ne!(accepted["view"]["deadline"]["date"], deadline);
    let set = app
        .ok(
            &path,
            &anna,
            json!({"expected_completion": later(90), "reason": "Study plan."}),
        )
        .await;
    assert_eq!(date(&set, "expected_completion"), later(90).to_string());
    let empty_reason = app
        .post(
            &path,
            &anna,
            json!({"expected_completion": later(95), "reason": " "}),
        )
        .await;
    assert_eq!(
        (empty_reason.status, empty_reason.body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("reason"))
    );

    // Every step is in the log with who did it.
    for (event_type, count, role) in [
        ("ExpectedCompletionProposed", 2, "student"),
        ("ExpectedCompletionProposalDeclined", 1, "coordinator"),
        ("ExpectedCompletionProposalAccepted", 1, "coordinator"),
        ("ExpectedCompletionSet", 1, "coordinator"),
    ] {
        let roles: Vec<String> = sqlx::query_scalar(
            "SELECT actor_role::text FROM events WHERE stream_id = $1 AND event_type = $2",
        )
        .bind(format!("portfolio-{p}"))
        .bind(event_type)
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
        assert_eq!(roles, vec![role.to_owned(); count], "{event_type}");
    }
    assert_eq!(app.events(&p, "ExpectedCompletionChanged").await, 0);
    app.db.drop().await;
}

/// A throwaway P-256 key made for this test only, and its public half as an identity provider
/// would publish it.
const ES256_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgH6c9b8vE/iIoyTFy
L9Z0z9SSV2ChK90K6Zf0ywRgTpuhRANCAATbQJOEo/OWIH3V3bupv2I9O1l0sVvC
cOSPkRHtsUr7x3OBZhHY14no1Vd2Y5OOzenPIXl7d8gU6kdRbOcCQvN/
-----END PRIVATE KEY-----
";
const ES256_JWKS: &str = r#"{"keys": [{"kty": "EC", "crv": "P-256", "kid": "test-es256", "alg": "ES256", "use": "sig",
  "x": "20CThKPzliB91d27qb9iPTtZdLFbwnDkj5ER7bFK-8c", "y": "c4FmEdjXiejVV3Zjk47N6c8heXt3yBTqR1Fs5wJC838"}]}"#;

#[tokio::test]
async fn unassigning_a_coordinator_revokes_their_access_at_once_with_a_still_valid_token() {
    let app = spawn_app().await;
    let anna = token(Role::Coordinator, ANNA);
    let admin = token(Role::Admin, "admin-1");
    let (p, _) = app.open(app.a).await;
    let portfolio = format!("/portfolios/{p}");
    let catalog = |program: ProgramId| format!("/programs/{program}/catalog");
    let item = |id: &str| json!({"item": id, "name": "A new activity"});
    assert_eq!(app.get(&portfolio, &anna).await.status, StatusCode::OK);
    app.ok(&catalog(app.a), &anna, item("before-unassign"))
        .await;

    let unassign = format!("/programs/{}/coordinators/unassign", app.a);
    app.ok(&unassign, &admin, json!({"staff": ANNA})).await;
    // The same token, still valid: the program's stream no longer assigns her.
    assert_eq!(
        app.get(&portfolio, &anna).await.status,
        StatusCode::NOT_FOUND
    );
    let refused = app
        .post(&catalog(app.a), &anna, item("after-unassign"))
        .await;
    assert_eq!(
        (refused.status, refused.is_problem()),
        (StatusCode::FORBIDDEN, true)
    );

    // Assigned again, the same token works again; a token whose program groups name another
    // program gives nothing here (and nothing there: that stream does not assign her).
    app.ok(
        &format!("/programs/{}/coordinators", app.a),
        &admin,
        json!({"staff": ANNA}),
    )
    .await;
    assert_eq!(app.get(&portfolio, &anna).await.status, StatusCode::OK);
    let program_b = app.get(&format!("/programs/{}", app.b), &admin).await;
    let claims_b = cim::http::auth::dev_token(&cim::http::auth::DevToken {
        secret: support::auth::SECRET,
        issuer: cim::http::auth::DEFAULT_ISSUER,
        audience: cim::http::auth::DEFAULT_AUDIENCE,
        role: Role::Coordinator,
        subject: ANNA,
        programs: vec![program_b.body["code"].as_str().unwrap().to_owned()],
        now: chrono::Utc::now(),
        ttl: chrono::TimeDelta::minutes(10),
        profile: Default::default(),
    })
    .unwrap();
    assert_eq!(
        app.get(&portfolio, &claims_b).await.status,
        StatusCode::NOT_FOUND
    );
    let other = app.post(&catalog(app.b), &claims_b, item("not-hers")).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn tokens_of_an_identity_provider_are_checked_against_its_jwks() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, ES256_JWKS).unwrap();
    let verifier = Verifier::from_settings(&AuthSettings {
        jwks_file: Some(jwks),
        issuer: "https://idp.example.se".into(),
        audience: DEFAULT_AUDIENCE.into(),
        ..AuthSettings::default()
    })
    .unwrap();
    let app = spawn_app_with(verifier).await;
    let now = Utc::now().timestamp();
    let claims = json!({"sub": "admin-7", "groups": ["cim-admin"], "iss": "https://idp.example.se",
                        "aud": DEFAULT_AUDIENCE, "exp": now + 300, "nbf": now, "iat": now});
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("test-es256".into());
    let key = EncodingKey::from_ec_pem(ES256_PRIVATE_PEM.as_bytes()).unwrap();
    let es256 = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    let path = format!("/programs/{}", app.a);
    assert_eq!(app.get(&path, &es256).await.status, StatusCode::OK);
    // An HS256 token (here signed with the public JWKS as the "secret", the classic algorithm
    // confusion) is refused: this server has no HS256 key.
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(ES256_JWKS.as_bytes()),
    )
    .unwrap();
    let answer = app.get(&path, &confused).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    // A development token is refused too: no development secret is configured.
    let answer = app.get(&path, &token(Role::Admin, "admin-1")).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    app.db.drop().await;
}

#[test]
fn cim_token_signs_with_the_dev_secret_and_refuses_without_one() {
    let run = |secret: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cim"));
        command
            .args(["token", "--role", "coordinator", "--subject", ANNA])
            .args(["--program", "dental"])
            .env_remove("CIM_JWT_DEV_SECRET")
            .env_remove("CIM_JWT_ISSUER")
            .env_remove("CIM_JWT_AUDIENCE");
        if let Some(secret) = secret {
            command.env("CIM_JWT_DEV_SECRET", secret);
        }
        command.output().unwrap()
    };
    let refused = run(None);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("CIM_JWT_DEV_SECRET"), "{message}");
    assert!(refused.stdout.is_empty());

    let signed = run(Some(SECRET));
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let token = String::from_utf8(signed.stdout).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let verifier = dev_verifier();
    let claims: Value = runtime.block_on(verifier.verify(token.trim())).unwrap();
    // The shape an identity provider issues: `sub` and group names, read through the mapping.
    assert_eq!(
        claims["groups"],
        json!(["cim-coordinator", "cim-program-dental"])
    );
    let identity = verifier.claims().identity(&claims).unwrap();
    assert_eq!(
        (identity.role, identity.subject.as_str()),
        (Role::Coordinator, ANNA)
    );
    assert_eq!(
        identity.program_codes,
        Some(BTreeSet::from(["dental".to_owned()]))
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = spawn_app().await;
    let answer = app
        .send(app.http.get(format!("{}/openapi.json", app.base)))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let doc = answer.body;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let mut missing = Vec::new();
    for (method, path) in route_list() {
        let operation = &doc["paths"][path][method.as_str().to_lowercase()];
        if !operation.is_object() {
            missing.push(format!("{method} {path}"));
        }
    }
    assert!(
        missing.is_empty(),
        "routes missing from /openapi.json: {missing:?}"
    );
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        route_list().len(),
        "the document has operations no route serves"
    );
    // Commands document their body, their errors and the bearer scheme.
    let log = &doc["paths"]["/portfolios/{portfolio_id}/activities"]["post"];
    assert!(log["requestBody"].is_object());
    assert!(log["responses"]["422"].is_object());
    assert!(log["responses"]["401"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let gaps = openapi_gaps(&doc);
    assert!(
        gaps.is_empty(),
        "the OpenAPI document is incomplete:\n{}",
        gaps.join("\n")
    );
    app.db.drop().await;
}

/// Routes anyone may call: no bearer token.
const PUBLIC_ROUTES: [&str; 4] = ["/healthz", "/readyz", "/openapi.json", "/metrics"];

/// Everything that makes the document less than complete: path parameters not declared, JSON bodies
/// without a schema or an example, success answers without a schema, references to no schema,
/// objects whose fields are not described, authenticated routes without the bearer requirement.
fn openapi_gaps(doc: &Value) -> Vec<String> {
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut gaps = Vec::new();
    untyped_objects(&doc["components"], "components", &mut gaps);
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let at = format!("{method} {path}");
            untyped_objects(op, &at, &mut gaps);
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            for segment in path.split('/') {
                if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    if !declared.contains(name) {
                        gaps.push(format!("{at}: path parameter {name} not declared"));
                    }
                }
            }
            if let Some(content) = op["requestBody"]["content"].as_object() {
                for (media_type, body) in content.iter().filter(|(t, _)| t.contains("json")) {
                    let named = body["schema"]["$ref"]
                        .as_str()
                        .map(|r| &schemas[ref_name(r)]);
                    let has_example = body.get("example").is_some()
                        || named.is_some_and(|s| s.get("example").is_some());
                    if body.get("schema").is_none() || !has_example {
                        gaps.push(format!("{at}: {media_type} body without schema or example"));
                    }
                }
            }
            let responses = op["responses"].as_object().unwrap();
            if !responses.keys().any(|s| s.starts_with('2')) {
                gaps.push(format!("{at}: no success response"));
            }
            for (status, response) in responses.iter().filter(|(s, _)| s.starts_with('2')) {
                for (media_type, body) in response["content"].as_object().into_iter().flatten() {
                    if media_type.contains("json")
                        && path != "/openapi.json"
                        && body.get("schema").is_none()
                    {
                        gaps.push(format!("{at}: {status} {media_type} without schema"));
                    }
                }
            }
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            if secured == PUBLIC_ROUTES.contains(&path.as_str()) {
                gaps.push(format!(
                    "{at}: bearer requirement {}",
                    if secured {
                        "on a public route"
                    } else {
                        "missing"
                    }
                ));
            }
        }
    }
    let text = doc.to_string();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        if !schemas.contains_key(name) {
            gaps.push(format!("reference to no schema: {name}"));
        }
    }
    gaps
}

fn ref_name(reference: &str) -> &str {
    reference.rsplit('/').next().unwrap()
}

/// Objects that say nothing of their fields (a `value_type = Object` shortcut, say).
fn untyped_objects(value: &Value, at: &str, gaps: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let bare = map.get("type") == Some(&json!("object"))
                && [
                    "properties",
                    "additionalProperties",
                    "oneOf",
                    "allOf",
                    "anyOf",
                ]
                .iter()
                .all(|k| !map.contains_key(*k));
            if bare {
                gaps.push(format!("{at}: an object without described fields"));
            }
            for (key, inner) in map {
                untyped_objects(inner, &format!("{at}/{key}"), gaps);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| untyped_objects(v, at, gaps)),
        _ => {}
    }
}
