//! Ladok down for whole export runs, and going down in the middle of one, over the registrar's real
//! HTTP API (router on port 0, projection runner running) against the fake Ladok switched into an
//! outage: batch files are still written once, nothing is delivered or lost while Ladok is down, the
//! registrar's certificate list, single-certificate reads and batch detail say for every certificate
//! why it is still pending, since when and after how many runs; and once Ladok is back the next run
//! delivers each certificate exactly once and the registrar sees it delivered with the reason gone.

use crate::support;
use crate::support::server::serve;

use cim::log;
use support::auth::{dev_verifier, token};
use support::certificates::approve;

use chrono::{DateTime, Utc};
use cim::domain::ids::CertificateId;
use cim::export::worker::{WorkerConfig, batch_folders};
use cim::http::AppState;
use cim::http::auth::Role;
use cim::projections::Scope;
use cim::projections::{self, ProjectionRunner, RunnerHandle};
use cim::store::{Checkpoint, EventStore};
use cim_fake_ladok::{FakeLadok, Outage};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// The registrar's API as `cim serve` runs it: projections running, exports to `dir`, Ladok = the
/// fake.
struct Registrar {
    base: String,
    token: String,
    store: EventStore,
    runner: RunnerHandle,
    http: reqwest::Client,
}

impl Registrar {
    async fn start(db: &support::TestDb, dir: &Path, fake: &FakeLadok) -> Self {
        let store = EventStore::new(db.pool.clone(), log::upcasters());
        let runner =
            ProjectionRunner::start(store.clone(), db.pool.clone(), &db.url, projections::all());
        let mut exports = WorkerConfig::new(dir);
        exports.ladok = Some(fake.config());
        let state = AppState::with_projections(db.pool.clone(), runner.clone())
            .with_verifier(dev_verifier())
            .with_exports(exports);
        let base = serve(state).await;
        Self {
            base,
            token: token(Role::Registrar, "registrar-1"),
            store,
            runner,
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str) -> Value {
        let answer = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let body: Value = answer.json().await.unwrap();
        assert_eq!(status, reqwest::StatusCode::OK, "{method} {path}: {body}");
        body
    }

    /// `POST /exports/run`: (batches completed, files written, delivered, failed).
    async fn run(&self) -> (usize, u64, u64, u64) {
        support::settle(&self.store).await;
        let run = self.call(reqwest::Method::POST, "/exports/run").await;
        (
            run["completed"].as_array().unwrap().len(),
            run["files_written"].as_u64().unwrap(),
            run["delivered"].as_u64().unwrap(),
            run["failed"].as_u64().unwrap(),
        )
    }

    /// Waits until the read models have applied the whole log, then reads every certificate.
    async fn certificates(&self) -> Vec<Value> {
        support::settle(&self.store).await;
        let (transaction_id, position): (i64, i64) = sqlx::query_as(
            "SELECT transaction_id::text::bigint, position FROM events
             ORDER BY transaction_id DESC, position DESC LIMIT 1",
        )
        .fetch_one(self.store.pool())
        .await
        .unwrap();
        let head = Checkpoint {
            transaction_id,
            position,
        };
        self.runner
            .wait_for(Scope::Named("registrar"), head, Duration::from_secs(30))
            .await
            .unwrap();
        let page = self
            .call(reqwest::Method::GET, "/certificates?limit=200")
            .await;
        page["items"].as_array().unwrap().clone()
    }

    async fn certificate(&self, id: &Value) -> Value {
        let id = id.as_str().unwrap();
        self.call(reqwest::Method::GET, &format!("/certificates/{id}"))
            .await
    }

    async fn batches(&self) -> Vec<Value> {
        let page = self.call(reqwest::Method::GET, "/exports/batches").await;
        page["items"].as_array().unwrap().clone()
    }

    async fn batch(&self, id: &Value) -> Value {
        let id = id.as_str().unwrap();
        self.call(reqwest::Method::GET, &format!("/exports/batches/{id}"))
            .await
    }

    async fn stop(self) {
        self.runner.shutdown().await;
    }
}

fn instant(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"))
        .parse()
        .unwrap()
}

/// The merits the fake holds: their external references (our certificate ids), each once.
fn delivered_references(fake: &FakeLadok) -> Vec<String> {
    let mut references: Vec<String> = fake
        .merits()
        .iter()
        .map(|m| FakeLadok::certificate_of(&m.merit).unwrap())
        .collect();
    references.sort();
    references
}

fn ids(certificates: &[CertificateId]) -> Vec<String> {
    let mut ids: Vec<String> = certificates.iter().map(|c| c.to_string()).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ladok_down_for_three_runs_loses_nothing_says_why_for_every_certificate_and_recovers_once()
{
    let db = support::fresh().await;
    let out = tempfile::tempdir().unwrap();
    let fake = FakeLadok::start().await.unwrap();
    let api = Registrar::start(&db, out.path(), &fake).await;
    let mut approved = Vec::new();
    for n in 0..5 {
        approved.push(approve(&api.store, n).await.certificate_id);
    }
    fake.set_outage(Some(Outage::Unavailable));

    // Three runs while Ladok answers every request 503: the batch is written by the first and only
    // the first; each run tries one certificate (with its retries), sees Ladok down and defers the
    // rest to the next run instead of trying them one by one.
    let before = Utc::now();
    let (completed, files, delivered, failed) = api.run().await;
    assert_eq!((completed, delivered, failed), (1, 0, 1));
    assert!(
        files > 5,
        "{files} files: a record file per certificate and more"
    );
    let after_first = Utc::now();
    for _ in 0..2 {
        assert_eq!(api.run().await, (0, 0, 0, 1));
    }
    assert!(fake.merits().is_empty());
    assert!(!fake.requests().is_empty(), "the runs did call Ladok");
    assert_eq!(batch_folders(out.path()).unwrap().len(), 1);

    let certificates = api.certificates().await;
    assert_eq!(certificates.len(), 5);
    let batch_id = certificates[0]["last_batch_id"].clone();
    for c in &certificates {
        assert_eq!(c["export_status"], "exported", "{c}");
        assert_eq!(c["last_batch_id"], batch_id, "{c}");
        assert_eq!(c["ladok_status"], "retrying", "{c}");
        assert_eq!(c["delivery_error"], "unavailable", "{c}");
        let wait = &c["ladok_wait"];
        assert_eq!(wait["reason"], "unavailable", "{c}");
        assert_eq!(
            wait["attempts"], 3,
            "three runs, each failed or deferred it: {c}"
        );
        assert_eq!(wait["next_attempt"], "next_run", "{c}");
        // Since the first run, not moved by the later ones.
        let since = instant(&wait["since"]);
        assert!(before <= since && since <= after_first, "{c}");
        // The single-certificate read says the same.
        assert_eq!(api.certificate(&c["certificate_id"]).await, *c);
    }
    let batches = api.batches().await;
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0]["batch_id"], batch_id);
    assert!(batches[0]["deliveries_settled_at"].is_null());
    let detail = api.batch(&batch_id).await;
    assert_eq!(detail["counts"]["retrying"], 5, "{detail}");
    assert_eq!(detail["counts"]["pending"], 0, "{detail}");
    for item in detail["items"].as_array().unwrap() {
        assert_eq!(item["ladok"], "retrying", "{item}");
        assert_eq!(item["reason"], "unavailable", "{item}");
        assert_eq!(item["attempts"], 3, "{item}");
        let since = instant(&item["waiting_since"]);
        assert!(before <= since && since <= after_first, "{item}");
    }

    // Ladok is back: the next run delivers every certificate once, and a further run nothing.
    fake.set_outage(None);
    assert_eq!(api.run().await, (0, 0, 5, 0));
    assert_eq!(api.run().await, (0, 0, 0, 0));
    assert_eq!(delivered_references(&fake), ids(&approved));
    assert_eq!(
        api.batches().await.len(),
        1,
        "no second batch of the same certificates"
    );
    assert_eq!(batch_folders(out.path()).unwrap().len(), 1);
    for c in api.certificates().await {
        assert_eq!(c["ladok_status"], "delivered", "{c}");
        assert!(c["delivery_error"].is_null(), "{c}");
        assert!(
            c["ladok_wait"].is_null(),
            "the outage's reason is cleared: {c}"
        );
    }
    let detail = api.batch(&batch_id).await;
    assert_eq!(detail["counts"]["delivered"], 5, "{detail}");
    for item in detail["items"].as_array().unwrap() {
        assert!(
            item["reason"].is_null() && item["waiting_since"].is_null(),
            "{item}"
        );
        assert_eq!(item["attempts"], 0, "{item}");
    }
    api.stop().await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ladok_unreachable_mid_run_keeps_what_was_delivered_and_recovery_delivers_the_rest_once() {
    let db = support::fresh().await;
    let out = tempfile::tempdir().unwrap();
    let fake = FakeLadok::start().await.unwrap();
    let api = Registrar::start(&db, out.path(), &fake).await;
    let mut approved = Vec::new();
    for n in 0..4 {
        approved.push(approve(&api.store, 10 + n).await.certificate_id);
    }
    // A delivery is four requests (the student, their merits, the new merit, its attestation): two
    // certificates get through, then Ladok stops answering connections altogether.
    fake.outage_after(8, Outage::Unreachable);
    let (completed, _, delivered, failed) = api.run().await;
    assert_eq!((completed, delivered, failed), (1, 2, 1));
    let first_two: Vec<String> = delivered_references(&fake);
    assert_eq!(first_two.len(), 2);

    let certificates = api.certificates().await;
    let (done, waiting): (Vec<&Value>, Vec<&Value>) = certificates
        .iter()
        .partition(|c| c["ladok_status"] == "delivered");
    assert_eq!(done.len(), 2);
    for c in done {
        assert!(c["ladok_wait"].is_null(), "{c}");
        assert!(first_two.contains(&c["certificate_id"].as_str().unwrap().to_owned()));
    }
    assert_eq!(waiting.len(), 2);
    for c in waiting {
        assert_eq!(c["ladok_status"], "retrying", "{c}");
        assert_eq!(c["ladok_wait"]["reason"], "unavailable", "{c}");
        assert_eq!(c["ladok_wait"]["attempts"], 1, "{c}");
        assert_eq!(c["ladok_wait"]["next_attempt"], "next_run", "{c}");
    }

    fake.set_outage(None);
    assert_eq!(api.run().await, (0, 0, 2, 0));
    assert_eq!(delivered_references(&fake), ids(&approved));
    let references: BTreeSet<String> = delivered_references(&fake).into_iter().collect();
    assert_eq!(references.len(), 4, "each certificate once");
    for c in api.certificates().await {
        assert_eq!(c["ladok_status"], "delivered", "{c}");
        assert!(c["ladok_wait"].is_null(), "{c}");
    }
    api.stop().await;
    db.drop().await;
}
