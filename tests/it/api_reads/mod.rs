//! The read routes of the web API over real HTTP, with the projection runner keeping the read
//! models: review queues, the audit (history, CSV, time travel, the program log with cursors),
//! lists of portfolios, statistics, the registrar's certificates and `/metrics`.

use crate::support;

use support::auth::token;
use support::server::{COORDINATORS, TestServer};

use chrono::{TimeDelta, Utc};
use cim::domain::ProgramId;
use cim::http::auth::Role;
use cim::projections::Scope;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use support::flow::today;
use support::http::{Answer, get, open_portfolio, post};
use support::texts;
use uuid::Uuid;

mod audit;
mod pages;
mod statistics;

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

impl App {
    async fn get(&self, path: &str, token: &str) -> Answer {
        get(&self.http, &self.base, path, token).await
    }

    /// A GET that must answer 200.
    async fn read(&self, path: &str, token: &str) -> Answer {
        let answer = self.get(path, token).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "GET {path}: {}",
            answer.text()
        );
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
        let answer = post(&self.http, &self.base, path, token, &body).await;
        let (status, text) = (answer.status, answer.text());
        assert!(status.is_success(), "POST {path} answered {status}: {text}");
        assert!(
            !answer.body.is_null(),
            "POST {path} answered no JSON: {text}"
        );
        answer.body
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
        open_portfolio(&self.http, &self.base, program).await
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
    let mut reader = csv::Reader::from_reader(answer.bytes.as_slice());
    let header = reader.headers().unwrap().clone();
    assert_eq!(&header[0], "position");
    assert_eq!(&header[2], "event_type");
    reader.records().map(Result::unwrap).collect()
}
