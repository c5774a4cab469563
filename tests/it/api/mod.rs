//! The web API over real HTTP against a real PostgreSQL: a student's whole path, bad input, bad
//! tokens, idempotency and `If-Match`. Who may call which route: `tests/it/authorisation/`.

use crate::support;
use crate::support::server::serve;
use cim::log;

use support::auth::{SECRET, dev_verifier, token};

use chrono::{TimeDelta, Utc};
use cim::domain::ProgramId;
use cim::http::auth::{
    AuthLimitSettings, AuthSettings, DEFAULT_AUDIENCE, DEFAULT_ISSUER, Role, Verifier,
};
use cim::http::{AppState, route_list};
use cim::store::EventStore;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use support::flow::{activity, today};
use support::http::{Answer, get, open_portfolio, post, send};
use support::texts;
use uuid::Uuid;

mod bodies;
mod commands;
mod journey;
mod openapi;
mod tokens;

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
    let store = EventStore::new(db.pool.clone(), log::upcasters());
    let staffed = support::staffed_programs(&store, &[ANNA, BERT]).await;
    let (a, b) = (staffed[0], staffed[1]);
    // Off: the tests of bad tokens fail more often from one address than the limit allows. The
    // limit has tests of its own (tests/it/auth_limit.rs).
    let state = AppState::new(db.pool.clone())
        .with_verifier(verifier)
        .with_auth_limit(AuthLimitSettings::off());
    let base = serve(state).await;
    App {
        base,
        http: reqwest::Client::new(),
        db,
        a,
        b,
    }
}

impl App {
    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        send(request).await
    }

    async fn get(&self, path: &str, token: &str) -> Answer {
        get(&self.http, &self.base, path, token).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        post(&self.http, &self.base, path, token, &body).await
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
        let (portfolio, _, student) = open_portfolio(&self.http, &self.base, program).await;
        (portfolio, student)
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

fn last_activity_id(portfolio: &Value) -> String {
    let activities = portfolio["view"]["activities"].as_array().unwrap();
    activities.last().unwrap()["activity_id"]
        .as_str()
        .unwrap()
        .to_owned()
}
