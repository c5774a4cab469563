//! Erasure by crypto-shredding against a real PostgreSQL, over real HTTP and the real `cim` binary:
//! after a student is erased, none of their personal values is left in any column of any table or
//! in the media directory, another student is untouched, a full projection rebuild succeeds, and
//! the registrar's record of the certificate (and the export folder already written) is intact.
//! The scans prove they can fail: before the erasure they find every written form of the student's
//! values. Also: `tests/it/erasure_reason.rs` (a reason naming the student), `tests/it/master_key.rs`.

use crate::support;
use crate::support::server::serve;

use cim::domain::PortfolioId;
use cim::export::worker::WorkerConfig;
use cim::export::worker::schedule::run_export;
use cim::http::AppState;
use cim::http::auth::Role;
use cim::media::MediaStore;
use cim::projections::read_models::{audit, portfolio, registrar};
use cim::store::EventStore;
use cim_demo::{DemoStudent, StudentPath};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use support::auth::{dev_verifier, token};
use support::cohort::{cim, with_cohort};
use support::scan::{self, files};

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

/// Which of `needles` the database dump holds, each with the table it was found in. A dump writes
/// a line break inside a value as `\n`, so a value of several lines is searched for line by line.
fn hits(dump: &str, needles: &[String]) -> Vec<String> {
    let needles: Vec<&str> = needles
        .iter()
        .flat_map(|n| n.lines())
        .map(str::trim)
        .filter(|n| n.chars().count() >= 3)
        .collect();
    let mut table = "the schema";
    let mut out = Vec::new();
    for line in dump.lines() {
        // A table's rows follow its `COPY public.events (…) FROM stdin;` line.
        if let Some(copy) = line.strip_prefix("COPY ") {
            table = copy.split(' ').next().unwrap_or(copy);
        }
        for needle in &needles {
            if scan::contains_value(line, needle) {
                let short: String = needle.chars().take(40).collect();
                out.push(format!("{table} holds {short:?}"));
            }
        }
    }
    out
}

/// The export files that are the registrar's record of the erased student and are kept: the
/// batch written before the erasure holds the identity number (12 digits, as Ladok takes it) and the
/// names as written, in its Ladok CSV, ELMO document and DS 6.1 text (`docs/personal-data.md`,
/// "Retention"). Nothing else of theirs may be anywhere after the erasure.
const RETAINED_IN_EXPORTS: [&str; 3] = ["identity number, 12 digits", "given names", "family name"];

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
    let base = serve(state).await;
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
    let reflection = needles
        .iter()
        .find(|s| s.split_whitespace().count() > 800)
        .expect("a reflection text is among the values");
    let forms = scan::forms(
        &identity_number,
        details["name"]["given_names"].as_str().unwrap(),
        details["name"]["family_name"].as_str().unwrap(),
        &email,
        &scan::a_sentence(reflection),
    );
    let every_form: BTreeSet<&str> = forms.iter().map(|f| f.what).collect();

    // The database scan can fail: a table holding every form is found in the dump, form by form.
    sqlx::query("CREATE TABLE scan_canary (note text, content jsonb)")
        .execute(&pool)
        .await
        .unwrap();
    for form in &forms {
        sqlx::query("INSERT INTO scan_canary VALUES ($1, jsonb_build_object('text', $1::text))")
            .bind(&form.value)
            .execute(&pool)
            .await
            .unwrap();
    }
    let dump = scan::database_text(&db.url, &pool).await;
    assert_eq!(
        scan::found(&dump, &forms),
        every_form,
        "the dump scan misses a form"
    );
    sqlx::query("DROP TABLE scan_canary")
        .execute(&pool)
        .await
        .unwrap();
    // Sealed at rest from the start: no table holds them in plaintext even before the erasure,
    // except the ones still to be uploaded.
    let dump = scan::database_text(&db.url, &pool).await;
    assert_eq!(hits(&dump, &needles), Vec::<String>::new());
    assert_eq!(scan::found(&dump, &forms), BTreeSet::new());

    // Uploads: a document naming the erased student in every form, and one of the other student.
    let upload_words: Vec<String> = forms.iter().map(|f| f.value.clone()).collect();
    let upload_words = upload_words.join("\n");
    let erased_upload = api.upload(&erased, &upload_words).await;
    let other_upload = api.upload(&other, "the other student's evidence").await;
    needles.push(erased_upload.clone());
    needles.push(upload_words.clone());
    // The scans see what is there: the upload's hash in media_uploads, every form in the file.
    let dump = scan::database_text(&db.url, &pool).await;
    assert_eq!(
        hits(&dump, std::slice::from_ref(&erased_upload)),
        vec![format!(
            "public.media_uploads holds {:?}",
            &erased_upload[..40]
        )]
    );
    let media = files(media_dir.path());
    assert_eq!(media.len(), 2);
    let in_media = scan::found_in_files(&media, &forms);
    assert_eq!(in_media.values().collect::<Vec<_>>(), vec![&every_form]);

    // Exported before the erasure: the registrar's folder must not change, and it holds what the
    // retention rules keep (and only that).
    support::settle(&store).await;
    let export_dir = tempfile::tempdir().unwrap();
    run_export(&store, &WorkerConfig::new(export_dir.path()))
        .await
        .unwrap();
    let exported = files(export_dir.path());
    assert!(exported.len() > 3, "{:?}", exported.keys());
    let in_exports = scan::found_in_files(&exported, &forms);
    let retained: BTreeSet<&str> = in_exports.values().flatten().copied().collect();
    assert_eq!(
        retained,
        BTreeSet::from(RETAINED_IN_EXPORTS),
        "{in_exports:?}"
    );
    // Before the erasure every form is somewhere: a scanner that cannot find one fails here.
    let before: BTreeSet<&str> = in_media
        .values()
        .chain(in_exports.values())
        .flatten()
        .copied()
        .collect();
    assert_eq!(before, every_form);

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
    let dump = scan::database_text(&db.url, &pool).await;
    assert_eq!(hits(&dump, &needles), Vec::<String>::new());
    assert_eq!(scan::found(&dump, &forms), BTreeSet::new());
    let media = files(media_dir.path());
    assert_eq!(
        media
            .keys()
            .map(|k| k.rsplit('/').next().unwrap())
            .collect::<Vec<_>>(),
        vec![other_upload.as_str()]
    );
    assert_eq!(scan::found_in_files(&media, &forms), Default::default());
    for bytes in media.values() {
        let text = String::from_utf8_lossy(bytes);
        assert!(needles.iter().all(|n| !scan::contains_value(&text, n)));
    }
    // The export folder still holds exactly what the registrar keeps, in the same files.
    assert_eq!(
        scan::found_in_files(&files(export_dir.path()), &forms),
        in_exports
    );

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
