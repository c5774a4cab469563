//! `cim-demo` as a person runs it: the binary against a fresh database, twice.
//!
//! A binary of its own, not a module of `tests/it/`: `cim-demo` writes its cohort and exports it in
//! one run, and the export takes what the log lets a tailing reader see, which is bounded by the
//! oldest transaction open anywhere in the cluster. Beside other tests (other databases, same
//! server) the one run may then find the cohort in two parts and write two batches.

#[path = "../../../tests/support/database.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `cim-demo --students 12` and returns its stdout (panics, with stderr, when it fails).
async fn demo(url: &str, export_dir: &Path) -> String {
    let url = url.to_owned();
    let export_dir = export_dir.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_cim-demo"))
            .args(["--students", "12", "--export-dir"])
            .arg(&export_dir)
            .env("DATABASE_URL", &url)
            .env("CIM_LOG", "warn")
            .env_remove("CIM_JWT_DEV_SECRET")
            .env_remove("CIM_DATA_DIR")
            .output()
            .expect("run cim-demo")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "cim-demo failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

async fn portfolio_events(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_id LIKE 'portfolio-%'")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_demo_drives_a_cohort_exports_it_and_can_run_again() {
    let db = support::fresh().await;
    let exports = tempfile::tempdir().unwrap();

    let out = demo(&db.url, exports.path()).await;
    let batch_dirs: Vec<PathBuf> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("batch folder:"))
        .map(|p| PathBuf::from(p.trim()))
        .collect();
    assert_eq!(batch_dirs.len(), 1, "{out}");
    assert!(batch_dirs[0].starts_with(exports.path()), "{out}");
    assert!(batch_dirs[0].join("manifest.json").is_file(), "{out}");
    for expected in [
        "export CIM_JWT_DEV_SECRET=",
        "/me/portfolios",
        "/certificates",
        "/statistics",
        "Authorization: Bearer ",
    ] {
        assert!(out.contains(expected), "{expected:?} missing from\n{out}");
    }
    // Ids only: none of the fake students' personal data.
    assert!(!out.contains("@student.example.se"), "{out}");

    let types: Vec<String> = sqlx::query_scalar("SELECT DISTINCT event_type FROM events")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    for expected in [
        "CertificateApproved",
        "ReflectionReturned",
        "ExtensionGranted",
        "ApplicationRejected",
        "CertificateRevoked",
        "ExpectedCompletionProposed",
        "ExpectedCompletionProposalDeclined",
    ] {
        assert!(
            types.iter().any(|t| t == expected),
            "no {expected} in {types:?}"
        );
    }
    let formats: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT payload->>'format' FROM events WHERE event_type = 'ReflectionSubmitted' ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(formats, ["instagram", "oral", "written"]);
    // The demo's oral reflections link to its video platform; none rests on a declared duration.
    let recordings: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT DISTINCT payload->>'recording' FROM events
         WHERE event_type IN ('ReflectionSubmitted', 'FinalReflectionSubmitted')
           AND payload->>'format' = 'oral'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(recordings, [Some("link".to_owned())]);

    let before = portfolio_events(&db.pool).await;
    assert!(before > 0);
    let again = demo(&db.url, exports.path()).await;
    assert_eq!(portfolio_events(&db.pool).await, before, "{again}");
    assert!(
        again.contains("(0 new portfolio events this run)"),
        "{again}"
    );
    db.drop().await;
}
