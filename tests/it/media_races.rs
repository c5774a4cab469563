//! Media uploads against what can go wrong around them, over real HTTP and a real PostgreSQL: many
//! uploads racing an erasure leave the media folder and `media_uploads` in step (no file without a
//! row, no row without a file, another portfolio's file of the same bytes intact), and an upload whose
//! directory cannot be synced is answered 500 and leaves nothing behind.

use crate::support;
use crate::support::server::serve;

use cim::log;
use support::auth::{dev_verifier, token};
use support::flow::enrolment;

use chrono::Utc;
use cim::app::{self, CommandHandler};
use cim::domain::{ProgramId, StudentUid};
use cim::http::AppState;
use cim::http::auth::Role;
use cim::media::{Durability, MediaStore};
use cim::store::EventStore;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use uuid::Uuid;

struct App {
    base: String,
    http: reqwest::Client,
    db: support::TestDb,
    store: EventStore,
    media: MediaStore,
    media_dir: tempfile::TempDir,
    program: ProgramId,
}

async fn spawn_app(durability: Option<Arc<dyn Durability>>) -> App {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), log::upcasters());
    let handler = CommandHandler::new(store.clone());
    let seeded = app::seed_pilot_programs(&handler, "admin-1", Utc::now())
        .await
        .unwrap();
    let media_dir = tempfile::tempdir().unwrap();
    let mut media = MediaStore::new(media_dir.path(), 1 << 20);
    if let Some(durability) = durability {
        media = media.with_durability(durability);
    }
    let state = AppState::new(db.pool.clone())
        .with_verifier(dev_verifier())
        .with_media(media.clone());
    let base = serve(state).await;
    App {
        base,
        http: reqwest::Client::new(),
        db,
        store,
        media,
        media_dir,
        program: seeded[0].id,
    }
}

/// A student with an open portfolio.
struct Student {
    uid: StudentUid,
    portfolio: String,
    token: String,
}

impl App {
    async fn open(&self) -> Student {
        let uid = Uuid::now_v7();
        let token = token(Role::Student, &uid.to_string());
        let answer = self
            .http
            .post(format!(
                "{}/programs/{}/portfolios",
                self.base, self.program
            ))
            .bearer_auth(&token)
            .json(&enrolment(
                &uid.to_string(),
                &support::unique_identity_number(),
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::CREATED);
        let body: Value = answer.json().await.unwrap();
        Student {
            uid: StudentUid::new(uid),
            portfolio: body["view"]["portfolio_id"].as_str().unwrap().to_owned(),
            token,
        }
    }

    /// Uploads `bytes`; returns the status and the problem code, if any.
    async fn upload(&self, student: &Student, bytes: Vec<u8>) -> (StatusCode, Value) {
        let answer = self
            .http
            .post(format!(
                "{}/portfolios/{}/media",
                self.base, student.portfolio
            ))
            .bearer_auth(&student.token)
            .header("content-type", "application/pdf")
            .body(bytes)
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let content_type = answer
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = answer.json().await.unwrap_or(Value::Null);
        if status.is_server_error() {
            assert_eq!(content_type.as_deref(), Some("application/problem+json"));
        }
        (status, body)
    }

    async fn erase(&self, student: &Student) {
        support::erase_student(&self.store, &self.media, student.uid).await;
    }

    /// Every hash named by a row, and every (portfolio, hash) row.
    async fn rows(&self) -> Vec<(Uuid, String)> {
        sqlx::query_as("SELECT portfolio_id, sha256 FROM media_uploads")
            .fetch_all(&self.db.pool)
            .await
            .unwrap()
    }
}

/// A small PDF whose bytes (and so hash) differ per `words`.
fn pdf(words: &str) -> Vec<u8> {
    format!("%PDF-1.4\n% {words}\n%%EOF\n").into_bytes()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The file names (hashes) in the media folder, temporary files included (there must be none left).
fn files_on_disk(dir: &Path) -> BTreeSet<String> {
    support::scan::files(dir)
        .keys()
        .map(|path| {
            Path::new(path)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_racing_an_erasure_leave_files_and_rows_in_step() {
    let app = Arc::new(spawn_app(None).await);
    for round in 0..3 {
        let erased = app.open().await;
        let other = app.open().await;
        // Before the erasure, the student uploaded files that the other student is about to upload
        // too (same bytes, so the same stored file).
        let shared: Vec<Vec<u8>> = (0..12)
            .map(|i| pdf(&format!("round {round} shared {i}")))
            .collect();
        for bytes in &shared {
            assert_eq!(
                app.upload(&erased, bytes.clone()).await.0,
                StatusCode::CREATED
            );
        }
        let erased = Arc::new(erased);
        let other = Arc::new(other);
        let mut tasks = Vec::new();
        for (i, bytes) in shared.iter().enumerate() {
            // The other portfolio's uploads of the shared bytes...
            let (app_, other_, bytes) = (app.clone(), other.clone(), bytes.clone());
            tasks.push(tokio::spawn(async move {
                let (status, body) = app_.upload(&other_, bytes).await;
                assert_eq!(status, StatusCode::CREATED, "{body}");
            }));
            // ... and the erased student's new uploads, all while the erasure runs.
            let (app_, erased_) = (app.clone(), erased.clone());
            tasks.push(tokio::spawn(async move {
                let (status, body) = app_
                    .upload(&erased_, pdf(&format!("round {round} own {i}")))
                    .await;
                // Before the erasure or after it: stored either way, never a failure.
                assert_eq!(status, StatusCode::CREATED, "{body}");
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(5 * round)).await;
        app.erase(&erased).await;
        for task in tasks {
            task.await.unwrap();
        }

        // No file without a row, no row without a file, no temporary left.
        let rows = app.rows().await;
        let named: BTreeSet<String> = rows.iter().map(|(_, h)| h.clone()).collect();
        assert_eq!(files_on_disk(app.media_dir.path()), named, "round {round}");
        // The other student's files are all there and theirs.
        let others: BTreeSet<String> = rows
            .iter()
            .filter(|(p, _)| p.to_string() == other.portfolio)
            .map(|(_, h)| h.clone())
            .collect();
        for bytes in &shared {
            let hash = sha256_hex(bytes);
            assert!(others.contains(&hash), "round {round}: the other's row");
            let stored = std::fs::read(app.media.path_of(&hash).unwrap()).unwrap();
            assert_eq!(&stored, bytes, "round {round}: the other's file");
        }
    }
    let app = Arc::into_inner(app).unwrap();
    app.db.drop().await;
}

/// A disk whose directory fsync fails.
#[derive(Debug)]
struct FailingSync;

impl Durability for FailingSync {
    fn sync_dir(&self, _: &Path) -> std::io::Result<()> {
        Err(std::io::Error::other(
            "injected: the directory cannot be synced",
        ))
    }
}

#[tokio::test]
async fn an_upload_that_cannot_be_made_durable_is_a_500_and_leaves_nothing() {
    let app = spawn_app(Some(Arc::new(FailingSync))).await;
    let student = app.open().await;
    let (status, body) = app.upload(&student, pdf("not durable")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["code"], "internal_error");
    assert!(app.rows().await.is_empty(), "no row");
    assert!(files_on_disk(app.media_dir.path()).is_empty(), "no file");
    app.db.drop().await;
}
