//! The master key of the personal data against a real PostgreSQL and the real `cim` binary: `cim
//! erase` does what the route does, a lost key table and a wrong master key stop `cim` at start-up,
//! and the master key rotates (`docs/personal-data.md`, "The master key").

use crate::support;

use cim::store::StoreError;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use support::cohort::{cim, with_cohort};

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
