//! Erasure by crypto-shredding against a real PostgreSQL, over real HTTP and the real `cim` binary:
//! after a student is erased, none of their personal values is left in any column of any table or
//! in the media directory, another student is untouched, a full projection rebuild succeeds, and
//! the registrar's record of the certificate (and the export folder already written) is intact.
//! Also: a lost key table and a wrong master key stop `cim` at start-up, and the master key rotates.

mod support;

use chrono::{DateTime, Utc};
use cim::app::{self, CommandHandler};
use cim::demo::{self, DemoStudent, StudentPath};
use cim::domain::PortfolioId;
use cim::export::worker::WorkerConfig;
use cim::export::worker::schedule::run_export;
use cim::http::auth::Role;
use cim::http::{AppState, router};
use cim::media::MediaStore;
use cim::projections::read_models::{audit, portfolio, registrar};
use cim::store::{EventStore, StoreError};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use support::auth::{dev_verifier, token};

/// `cim` with this test's database; the master key comes from the same environment (and default
/// data dir) as the one `support` installed in this process.
fn cim(url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cim"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("CIM_LOG", "warn")
        .output()
        .unwrap()
}

/// Every string inside a personal value, except content types (vocabulary, not personal).
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(fields) => {
            for (k, v) in fields {
                if k != "content_type" {
                    strings(v, out);
                }
            }
        }
        _ => {}
    }
}

/// The personal values of a student's events, as readable before the erasure.
async fn personal_values(store: &EventStore, portfolio: PortfolioId) -> Vec<String> {
    let mut out = Vec::new();
    for event in store.read_stream(&portfolio.stream_id(), 0).await.unwrap() {
        if let Some(p) = &event.personal {
            strings(p, &mut out);
        }
    }
    out.retain(|s| s.chars().count() >= 3);
    out.sort();
    out.dedup();
    out
}

/// Whether `haystack` holds `needle` as itself (raw or JSON-escaped), not merely as part of a
/// longer word: a short name could otherwise turn up by chance inside base64 ciphertext.
fn contains_value(haystack: &str, needle: &str) -> bool {
    let escaped = serde_json::to_string(needle).unwrap();
    let escaped = &escaped[1..escaped.len() - 1];
    [needle, escaped].iter().any(|n| {
        haystack.match_indices(n).any(|(at, _)| {
            let before = haystack[..at].chars().next_back();
            let after = haystack[at + n.len()..].chars().next();
            let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
            !word(before) && !word(after)
        })
    })
}

/// Every value of every column of every table (cast to text) that holds one of `needles`.
async fn find_in_database(pool: &sqlx::PgPool, needles: &[String]) -> Vec<String> {
    let columns: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT table_schema::text, table_name::text, column_name::text
         FROM information_schema.columns c
         JOIN pg_class k ON k.relname = c.table_name
         JOIN pg_namespace n ON n.oid = k.relnamespace AND n.nspname = c.table_schema
         WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND k.relkind IN ('r', 'p')",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(columns.len() > 50, "only {} columns found", columns.len());
    let mut hits = Vec::new();
    for (schema, table, column) in columns {
        let values: Vec<String> = sqlx::query_scalar(&format!(
            r#"SELECT "{column}"::text FROM "{schema}"."{table}" WHERE "{column}" IS NOT NULL"#
        ))
        .fetch_all(pool)
        .await
        .unwrap();
        for value in values {
            for needle in needles {
                if contains_value(&value, needle) {
                    hits.push(format!("{table}.{column} holds {needle:?}"));
                }
            }
        }
    }
    hits
}

/// Every file under `dir` with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                out.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn post(&self, path: &str, token: &str, body: reqwest::Body) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn erase(&self, student: &DemoStudent, token: &str) -> (StatusCode, Value) {
        let body = json!({"reason": "GDPR request 2026-17"}).to_string();
        self.post(
            &format!("/students/{}/erasure", student.student_uid),
            token,
            body.into(),
        )
        .await
    }

    /// Uploads a PDF that names the student; returns its hash.
    async fn upload(&self, student: &DemoStudent, words: &str) -> String {
        let bytes = format!("%PDF-1.4\n% Certificate of attendance: {words}\n%%EOF\n").into_bytes();
        let student_token = token(Role::Student, &student.student_uid.to_string());
        let (status, body) = self
            .post(
                &format!("/portfolios/{}/media", student.portfolio_id),
                &student_token,
                bytes.clone().into(),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["sha256"], sha256_hex(&bytes));
        sha256_hex(&bytes)
    }
}

/// A fresh database with the pilot programs, their demo coordinators and a demo cohort of
/// `students` driven through the rules (`seed` picks who does what).
async fn with_cohort(
    students: usize,
    seed: u64,
) -> (
    support::TestDb,
    EventStore,
    demo::CohortSummary,
    DateTime<Utc>,
) {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), app::upcasters());
    let handler = CommandHandler::new(store.clone());
    let now = Utc::now();
    app::seed_pilot_programs(&handler, demo::DEMO_ADMIN, now)
        .await
        .unwrap();
    let programs = demo::assign_coordinators(&handler, now).await.unwrap();
    let cohort = demo::drive_cohort(&handler, &programs, students, seed, now)
        .await
        .unwrap();
    (db, store, cohort, now)
}

#[tokio::test]
async fn after_erasure_no_personal_value_is_left_and_the_registrar_record_is_intact() {
    let (db, store, cohort, now) = with_cohort(10, 7).await;
    let pool = db.pool.clone();
    let mut certified = cohort
        .students
        .iter()
        .filter(|s| s.path == StudentPath::Certified);
    let (erased, other) = (*certified.next().unwrap(), *certified.next().unwrap());

    let media_dir = tempfile::tempdir().unwrap();
    let state = AppState::new(pool.clone())
        .with_verifier(dev_verifier())
        .with_media(MediaStore::new(media_dir.path(), 1 << 20));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    let api = Api {
        base,
        http: reqwest::Client::new(),
    };

    // What is personal about the student to be erased, read while it still can be.
    let mut needles = personal_values(&store, erased.portfolio_id).await;
    let others_values = personal_values(&store, other.portfolio_id).await;
    let opened = store
        .read_stream(&erased.portfolio_id.stream_id(), 0)
        .await
        .unwrap();
    let details = opened[0].personal.clone().unwrap();
    let identity_number = details["identity_number"].as_str().unwrap().to_owned();
    let email = details["email"].as_str().unwrap().to_owned();
    for must in [&identity_number, &email] {
        assert!(needles.contains(must), "{must} not among {needles:?}");
    }
    assert!(
        needles.iter().any(|s| s.split_whitespace().count() > 800),
        "a reflection text is among the values"
    );
    // Sealed at rest from the start: no table holds them in plaintext even before the erasure,
    // except the ones still to be uploaded.
    assert_eq!(
        find_in_database(&pool, &needles).await,
        Vec::<String>::new()
    );

    // Uploads: one naming the erased student, one of the other student.
    let upload_words = format!("{email} {identity_number}");
    let erased_upload = api.upload(&erased, &upload_words).await;
    let other_upload = api.upload(&other, "the other student's evidence").await;
    needles.push(erased_upload.clone());
    needles.push(upload_words.clone());
    // The scan does see what is there: the upload's hash in media_uploads.
    assert_eq!(
        find_in_database(&pool, std::slice::from_ref(&erased_upload)).await,
        vec![format!("media_uploads.sha256 holds {erased_upload:?}")]
    );
    assert_eq!(files(media_dir.path()).len(), 2);

    // Exported before the erasure: the registrar's folder must not change.
    support::settle(&store).await;
    let export_dir = tempfile::tempdir().unwrap();
    run_export(&store, &WorkerConfig::new(export_dir.path()))
        .await
        .unwrap();
    let exported = files(export_dir.path());
    assert!(exported.len() > 3, "{:?}", exported.keys());
    assert!(
        exported
            .values()
            .any(|f| String::from_utf8_lossy(f).contains(&identity_number)),
        "the export holds the identity number (it is a registrar's record)"
    );

    // The read models, built by the real binary from the whole (readable) log.
    support::settle(&store).await;
    let rebuilt = cim(&db.url, &["projections", "rebuild", "--restart"]);
    assert!(
        rebuilt.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    let certificate_id = opened
        .iter()
        .find(|e| e.event_type == "CertificateApproved")
        .map(|e| {
            e.payload["certificate_id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .unwrap();
    let record_before = registrar::certificate(&pool, certificate_id)
        .await
        .unwrap()
        .unwrap();
    let approval_payload = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, Value>(
            "SELECT payload FROM events WHERE event_type = 'CertificateApproved'
             AND payload->>'certificate_id' = $1",
        )
        .bind(certificate_id.to_string())
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let payload_before = approval_payload(pool.clone()).await;
    let other_before = portfolio::portfolio_page(&pool, other.portfolio_id, now.date_naive())
        .await
        .unwrap()
        .unwrap();
    let erased_before = portfolio::portfolio_page(&pool, erased.portfolio_id, now.date_naive())
        .await
        .unwrap()
        .unwrap();
    assert!(erased_before.personal.student.is_some());

    // Only an admin erases; an unknown student is 404.
    let admin = token(Role::Admin, "admin-7");
    for (role, sub) in [
        (Role::Registrar, "registrar-1"),
        (Role::Coordinator, "coord-x"),
    ] {
        let (status, _) = api.erase(&erased, &token(role, sub)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let student_token = token(Role::Student, &erased.student_uid.to_string());
    assert_eq!(
        api.erase(&erased, &student_token).await.0,
        StatusCode::FORBIDDEN
    );
    let nobody = DemoStudent {
        student_uid: cim::domain::StudentUid::new(uuid::Uuid::now_v7()),
        ..erased
    };
    let (status, body) = api.erase(&nobody, &admin).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("student_not_found"))
    );

    // The erasure.
    let (status, outcome) = api.erase(&erased, &admin).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome["already_erased"], false);
    assert_eq!(outcome["portfolios"], json!([erased.portfolio_id]));
    assert_eq!(outcome["uploads_deleted"], 1);
    assert_eq!(outcome["files_deleted"], 1);
    let (status, again) = api.erase(&erased, &admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["already_erased"], true);
    assert_eq!(again["erased_at"], outcome["erased_at"]);

    // Nothing of theirs in any table, nor in the media directory; the other upload is still there.
    assert_eq!(
        find_in_database(&pool, &needles).await,
        Vec::<String>::new()
    );
    let media = files(media_dir.path());
    assert_eq!(
        media
            .keys()
            .map(|k| k.rsplit('/').next().unwrap())
            .collect::<Vec<_>>(),
        vec![other_upload.as_str()]
    );
    for bytes in media.values() {
        let text = String::from_utf8_lossy(bytes);
        assert!(needles.iter().all(|n| !contains_value(&text, n)));
    }

    // The log reads on: the personal parts are erased, the facts remain; the audit shows who
    // erased, why and when.
    let after = store
        .read_stream(&erased.portfolio_id.stream_id(), 0)
        .await
        .unwrap();
    assert_eq!(after.len(), opened.len() + 1);
    assert!(after.iter().all(|e| e.personal.is_none()));
    for (a, b) in opened.iter().zip(&after) {
        assert_eq!(a.payload, b.payload);
    }
    // The audit index is a projection: build it again with the erasure event in the log.
    support::settle(&store).await;
    let rebuilt = cim(&db.url, &["projections", "rebuild", "--restart"]);
    assert!(
        rebuilt.status.success(),
        "a full rebuild after the erasure: {}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    let history = audit::portfolio_history(&pool, erased.portfolio_id)
        .await
        .unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.event_type, "PersonalDataErased");
    assert_eq!(last.actor_id, "admin-7");
    assert_eq!(last.content["by"], "admin-7");
    assert_eq!(last.content["reason"], "GDPR request 2026-17");
    assert_eq!(last.content["media_deleted"], 1);
    assert!(history.iter().all(|e| e.content.get("personal").is_none()));
    let erased_after = portfolio::portfolio_page(&pool, erased.portfolio_id, now.date_naive())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(erased_after.personal.student, None);
    assert!(erased_after.personal.activities.iter().all(|a| {
        a.details.is_none()
            && a.attempts
                .iter()
                .all(|t| t.content.is_none() && t.feedback.is_none())
    }));
    assert_eq!(erased_after.view.phase, erased_before.view.phase);
    assert_eq!(
        erased_after.view.certificate,
        erased_before.view.certificate
    );

    // The other student is untouched.
    assert_eq!(
        personal_values(&store, other.portfolio_id).await,
        others_values
    );
    let other_after = portfolio::portfolio_page(&pool, other.portfolio_id, now.date_naive())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(other_after.personal, other_before.personal);
    assert_eq!(other_after.view, other_before.view);

    // The registrar's record: certificate id, program, decision date, activity names and the Ladok
    // UID, the same after the erasure and a rebuild; the export folder is byte for byte the same.
    let record_after = registrar::certificate(&pool, certificate_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record_after, record_before);
    assert_eq!(record_after.student_uid, erased.student_uid);
    assert_eq!(record_after.activity_names.len(), 3);
    assert_eq!(approval_payload(pool.clone()).await, payload_before);
    assert_eq!(files(export_dir.path()), exported);
    // A later export run adds no batch for an approval already exported.
    run_export(&store, &WorkerConfig::new(export_dir.path()))
        .await
        .unwrap();
    assert_eq!(files(export_dir.path()), exported);
    db.drop().await;
}

#[tokio::test]
async fn a_lost_key_table_or_a_wrong_master_key_stops_cim_and_the_master_key_rotates() {
    let (db, store, cohort, _) = with_cohort(2, 3).await;
    let pool = db.pool.clone();
    let stream = cohort.students[0].portfolio_id.stream_id();
    let readable = store.read_stream(&stream, 0).await.unwrap();
    assert!(readable[0].personal.is_some());

    // `cim erase` does what the route does (the second student), and a repeat changes nothing.
    let second = cohort.students[1];
    let media_dir = tempfile::tempdir().unwrap();
    let erase = || {
        Command::new(env!("CARGO_BIN_EXE_cim"))
            .args(["erase", "--student", &second.student_uid.to_string()])
            .args(["--reason", "GDPR request 18", "--by", "admin-2"])
            .env("DATABASE_URL", &db.url)
            .env("CIM_LOG", "warn")
            .env("CIM_MEDIA_DIR", media_dir.path())
            .output()
            .unwrap()
    };
    let first = erase();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let outcome: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(outcome["already_erased"], false);
    assert_eq!(outcome["portfolios"], json!([second.portfolio_id]));
    let repeat: Value = serde_json::from_slice(&erase().stdout).unwrap();
    assert_eq!(repeat["already_erased"], true);
    let events = store
        .read_stream(&second.portfolio_id.stream_id(), 0)
        .await
        .unwrap();
    assert!(events.iter().all(|e| e.personal.is_none()));
    let last = events.last().unwrap();
    assert_eq!(
        (last.event_type.as_str(), last.actor_id.as_str()),
        ("PersonalDataErased", "admin-2")
    );
    assert_eq!(store.read_stream(&stream, 0).await.unwrap(), readable);

    let check = cim(&db.url, &["keys", "check"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let installed = cim::crypto::installed().unwrap();
    assert!(String::from_utf8_lossy(&check.stdout).contains(installed.id()));

    // A wrong master key: refused at start-up, naming both key ids (never the keys).
    let wrong = cim::crypto::MasterKey::generate();
    let refused = Command::new(env!("CARGO_BIN_EXE_cim"))
        .args(["projections", "status"])
        .env("DATABASE_URL", &db.url)
        .env("CIM_LOG", "warn")
        .env_remove("CIM_MASTER_KEY_FILE")
        .env("CIM_MASTER_KEY", wrong.to_base64().as_str())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains(installed.id()) && stderr.contains(wrong.id()),
        "{stderr}"
    );
    assert!(!stderr.contains(wrong.to_base64().as_str()));

    // Rotation to a new key file and back again.
    let dir = tempfile::tempdir().unwrap();
    let new_file = dir.path().join("new.key");
    let old_file = dir.path().join("old.key");
    std::fs::write(&old_file, installed.to_base64().as_bytes()).unwrap();
    let generated = cim(&db.url, &["keys", "generate", new_file.to_str().unwrap()]);
    assert!(generated.status.success());
    let rotated = cim(
        &db.url,
        &[
            "keys",
            "rotate",
            "--new-key-file",
            new_file.to_str().unwrap(),
        ],
    );
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    // This process still has the old key: the subject keys no longer unwrap with it.
    assert!(matches!(
        store.read_stream(&stream, 0).await,
        Err(StoreError::KeyUnwrap { .. })
    ));
    let with = |file: &Path, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cim"))
            .args(args)
            .env("DATABASE_URL", &db.url)
            .env("CIM_LOG", "warn")
            .env_remove("CIM_MASTER_KEY")
            .env("CIM_MASTER_KEY_FILE", file)
            .output()
            .unwrap()
    };
    assert!(with(&new_file, &["keys", "check"]).status.success());
    assert!(!with(&old_file, &["keys", "check"]).status.success());
    let back = with(
        &new_file,
        &[
            "keys",
            "rotate",
            "--new-key-file",
            old_file.to_str().unwrap(),
        ],
    );
    assert!(
        back.status.success(),
        "{}",
        String::from_utf8_lossy(&back.stderr)
    );
    assert_eq!(store.read_stream(&stream, 0).await.unwrap(), readable);

    // The key table emptied: not an erasure, an error, on reads and at start-up.
    sqlx::query("DELETE FROM subject_keys")
        .execute(&pool)
        .await
        .unwrap();
    assert!(matches!(
        store.read_stream(&stream, 0).await,
        Err(StoreError::KeyMissing { .. })
    ));
    let lost = cim(&db.url, &["projections", "status"]);
    let stderr = String::from_utf8_lossy(&lost.stderr);
    assert!(!lost.status.success());
    assert!(
        stderr.contains("not in subject_keys") && stderr.contains("Restore"),
        "{stderr}"
    );
    // The key table dropped.
    sqlx::query("DROP TABLE subject_keys")
        .execute(&pool)
        .await
        .unwrap();
    let dropped = cim(&db.url, &["serve", "--listen", "127.0.0.1:0"]);
    let stderr = String::from_utf8_lossy(&dropped.stderr);
    assert!(!dropped.status.success());
    assert!(stderr.contains("subject_keys is missing"), "{stderr}");
    db.drop().await;
}
