//! The reason of an erasure is kept for good (in `PersonalDataErased`, readable after the erasure),
//! so it must not carry what is being erased: over real HTTP and through the real `cim erase`, a
//! reason holding the student's identity number in any written form, a name or the e-mail address
//! is refused with a problem saying why, and nothing is erased or recorded.

use crate::support;
use crate::support::server::serve;

use chrono::Utc;
use cim::app::{CommandContext, CommandHandler};
use cim::domain::portfolio::{LadokRecord, PortfolioCommand};
use cim::domain::values::IdentityNumber;
use cim::http::AppState;
use cim::http::auth::Role;
use cim::media::MediaStore;
use cim::store::ActorRole;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::auth::{dev_verifier, token};
use support::cohort::with_cohort;

/// Everything an erasure changes: the log, the student's key and their identity-number index rows.
async fn state(pool: &sqlx::PgPool, student: uuid::Uuid) -> (i64, bool, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM events),
                (SELECT wrapped_key IS NOT NULL FROM subject_keys WHERE data_subject = $1),
                (SELECT count(*) FROM identity_numbers WHERE student_uid = $1)",
    )
    .bind(student)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_reason_naming_the_student_is_refused_and_nothing_is_erased() {
    let (db, store, cohort, _) = with_cohort(2, 11).await;
    let student = cohort.students[0];
    let uid = *student.student_uid.as_uuid();
    let opened = store
        .read_stream(&student.portfolio_id.stream_id(), 0)
        .await
        .unwrap();
    let details = opened[0].personal.clone().unwrap();
    let text = |v: &Value| v.as_str().unwrap().to_owned();
    let (twelve, email) = (text(&details["identity_number"]), text(&details["email"]));
    let given = text(&details["name"]["given_names"]);
    let family = text(&details["name"]["family_name"]);
    let given_first = given.split_whitespace().next().unwrap().to_owned();
    // Ladok corrected the typed number: its number is the student's too.
    let ladok_number = support::unique_identity_number();
    let check = PortfolioCommand::CheckIdentityInLadok {
        record: LadokRecord::Student {
            identity_number: Some(
                IdentityNumber::parse(&ladok_number, Utc::now().date_naive()).unwrap(),
            ),
        },
    };
    let system = CommandContext {
        actor_id: "identity-check".into(),
        role: ActorRole::System,
        correlation_id: uuid::Uuid::now_v7(),
        command_id: uuid::Uuid::now_v7(),
        now: Utc::now(),
    };
    CommandHandler::new(store.clone())
        .portfolio(student.portfolio_id, check, &system)
        .await
        .unwrap();

    let media_dir = tempfile::tempdir().unwrap();
    let app = AppState::new(db.pool.clone())
        .with_verifier(dev_verifier())
        .with_media(MediaStore::new(media_dir.path(), 1 << 20));
    let base = serve(app).await;
    let url = format!("{base}/students/{uid}/erasure");
    let admin = token(Role::Admin, "admin-7");
    let erase = async |reason: &str| {
        let response = reqwest::Client::new()
            .post(&url)
            .bearer_auth(&admin)
            .json(&json!({"reason": reason}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        (
            status,
            content_type,
            response.json::<Value>().await.unwrap(),
        )
    };

    let before = state(&db.pool, uid).await;
    assert!(before.1, "the student has a key");
    let refused = [
        (format!("case 17: {twelve}"), "identity number"),
        (format!("case 17: {ladok_number}"), "identity number"),
        (
            format!("case 17: {}-{}", &twelve[..8], &twelve[8..]),
            "identity number",
        ),
        (format!("case 17: {}", &twelve[2..]), "identity number"),
        (
            format!("case 17: {}-{}", &twelve[2..8], &twelve[8..]),
            "identity number",
        ),
        (
            format!("case 17: {}+{}", &twelve[2..8], &twelve[8..]),
            "identity number",
        ),
        (
            format!("asked by {} in person", given_first.to_lowercase()),
            "name",
        ),
        (format!("{} asked in person", family.to_uppercase()), "name"),
        (
            format!("mail from {}", email.to_uppercase()),
            "e-mail address",
        ),
    ];
    for (reason, what) in &refused {
        let (status, content_type, problem) = erase(reason).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}: {problem}"
        );
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(problem["code"], "erasure_reason_personal", "{problem}");
        assert_eq!(problem["field"], "reason");
        assert_eq!(problem["status"], 422);
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("the student's {what}")),
            "{detail}"
        );
        assert!(detail.contains("case reference"), "{detail}");
        // The answer does not repeat the personal value it refused.
        for value in [&twelve, &twelve[2..].to_owned(), &given, &family, &email] {
            assert!(!detail.to_lowercase().contains(&value.to_lowercase()));
        }
        assert_eq!(
            state(&db.pool, uid).await,
            before,
            "{what}: something changed"
        );
    }

    // `cim erase` goes through the same check.
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_cim"))
        .args(["erase", "--student", &uid.to_string(), "--by", "admin-2"])
        .args(["--reason", &format!("{} asked", given_first)])
        .env("DATABASE_URL", &db.url)
        .env("CIM_LOG", "warn")
        .env("CIM_MEDIA_DIR", media_dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&cli.stderr);
    assert!(!cli.status.success());
    assert!(
        stderr.contains("the reason contains the student's name"),
        "{stderr}"
    );
    assert_eq!(state(&db.pool, uid).await, before);

    // A case reference is a reason; the erasure goes ahead and the audit keeps it.
    let (status, _, outcome) = erase("GDPR request 2026-17").await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    let after = state(&db.pool, uid).await;
    assert_eq!((after.1, after.2), (false, 0));
    let reason: String = sqlx::query_scalar(
        "SELECT payload->>'reason' FROM events WHERE event_type = 'PersonalDataErased'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(reason, "GDPR request 2026-17");
    db.drop().await;
}
