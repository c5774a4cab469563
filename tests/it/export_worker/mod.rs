//! The export worker against a real PostgreSQL and a real file system: batches hold every approved
//! certificate exactly once (also with two workers at once and after a worker dies mid-batch), their
//! files are complete and match the manifest, every ELMO document validates, and a revocation after
//! export goes out as a correction row in a later batch.

use crate::support;

use support::certificates::{approval, approve, cohort, record, revoke};
use support::ladok::{run, worker as ladok_worker};

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use cim::app;
use cim::domain::PortfolioEvent;
use cim::domain::ids::CertificateId;
use cim::export::worker::events::{BatchEvent, stream_id};
use cim::export::worker::{ExportLock, ExportWorker, RunOutcome, WorkerConfig, batch_folders};
use cim::export::{BatchId, LADOK_CSV_FILE_NAME, MANIFEST_FILE_NAME};
use cim::store::EventStore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

const ELMO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/formats/elmo");

fn worker(store: &EventStore, dir: &Path) -> ExportWorker {
    ExportWorker::new(store.clone(), WorkerConfig::new(dir))
}

/// Every batch's events, by batch id.
async fn batch_events(store: &EventStore) -> BTreeMap<BatchId, Vec<BatchEvent>> {
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT batch_id FROM export_batches")
        .fetch_all(store.pool())
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for id in ids {
        let id = BatchId::new(id);
        let events = store.read_stream(&stream_id(id), 0).await.unwrap();
        out.insert(
            id,
            events
                .iter()
                .map(|e| BatchEvent::from_recorded(e).unwrap())
                .collect(),
        );
    }
    out
}

/// How many batches took each certificate (as a record or as a revocation).
fn taken(
    batches: &BTreeMap<BatchId, Vec<BatchEvent>>,
) -> (HashMap<CertificateId, usize>, HashMap<CertificateId, usize>) {
    let mut records = HashMap::new();
    let mut revocations = HashMap::new();
    for events in batches.values() {
        for e in events {
            if let BatchEvent::BatchCreated(c) = e {
                for item in &c.certificates {
                    *records.entry(item.certificate_id).or_insert(0) += 1;
                }
                for item in &c.revocations {
                    *revocations.entry(item.certificate_id).or_insert(0) += 1;
                }
            }
        }
    }
    (records, revocations)
}

/// Checks a batch folder from the disk: the manifest lists every other file with the right size and
/// hash, nothing else (no temporary file) is in the folder. Returns the CSV rows (action, certificate).
fn check_folder(dir: &Path) -> Vec<(String, String)> {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(MANIFEST_FILE_NAME)).unwrap()).unwrap();
    let listed = manifest["files"].as_array().unwrap();
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    let mut expected: Vec<String> = listed
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .chain([MANIFEST_FILE_NAME.to_owned()])
        .collect();
    expected.sort();
    assert_eq!(
        on_disk, expected,
        "exactly the manifest's files, no leftovers"
    );
    assert_eq!(manifest["counts"]["files"], listed.len());
    for f in listed {
        let bytes = std::fs::read(dir.join(f["name"].as_str().unwrap())).unwrap();
        assert_eq!(f["size"], bytes.len());
        assert_eq!(f["sha256"], hex::encode(Sha256::digest(&bytes)));
    }
    let csv = std::fs::read(dir.join(LADOK_CSV_FILE_NAME)).unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_slice());
    let headers = reader.headers().unwrap().clone();
    let action = headers.iter().position(|h| h == "action").unwrap();
    let id = headers.iter().position(|h| h == "certificate_id").unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[action].to_owned(), r[id].to_owned())
        })
        .collect()
}

/// xmllint as `shared/formats/elmo/README.md` runs it: offline, schemas resolved by the catalog.
fn xmllint(file: &Path) -> std::process::Output {
    let dir = PathBuf::from(ELMO_DIR).canonicalize().unwrap();
    Command::new("xmllint")
        .env("XML_CATALOG_FILES", dir.join("catalog.xml"))
        .args(["--noout", "--nonet", "--schema"])
        .arg(dir.join("schema.xsd"))
        .arg(file)
        .output()
        .expect("xmllint is installed (libxml2-utils)")
}

#[tokio::test]
async fn a_batch_holds_every_new_certificate_with_complete_files_and_nothing_twice() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), app::upcasters());
    let out = tempfile::tempdir().unwrap();
    let mut approved = Vec::new();
    for i in 0..12 {
        approved.push(approve(&store, i).await);
    }
    // One approval whose holder data was erased: still recorded (Ladok must get the merit), with
    // the erased cells empty and no ELMO or DS, and the manifest says so.
    let mut erased = approval(99);
    erased.personal = None;
    record(
        &store,
        erased.portfolio_id,
        PortfolioEvent::CertificateApproved(erased.clone()),
    )
    .await;

    support::settle(&store).await;
    let outcome = worker(&store, out.path()).run_once().await.unwrap();
    let RunOutcome::Ran {
        completed,
        files_written,
        ..
    } = outcome
    else {
        panic!("the only worker got the lock")
    };
    assert_eq!(completed.len(), 1);
    // CSV, DS and ELMO per certificate, manifest.
    assert_eq!(files_written, 1 + 2 * 12 + 1);

    let folders = batch_folders(out.path()).unwrap();
    assert_eq!(folders, [out.path().join(completed[0].to_string())]);
    let rows = check_folder(&folders[0]);
    let mut expected: Vec<(String, String)> = approved
        .iter()
        .chain([&erased])
        .map(|a| ("record".to_owned(), a.certificate_id.to_string()))
        .collect();
    let mut got = rows.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    for a in &approved {
        let elmo = folders[0].join(format!("cim-{}-elmo.xml", a.certificate_id));
        let lint = xmllint(&elmo);
        assert!(
            lint.status.success(),
            "{}",
            String::from_utf8_lossy(&lint.stderr)
        );
        assert!(
            folders[0]
                .join(format!("cim-{}-ds-6.1.txt", a.certificate_id))
                .exists()
        );
    }

    let batches = batch_events(&store).await;
    let events = &batches[&completed[0]];
    let BatchEvent::BatchCreated(created) = &events[0] else {
        panic!("a batch stream starts with BatchCreated")
    };
    assert!(created.refused.is_empty());
    assert_eq!(created.certificates.len(), 13);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folders[0].join(MANIFEST_FILE_NAME)).unwrap())
            .unwrap();
    assert_eq!(
        manifest["personal_data_erased"],
        serde_json::json!([erased.certificate_id.to_string()])
    );
    assert_eq!(manifest["counts"]["certificates"], 13);
    for name in ["elmo.xml", "ds-6.1.txt"] {
        let file = format!("cim-{}-{name}", erased.certificate_id);
        assert!(!folders[0].join(file).exists(), "no {name} names nobody");
    }
    assert!(matches!(events.last(), Some(BatchEvent::BatchCompleted(_))));
    // The manifest's hashes are the ones the events recorded.
    for e in events {
        if let BatchEvent::BatchFileWritten(f) = e {
            let bytes = std::fs::read(folders[0].join(&f.name)).unwrap();
            assert_eq!(f.sha256, hex::encode(Sha256::digest(&bytes)));
            assert_eq!(f.size, bytes.len() as u64);
        }
    }

    // A second run finds nothing new: no batch, no file.
    let again = worker(&store, out.path()).run_once().await.unwrap();
    assert_eq!(
        again,
        RunOutcome::Ran {
            completed: vec![],
            files_written: 0,
            delivered: 0,
            failed: 0,
        }
    );
    assert_eq!(batch_events(&store).await.len(), 1);

    // New approvals and a revocation of an exported certificate go into the next batch.
    let late = approve(&store, 20).await;
    revoke(&store, &approved[3]).await;
    support::settle(&store).await;
    let third = worker(&store, out.path()).run_once().await.unwrap();
    let RunOutcome::Ran {
        completed: second, ..
    } = third
    else {
        panic!()
    };
    assert_eq!(second.len(), 1);
    let mut rows = check_folder(&out.path().join(second[0].to_string()));
    rows.sort();
    let mut expected = vec![
        ("record".to_owned(), late.certificate_id.to_string()),
        ("revoke".to_owned(), approved[3].certificate_id.to_string()),
    ];
    expected.sort();
    assert_eq!(rows, expected);
    // A revoked certificate gets a correction row only: no ELMO, no DS.
    assert!(
        !out.path()
            .join(second[0].to_string())
            .join(format!("cim-{}-elmo.xml", approved[3].certificate_id))
            .exists()
    );
    db.drop().await;
}

#[tokio::test]
async fn an_approval_revoked_before_any_export_is_never_exported() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), app::upcasters());
    let out = tempfile::tempdir().unwrap();
    let kept = approve(&store, 1).await;
    let gone = approve(&store, 2).await;
    revoke(&store, &gone).await;
    support::settle(&store).await;
    worker(&store, out.path()).run_once().await.unwrap();
    let (records, revocations) = taken(&batch_events(&store).await);
    assert_eq!(records.keys().collect::<Vec<_>>(), [&kept.certificate_id]);
    assert!(revocations.is_empty());
    db.drop().await;
}

#[tokio::test]
async fn two_workers_at_once_export_every_certificate_exactly_once() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), app::upcasters());
    let out = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for round in 0..4 {
        for i in 0..5 {
            ids.push(approve(&store, round * 5 + i).await.certificate_id);
        }
        // Two workers (as in two `cim serve` processes), started together, twice per round.
        for _ in 0..2 {
            let (a, b) = tokio::join!(
                async { worker(&store, out.path()).run_once().await.unwrap() },
                async { worker(&store, out.path()).run_once().await.unwrap() },
            );
            assert!(
                matches!(a, RunOutcome::Busy) || matches!(b, RunOutcome::Busy) || {
                    // Both ran: one after the other, so the second found nothing.
                    a == RunOutcome::Ran {
                        completed: vec![],
                        files_written: 0,
                        delivered: 0,
                        failed: 0,
                    } || b
                        == RunOutcome::Ran {
                            completed: vec![],
                            files_written: 0,
                            delivered: 0,
                            failed: 0,
                        }
                },
                "{a:?} {b:?}"
            );
        }
    }
    // A last single run finishes whatever a Busy round left behind.
    support::settle(&store).await;
    worker(&store, out.path()).run_once().await.unwrap();
    let batches = batch_events(&store).await;
    let (records, _) = taken(&batches);
    assert_eq!(records.len(), ids.len());
    assert!(records.values().all(|&n| n == 1), "{records:?}");
    // And on disk: every certificate in exactly one CSV.
    let mut in_csv: HashMap<String, usize> = HashMap::new();
    for folder in batch_folders(out.path()).unwrap() {
        for (_, id) in check_folder(&folder) {
            *in_csv.entry(id).or_insert(0) += 1;
        }
    }
    assert_eq!(in_csv.len(), ids.len());
    assert!(in_csv.values().all(|&n| n == 1));
    db.drop().await;
}

#[tokio::test]
async fn a_worker_stopped_between_files_is_finished_by_the_next_run_without_duplicates() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), app::upcasters());
    let out = tempfile::tempdir().unwrap();
    for i in 0..6 {
        approve(&store, i).await;
    }
    support::settle(&store).await;
    // The first worker creates the batch and writes three files, then dies (its task and lock
    // connection are dropped, as when a process is killed).
    {
        let mut lock = ExportLock::try_acquire(&db.pool).await.unwrap().unwrap();
        let mut first = worker(&store, out.path());
        for _ in 0..4 {
            first.step(&mut lock).await.unwrap();
        }
        // A crash after a file reached the disk but before its event: a half-written temporary file
        // and a complete-looking final file the log does not know about yet.
        let batch = batch_folders(out.path()).unwrap().remove(0);
        std::fs::write(batch.join(".manifest.json.partial"), b"{\"half").unwrap();
    }
    assert!(
        !batch_folders(out.path()).unwrap()[0]
            .join(MANIFEST_FILE_NAME)
            .exists()
    );

    support::settle(&store).await;
    let outcome = worker(&store, out.path()).run_once().await.unwrap();
    let RunOutcome::Ran {
        completed,
        files_written,
        ..
    } = outcome
    else {
        panic!()
    };
    assert_eq!(completed.len(), 1);
    // 14 files in all (CSV, 6 × DS and ELMO, manifest); 3 were written before the crash.
    assert_eq!(files_written, 14 - 3);
    let folder = batch_folders(out.path()).unwrap().remove(0);
    // The temporary file of the crashed write was replaced by the finished manifest.
    assert_eq!(check_folder(&folder).len(), 6);
    let events = &batch_events(&store).await[&completed[0]];
    let mut names: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            BatchEvent::BatchFileWritten(f) => Some(f.name.as_str()),
            _ => None,
        })
        .collect();
    let total = names.len();
    names.sort();
    names.dedup();
    assert_eq!((total, names.len()), (14, 14), "each file recorded once");
    db.drop().await;
}

#[tokio::test]
async fn workers_aborted_at_random_moments_still_export_everything_once() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), app::upcasters());
    let out = tempfile::tempdir().unwrap();
    let mut count = 0;
    for round in 0..3u64 {
        for i in 0..4 {
            approve(&store, round as usize * 4 + i).await;
            count += 1;
        }
        // Abort a running worker after a few milliseconds: somewhere between two steps, or inside one.
        let store2 = store.clone();
        let dir = out.path().to_owned();
        let task = tokio::spawn(async move { worker(&store2, &dir).run_once().await });
        tokio::time::sleep(std::time::Duration::from_millis(5 + round * 7)).await;
        task.abort();
        let _ = task.await;
    }
    support::settle(&store).await;
    // The aborted task's lock connection may take a moment to close: retry while Busy.
    let mut finished = false;
    for _ in 0..50 {
        if let RunOutcome::Ran { .. } = worker(&store, out.path()).run_once().await.unwrap() {
            finished = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(finished);
    let unfinished: i64 =
        sqlx::query_scalar("SELECT count(*) FROM export_batches WHERE completed_at IS NULL")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(unfinished, 0);
    let (records, _) = taken(&batch_events(&store).await);
    assert_eq!(records.len(), count);
    assert!(records.values().all(|&n| n == 1));
    let mut rows = 0;
    for folder in batch_folders(out.path()).unwrap() {
        rows += check_folder(&folder).len();
    }
    assert_eq!(rows, count);
    db.drop().await;
}

// ---------------------------------------------------------------------------------------------
// Delivery to Ladok, against the fake Ladok (a real HTTPS server with mutual TLS).

use cim::export::fake_ladok::{FakeLadok, Fault};
use cim::export::worker::ladok::{LadokClient, LadokError};

/// The merits the fake holds (withdrawn ones too), by the certificate id in their marker.
fn merits_by_reference(fake: &FakeLadok) -> HashMap<String, Vec<serde_json::Value>> {
    let mut out: HashMap<String, Vec<serde_json::Value>> = HashMap::new();
    for m in fake.merits() {
        let mut merit = m.merit.clone();
        merit["student_uid"] = serde_json::Value::String(m.student_uid.clone());
        merit["withdrawn"] = serde_json::Value::Bool(m.withdrawn);
        out.entry(FakeLadok::certificate_of(&m.merit).unwrap())
            .or_default()
            .push(merit);
    }
    out
}

/// Every delivery event of every batch: (certificate, Some(merit uid) or None for a failure).
async fn deliveries(store: &EventStore) -> Vec<BatchEvent> {
    batch_events(store)
        .await
        .into_values()
        .flatten()
        .filter(|e| {
            matches!(
                e,
                BatchEvent::CertificateDelivered(_) | BatchEvent::DeliveryFailed(_)
            )
        })
        .collect()
}

#[tokio::test]
async fn every_certificate_becomes_one_attested_merit_and_a_second_run_adds_none() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), app::upcasters());
    let out = tempfile::tempdir().unwrap();
    let fake = FakeLadok::start().await.unwrap();
    let approved = cohort(&store, 4).await;

    let mut worker = ladok_worker(&store, out.path(), Some(fake.config()));
    assert_eq!(run(&mut worker).await, (4, 0));
    let merits = merits_by_reference(&fake);
    assert_eq!(merits.len(), 4);
    for a in &approved {
        let m = &merits[&a.certificate_id.to_string()];
        assert_eq!(m.len(), 1);
        // Under the portfolio's student, named in Swedish and English, attested with the
        // program's decision, and left for an administrator to allow in a degree certificate.
        assert_eq!(m[0]["student_uid"], a.student_uid.to_string());
        assert_eq!(m[0]["Benamning"], "Certifikat för internationella meriter");
        assert_eq!(
            m[0]["AlternativBenamning"],
            "Certificate of International Merits"
        );
        assert_eq!(m[0]["Attesterad"], true);
        assert_eq!(m[0]["TillatenIBevis"], false);
        assert_eq!(m[0]["Examinationsdatum"], a.decided_on.to_string());
        assert_eq!(m[0]["Beslut"]["Beslutsdatum"], a.decided_on.to_string());
        assert_eq!(
            m[0]["Beslut"]["BeslutsfattareNamn"],
            a.decided_by.to_string()
        );
    }
    // The events name Ladok's merit uids.
    for e in deliveries(&store).await {
        let BatchEvent::CertificateDelivered(d) = e else {
            panic!("no failure expected: {e:?}")
        };
        assert_eq!(
            merits[&d.certificate_id.to_string()][0]["Uid"],
            d.ladok_merit_uid
        );
    }

    // A second run (and a fresh worker) creates nothing.
    assert_eq!(run(&mut worker).await, (0, 0));
    assert_eq!(
        run(&mut ladok_worker(&store, out.path(), Some(fake.config()))).await,
        (0, 0)
    );
    assert_eq!(fake.merits().len(), 4);
    let settled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM export_batches WHERE deliveries_settled_at IS NOT NULL",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(settled, 1);
    db.drop().await;
}

#[tokio::test]
async fn server_errors_and_a_timeout_are_retried_and_then_succeed() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), app::upcasters());
    let out = tempfile::tempdir().unwrap();
    let fake = FakeLadok::start().await.unwrap();
    cohort(&store, 3).await;
    let mut config = fake.config();
    config.timeout = std::time::Duration::from_millis(700);
    fake.push_faults([
        Fault::ServerError,
        Fault::ServerError,
        Fault::Hang(std::time::Duration::from_secs(3)),
        Fault::ServerError,
    ]);
    assert_eq!(
        run(&mut ladok_worker(&store, out.path(), Some(config))).await,
        (3, 0)
    );
    let merits = merits_by_reference(&fake);
    assert_eq!(merits.len(), 3);
    assert!(merits.values().all(|m| m.len() == 1));
    db.drop().await;
}

#[tokio::test]
async fn a_ladok_that_keeps_timing_out_fails_the_run_retryably_and_the_next_run_delivers() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), app::upcasters());
    let out = tempfile::tempdir().unwrap();
    let fake = FakeLadok::start().await.unwrap();
    cohort(&store, 3).await;
    let mut config = fake.config();
    config.timeout = std::time::Duration::from_millis(500);
    config.retry.max_attempts = 2;
    fake.push_faults([Fault::Hang(std::time::Duration::from_secs(2)); 2]);
    // One certificate fails after its retries; Ladok is down, so the others wait for the next run.
    assert_eq!(
        run(&mut ladok_worker(&store, out.path(), Some(config.clone()))).await,
        (0, 1)
    );
    let failures = deliveries(&store).await;
    let [BatchEvent::DeliveryFailed(f)] = failures.as_slice() else {
        panic!("{failures:?}")
    };
    assert_eq!((f.reason.as_str(), f.retryable), ("unavailable", true));
    assert_eq!(
        run(&mut ladok_worker(&store, out.path(), Some(config))).await,
        (3, 0)
    );
    assert_eq!(fake.merits().len(), 3);
    db.drop().await;
}

#[tokio::test]
async fn a_rule_error_is_recorded_on_its_row_and_the_others_are_delivered() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), app::upcasters());
    let out = tempfile::tempdir().unwrap();
    let fake = FakeLadok::start().await.unwrap();
    let approved = cohort(&store, 4).await;
    let refused = approved[1].certificate_id;
    fake.rule_error_for(&refused.to_string(), "commons.fel.grupp.domanregel");

    let mut worker = ladok_worker(&store, out.path(), Some(fake.config()));
    assert_eq!(run(&mut worker).await, (3, 1));
    let failure = deliveries(&store)
        .await
        .into_iter()
        .find_map(|e| match e {
            BatchEvent::DeliveryFailed(f) => Some(f),
            _ => None,
        })
        .unwrap();
    assert_eq!(failure.certificate_id, refused);
    assert_eq!(failure.reason, "rule_error");
    assert_eq!(
        failure.felgrupp.as_deref(),
        Some("commons.fel.grupp.domanregel")
    );
    assert!(!failure.retryable);
    assert!(!merits_by_reference(&fake).contains_key(&refused.to_string()));
    // A rule error waits for a person: the next run does not try again.
    let before = fake.requests().len();
    assert_eq!(run(&mut worker).await, (0, 0));
    assert_eq!(fake.requests().len(), before);
    db.drop().await;
}

#[tokio::test]
async fn an_html_login_page_is_an_authentication_failure_and_stops_the_deliveries() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), app::upcasters());
    let out = tempfile::tempdir().unwrap();
    let fake = FakeLadok::start().await.unwrap();
    cohort(&store, 3).await;
    fake.push_faults([Fault::HtmlLoginPage]);
    let mut worker = ladok_worker(&store, out.path(), Some(fake.config()));
    assert_eq!(run(&mut worker).await, (0, 1));
    let failures = deliveries(&store).await;
    let [BatchEvent::DeliveryFailed(f)] = failures.as_slice() else {
        panic!("{failures:?}")
    };
    assert_eq!((f.reason.as_str(), f.retryable), ("authentication", true));
    // Once the session works again, the next run delivers everything.
    assert_eq!(run(&mut worker).await, (3, 0));
    assert_eq!(fake.merits().len(), 3);
    db.drop().await;
}

#[tokio::test]
async fn a_merit_whose_answer_was_lost_is_found_by_its_marker_not_created_again() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), app::upcasters());
    let out = tempfile::tempdir().unwrap();
    let fake = FakeLadok::start().await.unwrap();
    let approved = cohort(&store, 3).await;
    // The first certificate's student lookup is answered; its creation is carried out by Ladok,
    // but the answer never reaches the worker (what a crash between Ladok's 201 and our commit
    // leaves behind: a merit in Ladok that the log does not name).
    let config = fake.config();
    fake.push_faults([
        Fault::Pass,
        Fault::Pass,
        Fault::LoseAnswer(config.timeout * 2),
    ]);
    assert_eq!(
        run(&mut ladok_worker(&store, out.path(), Some(config.clone()))).await,
        (0, 1)
    );
    assert_eq!(fake.merits().len(), 1, "Ladok created the merit");
    // Once the lost request cannot be in flight any more, the next run looks for the merit by
    // its marker, finds it, and attests it.
    tokio::time::sleep(config.in_flight_bound()).await;
    assert_eq!(
        run(&mut ladok_worker(&store, out.path(), Some(config))).await,
        (3, 0)
    );
    let merits = merits_by_reference(&fake);
    assert_eq!(merits.len(), 3);
    assert!(
        merits
            .values()
            .all(|m| m.len() == 1 && m[0]["Attesterad"] == true)
    );
    let recorded = deliveries(&store)
        .await
        .into_iter()
        .find_map(|e| match e {
            BatchEvent::CertificateDelivered(d)
                if d.certificate_id == approved[0].certificate_id =>
            {
                Some(d.ladok_merit_uid)
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(
        merits[&approved[0].certificate_id.to_string()][0]["Uid"],
        recorded
    );
    db.drop().await;
}

#[tokio::test]
async fn two_workers_with_ladok_at_once_deliver_every_certificate_exactly_once() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), app::upcasters());
    let out = tempfile::tempdir().unwrap();
    let fake = FakeLadok::start().await.unwrap();
    cohort(&store, 6).await;
    let (a, b) = tokio::join!(
        async {
            ladok_worker(&store, out.path(), Some(fake.config()))
                .run_once()
                .await
                .unwrap()
        },
        async {
            ladok_worker(&store, out.path(), Some(fake.config()))
                .run_once()
                .await
                .unwrap()
        },
    );
    // Whoever did not get the lock, or came second, delivers the rest (nothing).
    let _ = (a, b);
    run(&mut ladok_worker(&store, out.path(), Some(fake.config()))).await;
    let merits = merits_by_reference(&fake);
    assert_eq!(merits.len(), 6);
    assert!(merits.values().all(|m| m.len() == 1));
    let delivered = deliveries(&store).await;
    assert_eq!(delivered.len(), 6, "{delivered:?}");
    db.drop().await;
}

#[tokio::test]
async fn a_revocation_after_delivery_is_a_correction_row_and_a_withdrawal_in_ladok() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), app::upcasters());
    let out = tempfile::tempdir().unwrap();
    let fake = FakeLadok::start().await.unwrap();
    let approved = cohort(&store, 2).await;
    let mut worker = ladok_worker(&store, out.path(), Some(fake.config()));
    assert_eq!(run(&mut worker).await, (2, 0));

    revoke(&store, &approved[0]).await;
    support::settle(&store).await;
    let outcome = worker.run_once().await.unwrap();
    let RunOutcome::Ran {
        completed,
        delivered,
        failed,
        ..
    } = outcome
    else {
        panic!()
    };
    assert_eq!((completed.len(), delivered, failed), (1, 1, 0));
    let rows = check_folder(&out.path().join(completed[0].to_string()));
    assert_eq!(
        rows,
        [("revoke".to_owned(), approved[0].certificate_id.to_string())]
    );
    let merits = merits_by_reference(&fake);
    let revoked = &merits[&approved[0].certificate_id.to_string()];
    assert_eq!(revoked.len(), 1, "withdrawn, not created again");
    assert_eq!(revoked[0]["withdrawn"], true);
    let kept = &merits[&approved[1].certificate_id.to_string()];
    assert_eq!(kept[0]["withdrawn"], false);
    assert_eq!(kept[0]["Attesterad"], true);
    // The withdrawal carried the revocation as its decision: a `Beslut`, nothing else.
    let withdrawal = fake
        .received()
        .into_iter()
        .find(|r| r.root.ty.name == "Beslut")
        .unwrap();
    assert!(withdrawal.body["Beslutsdatum"].is_string());
    assert!(withdrawal.body["BeslutsfattareNamn"].is_string());
    db.drop().await;
}

#[tokio::test]
async fn the_fake_ladok_refuses_a_client_certificate_it_did_not_issue() {
    let fake = FakeLadok::start().await.unwrap();
    let mut config = fake.config_with_foreign_certificate();
    config.retry.max_attempts = 1;
    let client = LadokClient::new(config).unwrap();
    let err = client.student_by_pnr("199001011239").await.unwrap_err();
    assert!(matches!(err, LadokError::Unavailable(_)), "{err:?}");
    assert!(fake.rejected_handshakes() >= 1);
    assert!(fake.requests().is_empty());
    // The right certificate gets through.
    let client = LadokClient::new(fake.config()).unwrap();
    assert_eq!(
        client.student_by_pnr("199001011239").await.unwrap().uid,
        FakeLadok::student_uid("199001011239")
    );
    // ... and a request without the service's media type is refused.
    let raw = reqwest::Client::builder()
        .identity(
            reqwest::Identity::from_pkcs12_der(
                fake.client_pkcs12(),
                cim::export::fake_ladok::CLIENT_PASSWORD,
            )
            .unwrap(),
        )
        .add_root_certificate(reqwest::Certificate::from_pem(fake.ca_pem()).unwrap())
        .build()
        .unwrap();
    let url = fake
        .base_url()
        .join("studentinformation/student/personnummer/199001011239")
        .unwrap();
    let wrong = raw
        .get(url.clone())
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 406);
    let right = raw
        .get(url)
        .header("Accept", "application/vnd.ladok-studentinformation+json")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// The schedule and `cim export run`.

use cim::export::worker::schedule::{ExportScheduler, Schedule, run_export};

#[tokio::test]
async fn the_scheduler_fires_the_export_run() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), app::upcasters());
    let out = tempfile::tempdir().unwrap();
    // The plain job body, called directly, does what a scheduled run does.
    assert_eq!(
        run_export(&store, &WorkerConfig::new(out.path()))
            .await
            .unwrap(),
        RunOutcome::Ran {
            completed: vec![],
            files_written: 0,
            delivered: 0,
            failed: 0,
        }
    );
    cohort(&store, 2).await;
    let every_second = Schedule {
        cron: "* * * * * *".to_owned(),
        timezone: chrono_tz::Europe::Stockholm,
    };
    let scheduler =
        ExportScheduler::start(store.clone(), WorkerConfig::new(out.path()), &every_second)
            .await
            .unwrap();
    let mut written = false;
    for _ in 0..100 {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM export_batches WHERE completed_at IS NOT NULL",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        if done == 1 {
            written = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    scheduler.shutdown().await;
    assert!(written, "the scheduled run wrote the batch");
    db.drop().await;
}

fn export_run(db: &support::TestDb, dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cim"));
    command
        .args(["export", "run"])
        .env("DATABASE_URL", &db.url)
        .env("CIM_EXPORT_DIR", dir)
        .env_remove("CIM_LADOK_ENABLED")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
}

#[tokio::test]
async fn cim_export_run_killed_mid_batch_is_finished_by_the_next_run() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), app::upcasters());
    let out = tempfile::tempdir().unwrap();
    let approved = cohort(&store, 120).await;

    // Start `cim export run` and SIGKILL it once its batch folder is half written.
    let mut child = export_run(&db, out.path()).spawn().unwrap();
    let mut killed_mid_batch = false;
    for _ in 0..2000 {
        if let Some(folder) = batch_folders(out.path())
            .ok()
            .and_then(|f| f.into_iter().next())
        {
            let files = std::fs::read_dir(&folder).map(|d| d.count()).unwrap_or(0);
            if files >= 20 && !folder.join(MANIFEST_FILE_NAME).exists() {
                child.kill().unwrap();
                killed_mid_batch = true;
                break;
            }
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let _ = child.wait();
    assert!(
        killed_mid_batch,
        "the run finished before it could be killed"
    );
    assert!(
        !batch_folders(out.path()).unwrap()[0]
            .join(MANIFEST_FILE_NAME)
            .exists()
    );

    // The killed process's session (and lock) ends; the next run finishes the batch.
    let mut finished = None;
    for _ in 0..50 {
        let output = export_run(&db, out.path()).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        if stdout.contains("1 batch(es) completed") {
            finished = Some(stdout);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(finished.is_some(), "a later run completed the batch");

    let folders = batch_folders(out.path()).unwrap();
    assert_eq!(folders.len(), 1);
    let rows = check_folder(&folders[0]);
    assert_eq!(rows.len(), approved.len());
    let (records, _) = taken(&batch_events(&store).await);
    assert_eq!(records.len(), approved.len());
    let events = batch_events(&store).await.into_values().next().unwrap();
    let mut names: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            BatchEvent::BatchFileWritten(f) => Some(f.name.clone()),
            _ => None,
        })
        .collect();
    let total = names.len();
    names.sort();
    names.dedup();
    assert_eq!(total, names.len(), "no file recorded twice");
    assert_eq!(total, 1 + 2 * approved.len() + 1);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cim_export_run_killed_mid_delivery_delivers_every_certificate_once_on_the_next_run() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), app::upcasters());
    let out = tempfile::tempdir().unwrap();
    let fake = FakeLadok::start().await.unwrap();
    let approved = cohort(&store, 40).await;
    // The fake's client certificate and CA as files, configured as an operator would.
    let files = support::ladok::LadokFiles::write(&fake);
    let with_ladok = |command: &mut Command| {
        command.envs(files.env());
    };

    let mut command = export_run(&db, out.path());
    with_ladok(&mut command);
    command.env("CIM_LADOK_TIMEOUT_SECS", "2");
    let mut child = command.spawn().unwrap();
    let mut killed_mid_delivery = false;
    for _ in 0..5000 {
        let created = fake.merits().len();
        if created >= 5 {
            child.kill().unwrap();
            killed_mid_delivery = created < approved.len();
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let _ = child.wait();
    assert!(
        killed_mid_delivery,
        "the run finished before it could be killed"
    );

    // A run right after the kill delivers the rest, except a write the killed process may have
    // had in flight: that one waits until it cannot be in flight any more (twice the 2 s request
    // timeout and a second), then a run looks for it in Ladok by its marker.
    let next_run = async || {
        for _ in 0..50 {
            let mut command = export_run(&db, out.path());
            with_ladok(&mut command);
            command.env("CIM_LADOK_TIMEOUT_SECS", "2");
            // Off the runtime's threads: the fake Ladok answers on them meanwhile.
            let output = tokio::task::spawn_blocking(move || command.output())
                .await
                .unwrap()
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            assert!(
                output.status.success(),
                "{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            if !stdout.contains("another process is exporting") {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        false
    };
    let mut done = next_run().await;
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    done &= next_run().await;
    assert!(done);
    let merits = merits_by_reference(&fake);
    assert_eq!(merits.len(), approved.len());
    assert!(merits.values().all(|m| m.len() == 1), "no merit twice");
    let mut delivered: Vec<CertificateId> = deliveries(&store)
        .await
        .into_iter()
        .filter_map(|e| match e {
            BatchEvent::CertificateDelivered(d) => Some(d.certificate_id),
            _ => None,
        })
        .collect();
    let total = delivered.len();
    delivered.sort();
    delivered.dedup();
    assert_eq!((total, delivered.len()), (approved.len(), approved.len()));
    db.drop().await;
}
