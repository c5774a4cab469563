//! Batches and their files: every new certificate once, complete files, revocations, and workers that
//! race, stop between files or are aborted at random.

use super::*;
use cim::log;

#[tokio::test]
async fn a_batch_holds_every_new_certificate_with_complete_files_and_nothing_twice() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), log::upcasters());
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
    // One step wrote and recorded every file but the manifest (one append), the manifest a step of
    // its own after them.
    let steps: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT command_id) FROM events \
         WHERE stream_id = $1 AND event_type = 'BatchFileWritten'",
    )
    .bind(completed[0].stream_id())
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(steps, 2);

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
    let store = EventStore::new(db.pool.clone(), log::upcasters());
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
    let store = EventStore::new(db.pool.clone(), log::upcasters());
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
    let store = EventStore::new(db.pool.clone(), log::upcasters());
    let out = tempfile::tempdir().unwrap();
    for i in 0..6 {
        approve(&store, i).await;
    }
    support::settle(&store).await;
    // The first worker creates the batch and writes three files, then dies (its task and lock
    // connection are dropped, as when a process is killed).
    {
        let mut lock = ExportLock::try_acquire(&db.pool).await.unwrap().unwrap();
        // One file per step, so that it can die between two files.
        let config = WorkerConfig {
            files_per_step: 1,
            ..WorkerConfig::new(out.path())
        };
        let mut first = ExportWorker::new(store.clone(), config);
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
    let store = EventStore::new(db.pool.clone(), log::upcasters());
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
