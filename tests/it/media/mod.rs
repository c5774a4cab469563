//! Media uploads over real HTTP against a real PostgreSQL: the server sniffs the type, measures the
//! duration (WAV, MP3, Ogg Opus and a hand-built MP4, all generated here), stores the bytes by SHA-256, refuses
//! what is not media or too large, and lets only those who may see the portfolio download it.

use crate::support;

use support::auth::{dev_verifier, token};
use support::recordings::{mp3, mp4, ogg_opus, wav};

use chrono::{NaiveDate, TimeDelta, Utc};
use cim::app::{self, CommandContext, CommandHandler};
use cim::domain::{ProgramCommand, ProgramId, StaffId};
use cim::http::auth::Role;
use cim::http::{AppState, router};
use cim::media::MediaStore;
use cim::store::{ActorRole, EventStore};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

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

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    bytes: Vec<u8>,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

async fn spawn_app() -> App {
    let db = support::fresh().await;
    let handler = CommandHandler::new(EventStore::new(db.pool.clone(), app::upcasters()));
    let seeded = app::seed_pilot_programs(&handler, "admin-1", Utc::now())
        .await
        .unwrap();
    let (a, b) = (seeded[0].id, seeded[1].id);
    let ctx = CommandContext {
        actor_id: "admin-1".into(),
        role: ActorRole::Admin,
        correlation_id: Uuid::now_v7(),
        command_id: Uuid::now_v7(),
        now: Utc::now(),
    };
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
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap().to_vec();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            bytes,
            body,
        }
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
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .bearer_auth(token)
                .json(&body),
        )
        .await
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
        let store = EventStore::new(self.db.pool.clone(), app::upcasters());
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

#[tokio::test]
async fn non_media_and_oversize_uploads_are_refused_leaving_nothing_behind() {
    let app = spawn_app().await;
    let (p, student) = app.open(app.a).await;
    let text = app
        .upload(
            &p,
            &student,
            "audio/wav",
            b"this is text, whatever the header says".to_vec(),
        )
        .await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(text.code(), "media_type_not_accepted");
    assert_eq!(text.headers["content-type"], "application/problem+json");

    // Over the limit with a Content-Length: refused before the body is read.
    let mut big = wav(150);
    big.resize(LIMIT as usize + 1, 0x80);
    let declared = app.upload(&p, &student, "audio/wav", big.clone()).await;
    assert_eq!(declared.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(declared.code(), "media_too_large");

    // Over the limit without a Content-Length (chunked): refused while streaming.
    let status = chunked_upload(&app, &p, &student, &big).await;
    assert_eq!(status, 413);
    assert!(
        files_in(app.media_dir.path()).is_empty(),
        "{:?}",
        files_in(app.media_dir.path())
    );
    app.db.drop().await;
}

/// A chunked POST written by hand (the client library sends a Content-Length for a body it holds);
/// returns the status code.
async fn chunked_upload(app: &App, portfolio: &str, token: &str, body: &[u8]) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /portfolios/{portfolio}/media HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: audio/wav\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(64 * 1024) {
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(chunk);
        framed.extend_from_slice(b"\r\n");
        // The server may answer and close before it has read everything.
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    text.split(' ').nth(1).unwrap_or("0").parse().unwrap()
}

#[tokio::test]
async fn only_the_owner_and_the_programs_coordinator_can_download() {
    let app = spawn_app().await;
    let (p, student) = app.open(app.a).await;
    let (_, other) = app.open(app.b).await;
    let recording = wav(3);
    let sha = sha256(&recording);
    let up = app
        .upload(&p, &student, "audio/wav", recording.clone())
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);

    for caller in [student.clone(), token(Role::Coordinator, ANNA)] {
        let got = app.download(&p, &sha, &caller).await;
        assert_eq!(got.status, StatusCode::OK);
        assert_eq!(got.bytes, recording);
        assert_eq!(got.headers["content-type"], "audio/wav");
        assert_eq!(got.headers["x-content-type-options"], "nosniff");
        assert!(
            got.headers["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment"),
        );
    }
    // Another student, and a coordinator of another program, do not know the portfolio exists.
    let hidden = app.download(&p, &sha, &other).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert_eq!(hidden.code(), "portfolio_not_found");
    let bert = token(Role::Coordinator, "coord-bert");
    assert_eq!(
        app.download(&p, &sha, &bert).await.status,
        StatusCode::NOT_FOUND
    );
    // Another student cannot upload to it either.
    let foreign = app.upload(&p, &other, "audio/wav", recording.clone()).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);

    // Bad hashes are refused before they come near a path.
    for bad in [
        "abc",
        &sha.to_uppercase(),
        "..%2F..%2Fetc%2Fpasswd",
        &format!("{}0", sha),
    ] {
        let got = app.download(&p, bad, &student).await;
        assert_eq!(got.status, StatusCode::BAD_REQUEST, "{bad}: {}", got.body);
        assert_eq!(got.body["field"], "sha256");
    }
    // A well-formed hash this portfolio never uploaded.
    let missing = app.download(&p, &"0".repeat(64), &student).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "media_not_found");
    app.db.drop().await;
}

#[tokio::test]
async fn an_unmeasurable_recording_keeps_the_declared_duration_flagged() {
    let app = spawn_app().await;
    let (p, student) = app.open(app.a).await;
    // WAV by its magic bytes, but with no format or data chunk a reader could time.
    let mut broken = b"RIFF\x20\0\0\0WAVEjunk\x14\0\0\0".to_vec();
    broken.resize(40, 0);
    let up = app.upload(&p, &student, "audio/wav", broken.clone()).await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    assert_eq!(up.body["duration_s"], Value::Null);
    assert_eq!(up.body["duration_measured"], false);
    let sha = sha256(&broken);

    let logged = app.activity(&p, &student, json!({})).await;
    assert_eq!(logged.status, StatusCode::OK, "{}", logged.body);
    let act = logged.body["view"]["activities"][0]["activity_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/portfolios/{p}/activities/{act}/reflection");
    // Without a measurement the student's declaration is needed ...
    let undeclared = app
        .post(
            &path,
            &student,
            json!({"format": "oral", "media_sha256": sha}),
        )
        .await;
    assert_eq!(undeclared.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(undeclared.body["field"], "duration_s");
    // ... and is recorded as such, flagged for the coordinator.
    let declared = app
        .post(
            &path,
            &student,
            json!({"format": "oral", "media_sha256": sha, "duration_s": 150}),
        )
        .await;
    assert_eq!(declared.status, StatusCode::OK, "{}", declared.body);
    let (payload, personal) = app.event(&p, "ReflectionSubmitted").await;
    assert_eq!(payload["duration_s"], 150, "{payload}");
    assert_eq!(payload["duration_measured"], false, "{payload}");
    assert!(personal.to_string().contains(&sha), "{personal}");
    app.db.drop().await;
}
