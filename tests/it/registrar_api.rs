//! The registrar's export API over real HTTP against a real PostgreSQL and the fake Ladok: run an
//! export on demand, list and read the batch, download every file and check it against the
//! manifest, acknowledge, refuse path tricks, refuse every other role, and re-deliver a row Ladok
//! refused once Ladok accepts it.

use crate::support;

use cim::log;
use support::auth::{dev_verifier, token};

use cim::domain::ids::CertificateId;
use cim::export::MANIFEST_FILE_NAME;
use cim::export::worker::WorkerConfig;
use cim::http::AppState;
use cim::http::auth::Role;
use cim::store::EventStore;
use cim_fake_ladok::FakeLadok;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;
use uuid::Uuid;

fn registrar() -> String {
    token(Role::Registrar, "registrar-1")
}

/// Approves a certificate as the command handler records it.
async fn approve(store: &EventStore, n: u32) -> CertificateId {
    support::certificates::approve(store, n as usize)
        .await
        .certificate_id
}

/// Serves the router on port 0 with this export configuration.
async fn serve(pool: sqlx::PgPool, exports: WorkerConfig) -> String {
    let state = AppState::new(pool)
        .with_verifier(dev_verifier())
        .with_exports(exports);
    support::server::serve(state).await
}

fn config(dir: &Path, fake: &FakeLadok) -> WorkerConfig {
    let mut config = WorkerConfig::new(dir);
    config.ladok = Some(fake.config());
    config
}

struct Answer {
    status: StatusCode,
    content_type: String,
    bytes: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
}

async fn call(method: &str, url: &str, token: Option<&str>) -> Answer {
    let http = reqwest::Client::new();
    let mut request = match method {
        "GET" => http.get(url),
        _ => http.post(url),
    };
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.unwrap();
    Answer {
        status: response.status(),
        content_type: response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default(),
        bytes: response.bytes().await.unwrap().to_vec(),
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn run_list_read_download_acknowledge_and_refuse_path_tricks() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), log::upcasters());
    let out = tempfile::tempdir().unwrap();
    let fake = FakeLadok::start().await.unwrap();
    let base = serve(db.pool.clone(), config(out.path(), &fake)).await;
    let reg = registrar();
    let mut approved = Vec::new();
    for n in 0..3 {
        approved.push(approve(&store, n).await);
    }
    support::settle(&store).await;

    let run = call("POST", &format!("{base}/exports/run"), Some(&reg)).await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.json());
    let summary = run.json();
    assert_eq!(summary["delivered"], 3);
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["completed"].as_array().unwrap().len(), 1);
    let batch = summary["completed"][0].as_str().unwrap().to_owned();

    // A second batch, so the list has an order to show and a page to turn.
    approved.push(approve(&store, 3).await);
    support::settle(&store).await;
    let run = call("POST", &format!("{base}/exports/run"), Some(&reg)).await;
    assert_eq!(run.json()["delivered"], 1);
    let second = run.json()["completed"][0].as_str().unwrap().to_owned();

    let list = call("GET", &format!("{base}/exports/batches"), Some(&reg)).await;
    assert_eq!(list.status, StatusCode::OK);
    let items = list.json()["items"].as_array().unwrap().clone();
    let ids: Vec<&str> = items
        .iter()
        .map(|i| i["batch_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [second.as_str(), batch.as_str()], "newest first");
    assert_eq!(items[1]["certificates"], 3);
    assert!(items[1]["completed_at"].is_string());
    let page = call(
        "GET",
        &format!("{base}/exports/batches?limit=1"),
        Some(&reg),
    )
    .await;
    let page = page.json();
    assert_eq!(page["items"][0]["batch_id"], second.as_str());
    let cursor = page["next_cursor"].as_str().unwrap();
    let next = call(
        "GET",
        &format!("{base}/exports/batches?limit=1&cursor={cursor}"),
        Some(&reg),
    )
    .await
    .json();
    assert_eq!(next["items"][0]["batch_id"], batch.as_str());
    let last = call(
        "GET",
        &format!(
            "{base}/exports/batches?limit=1&cursor={}",
            next["next_cursor"].as_str().unwrap()
        ),
        Some(&reg),
    )
    .await
    .json();
    assert_eq!(last["items"].as_array().unwrap().len(), 0);
    assert!(last["next_cursor"].is_null());

    // The batch: files, counts, every item delivered.
    let detail = call(
        "GET",
        &format!("{base}/exports/batches/{batch}"),
        Some(&reg),
    )
    .await;
    assert_eq!(detail.status, StatusCode::OK);
    let detail = detail.json();
    assert_eq!(detail["completed"], true);
    assert_eq!(detail["counts"]["certificates"], 3);
    assert_eq!(detail["counts"]["delivered"], 3);
    assert!(detail["acknowledged_by"].is_null());
    for item in detail["items"].as_array().unwrap() {
        assert_eq!(item["ladok"], "delivered");
        assert!(item["ladok_merit_uid"].is_string());
    }
    let files = detail["files"].as_array().unwrap();
    assert_eq!(files.last().unwrap()["name"], MANIFEST_FILE_NAME);

    // Every file of the manifest downloads with the manifest's hash and its media type.
    let manifest = call(
        "GET",
        &format!("{base}/exports/batches/{batch}/files/{MANIFEST_FILE_NAME}"),
        Some(&reg),
    )
    .await;
    assert_eq!(manifest.status, StatusCode::OK);
    assert_eq!(manifest.content_type, "application/json");
    let listed = manifest.json()["files"].as_array().unwrap().clone();
    assert_eq!(listed.len() + 1, files.len());
    let mut kinds = std::collections::BTreeSet::new();
    for file in &listed {
        let name = file["name"].as_str().unwrap();
        let got = call(
            "GET",
            &format!("{base}/exports/batches/{batch}/files/{name}"),
            Some(&reg),
        )
        .await;
        assert_eq!(got.status, StatusCode::OK, "{name}");
        assert_eq!(hex_sha256(&got.bytes), file["sha256"].as_str().unwrap());
        assert_eq!(got.bytes.len() as u64, file["size"].as_u64().unwrap());
        let want = match name.rsplit_once('.').unwrap().1 {
            "csv" => "text/csv; charset=utf-8",
            "txt" => "text/plain; charset=utf-8",
            "xml" => "application/xml",
            "json" => "application/json",
            other => panic!("unexpected file type {other}"),
        };
        assert_eq!(got.content_type, want, "{name}");
        kinds.insert(want);
    }
    assert!(kinds.contains("text/csv; charset=utf-8"), "{kinds:?}");
    // The manifest's own hash is the one its BatchFileWritten recorded.
    assert_eq!(
        hex_sha256(&manifest.bytes),
        files.last().unwrap()["sha256"].as_str().unwrap()
    );

    // Path tricks and unknown names. The secret sits where a traversal would look.
    std::fs::write(out.path().join("secret.txt"), b"not for download").unwrap();
    for (name, want) in [
        ("..%2F..%2Fetc%2Fpasswd", StatusCode::BAD_REQUEST),
        ("..%2Fsecret.txt", StatusCode::BAD_REQUEST),
        // (A bare `..` or `%2E%2E` segment is resolved by the HTTP client before it is sent.)
        ("..%5C..%5Csecret.txt", StatusCode::BAD_REQUEST),
        ("manifest.json%00", StatusCode::BAD_REQUEST),
        ("manifest.json%0A", StatusCode::BAD_REQUEST),
        ("sub%5Cmanifest.json", StatusCode::BAD_REQUEST),
        ("secret.txt", StatusCode::NOT_FOUND),
        ("MANIFEST.JSON", StatusCode::NOT_FOUND),
        ("manifest.json%20", StatusCode::NOT_FOUND),
        ("nothing.csv", StatusCode::NOT_FOUND),
    ] {
        let got = call(
            "GET",
            &format!("{base}/exports/batches/{batch}/files/{name}"),
            Some(&reg),
        )
        .await;
        assert_eq!(got.status, want, "{name}");
        assert_eq!(got.content_type, "application/problem+json", "{name}");
        assert!(!String::from_utf8_lossy(&got.bytes).contains("not for download"));
    }
    let other = Uuid::now_v7();
    for url in [
        format!("{base}/exports/batches/{other}"),
        format!("{base}/exports/batches/{other}/files/{MANIFEST_FILE_NAME}"),
    ] {
        let got = call("GET", &url, Some(&reg)).await;
        assert_eq!(got.status, StatusCode::NOT_FOUND, "{url}");
        assert_eq!(got.json()["code"], "batch_not_found");
    }

    // Acknowledge, twice: one event.
    for _ in 0..2 {
        let ack = call(
            "POST",
            &format!("{base}/exports/batches/{batch}/acknowledge"),
            Some(&reg),
        )
        .await;
        assert_eq!(ack.status, StatusCode::OK, "{}", ack.json());
        assert_eq!(ack.json()["acknowledged_by"], "registrar-1");
    }
    let acks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = 'BatchAcknowledged'",
    )
    .bind(format!("export-batch-{batch}"))
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(acks, 1);

    // Nothing failed: nothing to re-deliver, no event.
    let re = call(
        "POST",
        &format!("{base}/exports/batches/{batch}/redeliver"),
        Some(&reg),
    )
    .await;
    assert_eq!(re.status, StatusCode::OK);
    assert_eq!(re.json()["certificate_ids"].as_array().unwrap().len(), 0);

    // Every other role is refused, anonymous is 401.
    let others = [
        token(Role::Student, &Uuid::now_v7().to_string()),
        token(Role::Coordinator, "coord-anna"),
        token(Role::Admin, "admin-1"),
    ];
    let routes = [
        ("GET", format!("{base}/exports/batches")),
        ("GET", format!("{base}/exports/batches/{batch}")),
        (
            "GET",
            format!("{base}/exports/batches/{batch}/files/{MANIFEST_FILE_NAME}"),
        ),
        (
            "POST",
            format!("{base}/exports/batches/{batch}/acknowledge"),
        ),
        ("POST", format!("{base}/exports/batches/{batch}/redeliver")),
        ("POST", format!("{base}/exports/run")),
    ];
    for (method, url) in &routes {
        for t in &others {
            let got = call(method, url, Some(t)).await;
            assert_eq!(got.status, StatusCode::FORBIDDEN, "{method} {url}");
        }
        let got = call(method, url, None).await;
        assert_eq!(got.status, StatusCode::UNAUTHORIZED, "{method} {url}");
    }
    db.drop().await;
}

#[tokio::test]
async fn a_rule_error_is_redelivered_on_request_once_ladok_accepts_it() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), log::upcasters());
    let out = tempfile::tempdir().unwrap();
    let refusing = FakeLadok::start().await.unwrap();
    let base = serve(db.pool.clone(), config(out.path(), &refusing)).await;
    let reg = registrar();
    let mut approved = Vec::new();
    for n in 0..3 {
        approved.push(approve(&store, 10 + n).await);
    }
    let bad = approved[1];
    refusing.rule_error_for(&bad.to_string(), "commons.fel.grupp.domanregel");
    support::settle(&store).await;

    let run = call("POST", &format!("{base}/exports/run"), Some(&reg)).await;
    assert_eq!(run.json()["delivered"], 2);
    assert_eq!(run.json()["failed"], 1);
    let batch = run.json()["completed"][0].as_str().unwrap().to_owned();
    let detail = call(
        "GET",
        &format!("{base}/exports/batches/{batch}"),
        Some(&reg),
    )
    .await
    .json();
    assert_eq!(detail["counts"]["failed"], 1);
    let item = detail["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["certificate_id"] == bad.to_string())
        .unwrap()
        .clone();
    assert_eq!(item["ladok"], "failed");
    assert_eq!(item["reason"], "rule_error");
    assert_eq!(item["felgrupp"], "commons.fel.grupp.domanregel");
    // A run alone does not try a rule error again.
    let run = call("POST", &format!("{base}/exports/run"), Some(&reg)).await;
    assert_eq!(
        (
            run.json()["delivered"].clone(),
            run.json()["failed"].clone()
        ),
        (0.into(), 0.into())
    );

    // The registrar had Ladok's data fixed (here: a Ladok that accepts it) and asks again.
    let accepting = FakeLadok::start().await.unwrap();
    let fixed = serve(db.pool.clone(), config(out.path(), &accepting)).await;
    let re = call(
        "POST",
        &format!("{fixed}/exports/batches/{batch}/redeliver"),
        Some(&reg),
    )
    .await;
    assert_eq!(re.status, StatusCode::OK, "{}", re.json());
    assert_eq!(
        re.json()["certificate_ids"],
        serde_json::json!([bad.to_string()])
    );
    let queued = re.json()["batch"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["certificate_id"] == bad.to_string())
        .unwrap()["ladok"]
        .clone();
    assert_eq!(queued, "pending");
    support::settle(&store).await;
    let run = call("POST", &format!("{fixed}/exports/run"), Some(&reg)).await;
    assert_eq!(run.status, StatusCode::OK);
    assert_eq!(run.json()["delivered"], 1, "{}", run.json());
    assert_eq!(run.json()["failed"], 0);
    let merits = accepting.merits();
    assert_eq!(merits.len(), 1);
    assert_eq!(
        FakeLadok::certificate_of(&merits[0].merit),
        Some(bad.to_string())
    );
    let detail = call(
        "GET",
        &format!("{fixed}/exports/batches/{batch}"),
        Some(&reg),
    )
    .await
    .json();
    assert_eq!(detail["counts"]["delivered"], 3);
    assert_eq!(detail["counts"]["failed"], 0);
    // Delivered: a second request queues nothing.
    let re = call(
        "POST",
        &format!("{fixed}/exports/batches/{batch}/redeliver"),
        Some(&reg),
    )
    .await;
    assert_eq!(re.json()["certificate_ids"], serde_json::json!([]));
    db.drop().await;
}
