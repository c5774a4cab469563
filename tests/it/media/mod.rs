//! Media uploads over real HTTP against a real PostgreSQL: the server sniffs the type, measures the
//! duration (WAV, MP3, Ogg Opus and a hand-built MP4, all generated here), stores the bytes by SHA-256, refuses
//! what is not media or too large, and lets only those who may see the portfolio download it.

use crate::support;

use cim::log;
use support::auth::{dev_verifier, token};
use support::flow::today;
use support::http::{Answer, open_portfolio, post, send};
use support::recordings::{mp3, mp4, ogg_opus, wav};

use chrono::{TimeDelta, Utc};
use cim::app::{self, CommandHandler};
use cim::domain::{ProgramCommand, ProgramId, StaffId};
use cim::http::auth::Role;
use cim::http::{AppState, router};
use cim::media::MediaStore;
use cim::store::EventStore;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod refusals;

const ANNA: &str = "coord-anna";
/// The upload limit of these servers: room for the 1.2 MB WAV, not for 2.5 MB.
const LIMIT: u64 = 2 * 1024 * 1024;

struct App {
    base: String,
    addr: std::net::SocketAddr,
    http: reqwest::Client,
    db: support::TestDb,
    media_dir: tempfile::TempDir,
    /// Program A (coordinated by Anna) and program B.
    a: ProgramId,
    b: ProgramId,
}

async fn spawn_app() -> App {
    let db = support::fresh().await;
    let handler = CommandHandler::new(EventStore::new(db.pool.clone(), log::upcasters()));
    let seeded = app::seed_pilot_programs(&handler, "admin-1", Utc::now())
        .await
        .unwrap();
    let (a, b) = (seeded[0].id, seeded[1].id);
    let ctx = support::admin_context();
    handler
        .program(
            a,
            ProgramCommand::AssignCoordinator {
                staff: StaffId::parse(ANNA).unwrap(),
            },
            &ctx,
        )
        .await
        .unwrap();
    let verifier = dev_verifier();
    let media_dir = tempfile::tempdir().unwrap();
    let state = AppState::new(db.pool.clone())
        .with_verifier(verifier)
        .with_media(MediaStore::new(media_dir.path(), LIMIT));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    App {
        base: format!("http://{addr}"),
        addr,
        http: reqwest::Client::new(),
        db,
        media_dir,
        a,
        b,
    }
}

impl App {
    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        send(request).await
    }

    async fn upload(
        &self,
        portfolio: &str,
        token: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Answer {
        self.send(
            self.http
                .post(format!("{}/portfolios/{portfolio}/media", self.base))
                .bearer_auth(token)
                .header("content-type", content_type)
                .body(bytes),
        )
        .await
    }

    async fn download(&self, portfolio: &str, sha: &str, token: &str) -> Answer {
        self.send(
            self.http
                .get(format!("{}/portfolios/{portfolio}/media/{sha}", self.base))
                .bearer_auth(token),
        )
        .await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        post(&self.http, &self.base, path, token, &body).await
    }

    /// Opens a portfolio in `program` for a new student; returns (portfolio id, student token).
    async fn open(&self, program: ProgramId) -> (String, String) {
        let (portfolio, _, student) = open_portfolio(&self.http, &self.base, program).await;
        (portfolio, student)
    }

    /// Logs an activity; returns its id.
    async fn activity(&self, portfolio: &str, student: &str, extra: Value) -> Answer {
        let mut body = json!({
            "item": "tedx",
            "started_on": today() - TimeDelta::days(7),
            "ended_on": today() - TimeDelta::days(5),
            "description": "Two evenings a week with students from abroad.",
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.post(
            &format!("/portfolios/{portfolio}/activities"),
            student,
            body,
        )
        .await
    }

    /// Logs an activity and submits `reflection` for it; returns the activity id and the answer.
    async fn reflect(&self, portfolio: &str, student: &str, reflection: Value) -> (String, Answer) {
        let logged = self.activity(portfolio, student, json!({})).await;
        assert_eq!(logged.status, StatusCode::OK, "{}", logged.body);
        let activity = logged.body["view"]["activities"][0]["activity_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let answer = self
            .post(
                &format!("/portfolios/{portfolio}/activities/{activity}/reflection"),
                student,
                reflection,
            )
            .await;
        (activity, answer)
    }

    /// The last event of this type, read through the store (which opens the sealed personal part).
    async fn event(&self, portfolio: &str, event_type: &str) -> (Value, Value) {
        let store = EventStore::new(self.db.pool.clone(), log::upcasters());
        let events = store
            .read_stream(&format!("portfolio-{portfolio}"), 0)
            .await
            .unwrap();
        let event = events
            .into_iter()
            .rev()
            .find(|e| e.event_type == event_type)
            .unwrap();
        (event.payload, event.personal.unwrap_or(Value::Null))
    }
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.path().is_dir() {
            out.extend(files_in(&entry.path()));
        } else {
            out.push(entry.path());
        }
    }
    out
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test]
async fn an_uploaded_recording_is_measured_and_its_duration_recorded_as_measured() {
    let app = spawn_app().await;
    let (p, student) = app.open(app.a).await;
    let recording = wav(150);
    assert_eq!(recording.len(), 1_200_044);
    // The declared type is not trusted: the bytes say WAV.
    let up = app
        .upload(&p, &student, "application/octet-stream", recording.clone())
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    let sha = sha256(&recording);
    assert_eq!(
        up.body,
        json!({
            "sha256": sha,
            "content_type": "audio/wav",
            "size_bytes": 1_200_044,
            "duration_s": 150.0,
            "duration_measured": true,
        })
    );
    let stored = app.media_dir.path().join(&sha[..2]).join(&sha);
    assert_eq!(std::fs::read(&stored).unwrap(), recording);
    // Uploading the same bytes again is harmless and stores nothing new.
    let again = app
        .upload(&p, &student, "audio/wav", recording.clone())
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(files_in(app.media_dir.path()), vec![stored]);

    // An oral reflection referencing the upload: the declared 999 s is ignored for the measured 150.
    let (act, reflection) = app
        .reflect(
            &p,
            &student,
            json!({"format": "oral", "media_sha256": sha, "duration_s": 999}),
        )
        .await;
    assert_eq!(reflection.status, StatusCode::OK, "{}", reflection.body);
    let (payload, personal) = app.event(&p, "ReflectionSubmitted").await;
    assert_eq!(payload["duration_s"], 150, "{payload}");
    assert_eq!(payload["duration_measured"], true, "{payload}");
    // The coordinator sees that the reflection rests on an upload.
    assert_eq!(payload["recording"], "upload", "{payload}");
    assert_eq!(
        reflection.body["view"]["activities"][0]["attempts"][0]["recording"],
        "upload"
    );
    assert!(personal.to_string().contains(&sha), "{personal}");
    assert!(personal.to_string().contains("audio/wav"), "{personal}");

    // A reference to something never uploaded to this portfolio is refused.
    let unknown = app
        .post(
            &format!("/portfolios/{p}/activities/{act}/reflection"),
            &student,
            json!({"format": "oral", "media_sha256": "0".repeat(64)}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown.code(), "media_not_uploaded", "{}", unknown.body);
    assert_eq!(unknown.body["field"], "media_sha256");
    // The final reflection takes the same reference.
    let final_unknown = app
        .post(
            &format!("/portfolios/{p}/final-reflection"),
            &student,
            json!({"format": "oral", "media_sha256": "1".repeat(64)}),
        )
        .await;
    assert_eq!(
        final_unknown.code(),
        "media_not_uploaded",
        "{}",
        final_unknown.body
    );
    // A client-typed reference and an upload reference together are refused.
    let both = app
        .post(
            &format!("/portfolios/{p}/final-reflection"),
            &student,
            json!({"format": "oral", "media_sha256": sha, "media": {
                "sha256": sha, "content_type": "audio/wav", "size_bytes": 1
            }}),
        )
        .await;
    assert_eq!(both.code(), "media_twice", "{}", both.body);
    app.db.drop().await;
}

#[tokio::test]
async fn a_video_mp4_is_measured_from_its_movie_header_and_evidence_is_referenced_by_hash() {
    let app = spawn_app().await;
    let (p, student) = app.open(app.a).await;
    let video = mp4(600, 600 * 320);
    let up = app.upload(&p, &student, "video/mp4", video.clone()).await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    assert_eq!(up.body["content_type"], "video/mp4");
    assert_eq!(up.body["duration_s"], 320.0);
    assert_eq!(up.body["duration_measured"], true);

    // A PDF is accepted as evidence; it has no duration.
    let pdf = b"%PDF-1.4\n% a certificate of attendance\n".to_vec();
    let up = app.upload(&p, &student, "audio/wav", pdf.clone()).await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    assert_eq!(up.body["content_type"], "application/pdf");
    assert_eq!(up.body["duration_s"], Value::Null);
    assert_eq!(up.body["duration_measured"], false);
    let logged = app
        .activity(&p, &student, json!({"evidence_sha256": sha256(&pdf)}))
        .await;
    assert_eq!(logged.status, StatusCode::OK, "{}", logged.body);
    let (_, personal) = app.event(&p, "ActivityLogged").await;
    assert!(personal.to_string().contains(&sha256(&pdf)), "{personal}");
    assert!(
        personal.to_string().contains("application/pdf"),
        "{personal}"
    );
    app.db.drop().await;
}

#[tokio::test]
async fn mp3_and_ogg_recordings_are_measured_from_their_frames() {
    let app = spawn_app().await;
    let (p, student) = app.open(app.a).await;
    // 4167 frames of 36 ms: 150.012 s.
    let podcast = mp3(4167);
    let up = app.upload(&p, &student, "audio/ogg", podcast.clone()).await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    assert_eq!(up.body["content_type"], "audio/mpeg");
    assert_eq!(up.body["duration_measured"], true);
    let seconds = up.body["duration_s"].as_f64().unwrap();
    assert!((seconds - 150.012).abs() < 0.05, "{seconds}");

    let voice_note = ogg_opus(170);
    let up = app.upload(&p, &student, "audio/mpeg", voice_note).await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    assert_eq!(up.body["content_type"], "audio/ogg");
    assert_eq!(up.body["duration_measured"], true);
    let seconds = up.body["duration_s"].as_f64().unwrap();
    assert!((seconds - 170.0).abs() < 0.05, "{seconds}");

    // The MP3's measured duration is the one recorded, whatever the student declares.
    let (_, reflection) = app
        .reflect(
            &p,
            &student,
            json!({"format": "oral", "media_sha256": sha256(&podcast), "duration_s": 60}),
        )
        .await;
    assert_eq!(reflection.status, StatusCode::OK, "{}", reflection.body);
    let (payload, _) = app.event(&p, "ReflectionSubmitted").await;
    assert_eq!(
        (
            payload["duration_s"].as_u64(),
            &payload["duration_measured"]
        ),
        (Some(150), &json!(true)),
        "{payload}"
    );
    app.db.drop().await;
}
