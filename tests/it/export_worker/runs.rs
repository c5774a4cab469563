//! The export run as the service and the command line start it: the scheduler, and `cim export run`
//! killed in the middle of a batch or a delivery.

use super::*;
use cim::log;

#[tokio::test]
async fn the_scheduler_fires_the_export_run() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), log::upcasters());
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
    let store = EventStore::new(db.pool.clone(), log::upcasters());
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
    let (db, store, out, fake, approved) = delivery(40).await;
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
