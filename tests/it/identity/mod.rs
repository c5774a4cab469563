//! Who a student is, over real HTTP against a real PostgreSQL: one portfolio per student and program
//! (also when twenty opens race), identity numbers in every written form, and personal details from
//! the sign-in token and Ladok rather than the request body (see docs/identity.md).

use crate::support;
use crate::support::server::serve;
use cim::log;

use support::auth::{dev_verifier, student_token_with_profile, token};
use support::flow::enrolment;

use chrono::{TimeDelta, Utc};
use cim::app::{CommandContext, CommandHandler};
use cim::domain::portfolio::{LadokRecord, PortfolioCommand};
use cim::domain::values::IdentityNumber;
use cim::domain::{PortfolioId, ProgramId};
use cim::export::worker::WorkerConfig;
use cim::export::worker::ladok::LadokConfig;
use cim::export::worker::schedule::run_export;
use cim::http::AppState;
use cim::http::auth::{AuthLimitSettings, Role};
use cim::store::{ActorRole, EventStore};
use cim_fake_ladok::FakeLadok;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

mod ladok;

struct App {
    base: String,
    http: reqwest::Client,
    db: support::TestDb,
    program: ProgramId,
    other_program: ProgramId,
}

/// One answer: status and JSON body (`Null` when the body is not JSON).
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    content_type: String,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    fn portfolio_id(&self) -> &str {
        self.body["view"]["portfolio_id"].as_str().unwrap_or("")
    }
}

async fn spawn_app() -> App {
    spawn_app_with_ladok(None).await
}

/// The server, asking Ladok at enrolment when `ladok` is given (as `cim serve` does when Ladok
/// delivery is configured).
async fn spawn_app_with_ladok(ladok: Option<LadokConfig>) -> App {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), log::upcasters());
    let staffed = support::staffed_programs(&store, &["coord-anna", "coord-bert"]).await;
    let mut state = AppState::new(db.pool.clone())
        .with_verifier(dev_verifier())
        .with_auth_limit(AuthLimitSettings::off());
    if let Some(ladok) = ladok {
        let mut exports = WorkerConfig::new(std::env::temp_dir().join("cim-identity-test-exports"));
        exports.ladok = Some(ladok);
        state = state.with_exports(exports);
    }
    let base = serve(state).await;
    App {
        base,
        // Twenty requests at once must really be twenty connections at once.
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(32)
            .build()
            .unwrap(),
        db,
        program: staffed[0],
        other_program: staffed[1],
    }
}

impl App {
    async fn open(&self, program: ProgramId, uid: &str, body: &Value, key: Option<&str>) -> Answer {
        self.open_as(&token(Role::Student, uid), program, body, key)
            .await
    }

    async fn open_as(
        &self,
        bearer: &str,
        program: ProgramId,
        body: &Value,
        key: Option<&str>,
    ) -> Answer {
        let mut request = self
            .http
            .post(format!("{}/programs/{program}/portfolios", self.base))
            .bearer_auth(bearer)
            .json(body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = response.bytes().await.unwrap();
        Answer {
            status,
            content_type,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn opened_events(&self) -> i64 {
        support::count_events(&self.db.pool, "PortfolioOpened").await
    }
}

#[tokio::test]
async fn twenty_racing_opens_give_one_portfolio_and_a_retry_of_the_winner_its_201() {
    let app = spawn_app().await;
    let uid = Uuid::now_v7().to_string();
    let body = enrolment(&uid, "19121212-1212");
    let keys: Vec<String> = (0..20).map(|i| format!("open-{i}")).collect();
    let answers = futures::future::join_all(
        keys.iter()
            .map(|key| app.open(app.program, &uid, &body, Some(key))),
    )
    .await;

    let created: Vec<usize> = (0..answers.len())
        .filter(|&i| answers[i].status == StatusCode::CREATED)
        .collect();
    assert_eq!(created.len(), 1, "exactly one 201: {answers:#?}");
    let winner = created[0];
    let portfolio = answers[winner].portfolio_id().to_owned();
    for (i, answer) in answers.iter().enumerate().filter(|(i, _)| *i != winner) {
        assert_eq!(
            (answer.status, answer.code()),
            (StatusCode::CONFLICT, "portfolio_exists"),
            "open {i}: {}",
            answer.body
        );
        assert_eq!(answer.content_type, "application/problem+json");
        assert_eq!(answer.body["status"], 409);
        assert_eq!(answer.body["portfolio_id"], portfolio.as_str());
        assert!(
            answer.body["detail"]
                .as_str()
                .unwrap()
                .contains("one portfolio per program")
        );
    }
    assert_eq!(app.opened_events().await, 1);

    // The winner's retry (same key, same body) gets its 201 again, with the same portfolio.
    let retry = app
        .open(app.program, &uid, &body, Some(&keys[winner]))
        .await;
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.body);
    assert_eq!(retry.portfolio_id(), portfolio);
    // A later open without a key is told where the portfolio is.
    let later = app.open(app.program, &uid, &body, None).await;
    assert_eq!(later.status, StatusCode::CONFLICT, "{}", later.body);
    assert_eq!(later.body["portfolio_id"], portfolio.as_str());
    assert_eq!(app.opened_events().await, 1);

    // Another program is another portfolio.
    let elsewhere = app.open(app.other_program, &uid, &body, None).await;
    assert_eq!(elsewhere.status, StatusCode::CREATED, "{}", elsewhere.body);
    assert_ne!(elsewhere.portfolio_id(), portfolio);
}

#[tokio::test]
async fn one_identity_number_belongs_to_one_student_until_they_are_erased() {
    let app = spawn_app().await;
    let first = Uuid::now_v7().to_string();
    let second = Uuid::now_v7().to_string();
    let opened = app
        .open(
            app.program,
            &first,
            &enrolment(&first, "19121212-1212"),
            None,
        )
        .await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.body);

    // The same number in another written form (10 digits, `+` for aged 100 or more) is the same number.
    let taken = app
        .open(
            app.program,
            &second,
            &enrolment(&second, "121212+1212"),
            None,
        )
        .await;
    assert_eq!(
        (taken.status, taken.code()),
        (StatusCode::CONFLICT, "identity_number_taken"),
        "{}",
        taken.body
    );
    assert_eq!(taken.content_type, "application/problem+json");
    assert_eq!(taken.body["field"], "identity_number");
    let detail = taken.body["detail"].as_str().unwrap();
    assert!(
        !detail.contains("1212") && !detail.contains(&first),
        "{detail}"
    );
    assert_eq!(app.opened_events().await, 1);
    // The same student may use their number again in another program.
    let again = app
        .open(
            app.other_program,
            &first,
            &enrolment(&first, "191212121212"),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);

    // The index holds a keyed hash, never the number.
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT number_hash FROM identity_numbers")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!String::from_utf8_lossy(&stored[0]).contains("1212"));
    assert!(!hex(&stored[0]).contains("191212121212"));

    // An erasure forgets it: the number is free again.
    let erased = app
        .http
        .post(format!("{}/students/{first}/erasure", app.base))
        .bearer_auth(token(Role::Admin, "admin-1"))
        .json(&json!({"reason": "GDPR case 2026-17"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        erased.status(),
        StatusCode::OK,
        "{}",
        erased.text().await.unwrap()
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM identity_numbers")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
    let now_free = app
        .open(
            app.program,
            &second,
            &enrolment(&second, "121212+1212"),
            None,
        )
        .await;
    assert_eq!(now_free.status, StatusCode::CREATED, "{}", now_free.body);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn every_written_form_is_stored_as_twelve_digits_and_only_real_mistakes_are_refused() {
    let app = spawn_app().await;
    // Five people, each writing their number in another of the accepted forms.
    for (form, stored) in [
        ("811218-9876", "198112189876"),
        ("121212+1212", "191212121212"),
        ("7010632391", "197010632391"),
        ("199001011239", "199001011239"),
        ("20000229\u{2013}1235", "200002291235"),
    ] {
        let uid = Uuid::now_v7().to_string();
        let opened = app
            .open(app.program, &uid, &enrolment(&uid, form), None)
            .await;
        assert_eq!(
            opened.status,
            StatusCode::CREATED,
            "{form}: {}",
            opened.body
        );
        assert_eq!(
            opened.body["personal"]["student"]["identity_number"], stored,
            "{form}"
        );
    }
    for (form, code) in [
        ("811218-9873", "identity_number_check_digit"),
        ("811318-9876", "identity_number_month"),
        ("811218/9876", "identity_number_separator"),
        ("811218-98", "identity_number_length"),
        ("811218-T876", "identity_number_interim"),
    ] {
        let uid = Uuid::now_v7().to_string();
        let refused = app
            .open(app.program, &uid, &enrolment(&uid, form), None)
            .await;
        assert_eq!(
            (refused.status, refused.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, code),
            "{form}: {}",
            refused.body
        );
        assert_eq!(refused.content_type, "application/problem+json");
        assert_eq!(refused.body["field"], "identity_number");
        let detail = refused.body["detail"].as_str().unwrap();
        assert!(
            !detail.contains("9876") && !detail.contains("811218"),
            "{detail}"
        );
    }
    assert_eq!(app.opened_events().await, 5);
}

fn expected_completion() -> Value {
    json!({
        "expected_completion": Utc::now().date_naive() + TimeDelta::days(365),
    })
}
