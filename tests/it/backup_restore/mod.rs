//! The backup and restore of `docs/backup.md`, done for real: a realistic database (a demo cohort,
//! recorded oral reflections, an export, an erasure) is dumped with `pg_dump --format=custom`,
//! restored with `pg_restore` into a new database, its media folder copied after the dump; then the
//! restored log, every other table, the read models rebuilt from the restored log by
//! `cim projections rebuild`, and the media must equal the original's, and the erased student must
//! stay erased. Each comparison is shown to fail on a difference before the test ends.

mod compare;
mod transaction_ids;

use crate::support;
use crate::support::server::serve;

use cim::db::{self, scratch};
use cim::domain::PortfolioId;
use cim::export::worker::WorkerConfig;
use cim::export::worker::schedule::run_export;
use cim::http::AppState;
use cim::http::auth::Role;
use cim::log;
use cim::media::MediaStore;
use cim::projections::{self, ProjectionRunner, read_models::portfolio};
use cim::store::EventStore;
use cim_demo::StudentPath;
use compare::{
    copy_folder, export_problems, media_problems, media_references, rows, sha256_hex,
    table_differences,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::BTreeSet;
use std::path::Path;
use support::auth::{dev_verifier, token};
use support::cohort::{cim, with_cohort};
use support::flow::today;
use support::http::{open_portfolio, post, send};
use support::log_checks::snapshot;
use support::recordings::wav;
use support::scan::files;

/// The media limit of this test's server: room for the recordings.
const MEDIA_LIMIT: u64 = 4 * 1024 * 1024;

/// `pg_dump` and `pg_restore` of at least this server's major version: the PostgreSQL client that
/// the README's prerequisites (and `.ci/run`) install. Missing tools fail the test: a backup that
/// is not proven is not a backup.
async fn client_tools(pool: &PgPool) -> (std::path::PathBuf, std::path::PathBuf) {
    let server: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
        .fetch_one(pool)
        .await
        .unwrap();
    support::pg_tools::dump_and_restore(server as u32 / 10_000)
        .unwrap_or_else(|missing| panic!("{missing} (install postgresql-client)"))
}

fn run(program: &Path, args: &[&str]) {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A new student in `program` who uploads a recording and submits an oral reflection on it over
/// the API; returns the recording's hash.
async fn oral_reflection_on_an_upload(
    base: &str,
    program: cim::domain::ProgramId,
    seconds: u32,
) -> String {
    let http = reqwest::Client::new();
    let (p, _, student) = open_portfolio(&http, base, program).await;
    let recording = wav(seconds);
    let up = send(
        http.post(format!("{base}/portfolios/{p}/media"))
            .bearer_auth(&student)
            .header("content-type", "audio/wav")
            .body(recording.clone()),
    )
    .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    let activity = json!({
        "item": "tedx",
        "started_on": today() - chrono::TimeDelta::days(7),
        "ended_on": today() - chrono::TimeDelta::days(5),
        "description": "Two evenings a week with students from abroad.",
    });
    let logged = post(
        &http,
        base,
        &format!("/portfolios/{p}/activities"),
        &student,
        &activity,
    )
    .await;
    assert_eq!(logged.status, StatusCode::OK, "{}", logged.body);
    let a = logged.body["view"]["activities"][0]["activity_id"]
        .as_str()
        .unwrap();
    let reflection = json!({"format": "oral", "media_sha256": sha256_hex(&recording)});
    let path = format!("/portfolios/{p}/activities/{a}/reflection");
    let reflected = post(&http, base, &path, &student, &reflection).await;
    assert_eq!(reflected.status, StatusCode::OK, "{}", reflected.body);
    sha256_hex(&recording)
}

/// The personal part of a portfolio's first event (the opening: identity number, names, e-mail).
async fn opening_details(store: &EventStore, portfolio: PortfolioId) -> Option<Value> {
    let events = store.read_stream(&portfolio.stream_id(), 0).await.unwrap();
    events[0].personal.clone()
}

#[tokio::test]
async fn a_dump_restored_into_a_new_database_gives_the_same_log_read_models_and_media_and_keeps_erasures()
 {
    let (db, store, cohort, now) = with_cohort(10, 20).await;
    let (pg_dump, pg_restore) = client_tools(&db.pool).await;
    let pool = db.pool.clone();
    let mut certified = cohort
        .students
        .iter()
        .filter(|s| s.path == StudentPath::Certified);
    let (erased, kept) = (*certified.next().unwrap(), *certified.next().unwrap());

    // The service as `cim serve` runs it: API, media folder, the projection runner keeping the read
    // models live.
    let runner = ProjectionRunner::start(store.clone(), pool.clone(), &db.url, projections::all());
    let media_dir = tempfile::tempdir().unwrap();
    let media = MediaStore::new(media_dir.path(), MEDIA_LIMIT);
    let state = AppState::with_projections(pool.clone(), runner.clone())
        .with_verifier(dev_verifier())
        .with_media(media.clone());
    let base = serve(state).await;

    // Two students reflect orally on recordings they uploaded: the log references media.
    let recordings = [
        oral_reflection_on_an_upload(&base, cohort.programs[0].id, 150).await,
        oral_reflection_on_an_upload(&base, cohort.programs[0].id, 160).await,
    ];
    // The student to be erased uploads evidence, which the erasure deletes.
    let evidence = b"%PDF-1.4\n% a certificate of attendance\n%%EOF\n".to_vec();
    let up = send(
        reqwest::Client::new()
            .post(format!("{base}/portfolios/{}/media", erased.portfolio_id))
            .bearer_auth(token(Role::Student, &erased.student_uid.to_string()))
            .body(evidence.clone()),
    )
    .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);

    // An export run: batches, the selection checkpoint and the batch events exist. Then the erasure.
    support::settle(&store).await;
    let export_dir = tempfile::tempdir().unwrap();
    run_export(&store, &WorkerConfig::new(export_dir.path()))
        .await
        .unwrap();
    let batches: i64 = sqlx::query_scalar("SELECT count(*) FROM export_batches")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(batches > 0, "the export made no batch");
    let kept_details = opening_details(&store, kept.portfolio_id).await;
    assert!(kept_details.is_some());
    support::erase_student(&store, &media, erased.student_uid).await;
    assert!(
        !media_dir
            .path()
            .join(&sha256_hex(&evidence)[..2])
            .join(sha256_hex(&evidence))
            .exists()
    );

    // The live read models catch up with the whole log; then the runner stops, so that nothing
    // changes the original while it is compared.
    support::settle(&store).await;
    let all = projections::all();
    support::eventually(
        "every projection is live at the head of the log",
        async || {
            let caught_up: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM projection_checkpoints
                 WHERE status = 'live' AND events_applied = (SELECT count(*) FROM events)",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            caught_up == all.len() as i64
        },
    )
    .await;
    runner.shutdown().await;
    let live = snapshot(&pool, &all).await;
    assert!(
        live.iter().all(|(_, rows)| !rows.is_empty()),
        "an empty read model"
    );

    // The backup, in the documented order: the database first, then the media and export folders.
    let backup = tempfile::tempdir().unwrap();
    let dump = backup.path().join("cim.dump");
    let dump_arg = dump.to_str().unwrap();
    run(
        &pg_dump,
        &["--format=custom", "--file", dump_arg, "--dbname", &db.url],
    );
    let restored_media = tempfile::tempdir().unwrap();
    copy_folder(media_dir.path(), restored_media.path());
    let restored_exports = tempfile::tempdir().unwrap();
    copy_folder(export_dir.path(), restored_exports.path());

    // The restore: a new, empty database on the same server, `pg_restore` into it.
    let name = support::fresh_unmigrated_name().await;
    let url = scratch::with_database(support::server_url().await, &name).unwrap();
    run(
        &pg_restore,
        &["--no-owner", "--exit-on-error", "--dbname", &url, dump_arg],
    );
    let restored = support::TestDb {
        pool: db::connect(&url, 10).await.unwrap(),
        url,
        name,
    };
    let restored_store = EventStore::new(restored.pool.clone(), log::upcasters());

    // (a) The log, row for row and column for column, and every other table too.
    let log = rows(&pool, "events").await;
    let kinds: Vec<String> = sqlx::query_scalar("SELECT DISTINCT event_type FROM events")
        .fetch_all(&pool)
        .await
        .unwrap();
    for kind in [
        "ReflectionSubmitted",
        "CertificateApproved",
        "CertificateRevoked",
        "BatchFileWritten",
        "PersonalDataErased",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} among {kinds:?}");
    }
    assert!(
        rows(&restored.pool, "events").await == log,
        "the restored log differs"
    );
    assert_eq!(
        table_differences(&pool, &restored.pool).await,
        Vec::<String>::new()
    );

    // (b) The read models, rebuilt from the restored log by the real `cim projections rebuild`
    // (which also runs `cim`'s start-up check of the keys), equal the original's live ones.
    support::settle(&restored_store).await;
    let before_rebuild: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&restored.pool)
        .await
        .unwrap();
    let rebuilt = cim(&restored.url, &["projections", "rebuild", "--restart"]);
    assert!(
        rebuilt.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    let fresh: i64 =
        sqlx::query_scalar("SELECT count(*) FROM projection_checkpoints WHERE rebuilt_at >= $1")
            .bind(before_rebuild)
            .fetch_one(&restored.pool)
            .await
            .unwrap();
    assert_eq!(fresh, all.len() as i64, "not every projection was rebuilt");
    let status = cim(&restored.url, &["projections", "status"]);
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    let lines: Vec<Vec<&str>> = status
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines.len(), all.len(), "{status}");
    for cells in &lines {
        assert_eq!(
            (cells[1], cells[2], cells[5]),
            ("live", "current", "0"),
            "{status}"
        );
    }
    let rebuilt = snapshot(&restored.pool, &all).await;
    assert_eq!(live.len(), rebuilt.len());
    for ((table, a), (_, b)) in live.iter().zip(&rebuilt) {
        assert_eq!(
            a, b,
            "{table}: the rebuilt read model differs from the original's"
        );
    }

    // (c) The media: the same files, byte for byte, and every reference of the restored log
    // resolves. The original's references are the same set.
    let references = media_references(&restored_store).await;
    assert_eq!(references, media_references(&store).await);
    assert_eq!(
        references,
        recordings.iter().cloned().collect::<BTreeSet<_>>()
    );
    let original_media = files(media_dir.path());
    assert_eq!(original_media.len(), 2);
    assert_eq!(
        media_problems(&original_media, restored_media.path(), &references),
        Vec::<String>::new()
    );

    // The export folder: the same files, and every file the restored log records as written is
    // there with the hash it recorded.
    assert_eq!(files(export_dir.path()), files(restored_exports.path()));
    let (recorded, missing) = export_problems(&restored.pool, restored_exports.path()).await;
    assert!(recorded > 3, "{recorded} batch files recorded");
    assert_eq!(missing, Vec::<String>::new());

    // (d) The erased student stays erased: the key is a tombstone, the sealed parts are there and
    // read as absent, the page shows nothing personal, the upload is in neither folder. The other
    // students read as before, and `cim keys check` accepts the restored keys.
    let (wrapped, erased_at): (Option<Vec<u8>>, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as("SELECT wrapped_key, erased_at FROM subject_keys WHERE data_subject = $1")
            .bind(*erased.student_uid.as_uuid())
            .fetch_one(&restored.pool)
            .await
            .unwrap();
    assert_eq!((wrapped, erased_at.is_some()), (None, true));
    let sealed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE data_subject = $1 AND personal IS NOT NULL",
    )
    .bind(*erased.student_uid.as_uuid())
    .fetch_one(&restored.pool)
    .await
    .unwrap();
    assert!(
        sealed > 0,
        "the erased student's sealed parts are not in the log"
    );
    let stream = restored_store
        .read_stream(&erased.portfolio_id.stream_id(), 0)
        .await
        .unwrap();
    assert!(stream.iter().all(|e| e.personal.is_none()));
    assert_eq!(stream.last().unwrap().event_type, "PersonalDataErased");
    let page = portfolio::portfolio_page(&restored.pool, erased.portfolio_id, now.date_naive())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.personal.student, None);
    assert!(
        files(restored_media.path())
            .keys()
            .all(|k| !k.ends_with(&sha256_hex(&evidence)))
    );
    assert_eq!(
        opening_details(&restored_store, kept.portfolio_id).await,
        kept_details
    );
    let check = cim(&restored.url, &["keys", "check"]);
    let said = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(
        check.status.success() && said.contains("(1 erased)"),
        "{said}"
    );

    // The comparisons can fail: a missing media or batch file, a changed read-model row, a lost
    // event.
    let damaged = tempfile::tempdir().unwrap();
    copy_folder(restored_media.path(), damaged.path());
    std::fs::remove_file(
        damaged
            .path()
            .join(&recordings[0][..2])
            .join(&recordings[0]),
    )
    .unwrap();
    assert_eq!(
        media_problems(&original_media, damaged.path(), &references).len(),
        2
    );
    let (_, batch_files) = export_problems(&restored.pool, damaged.path()).await;
    assert_eq!(
        batch_files.len(),
        recorded,
        "an empty folder holds no batch file"
    );
    let (table, _) = &rebuilt[0];
    sqlx::query(&format!(
        "DELETE FROM {table} WHERE ctid = (SELECT min(ctid) FROM {table})"
    ))
    .execute(&restored.pool)
    .await
    .unwrap();
    assert_ne!(snapshot(&restored.pool, &all).await, live);
    sqlx::query("DELETE FROM events WHERE position = (SELECT max(position) FROM events)")
        .execute(&restored.pool)
        .await
        .unwrap();
    assert_ne!(
        rows(&pool, "events").await,
        rows(&restored.pool, "events").await
    );
    assert!(table_differences(&pool, &restored.pool).await.len() >= 2);

    restored.drop().await;
    db.drop().await;
}
