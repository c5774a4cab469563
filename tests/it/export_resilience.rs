//! One certificate never stops the export worker: a holder erased while their certificate's batch is
//! being written does not jam it (the batch is finished, the certificate keeps its CSV row with the
//! Ladok UID, loses the files that name the holder, and the manifest says so; later batches follow),
//! and neither does a certificate whose events can no longer be read.

use crate::support;
use cim::log;

use support::certificates::{approval, approve, metadata};

use std::path::Path;

use cim::domain::PortfolioEvent;
use cim::domain::portfolio::CertificateApproved;
use cim::export::worker::batch;
use cim::export::worker::{ExportLock, ExportWorker, RunOutcome, Step, WorkerConfig};
use cim::export::{ExportSettings, LADOK_CSV_FILE_NAME, MANIFEST_FILE_NAME};
use cim::media::MediaStore;
use cim::store::{EventStore, ExpectedVersion};
use sha2::{Digest, Sha256};

/// Records an approval whose personal part is sealed with the key of its student, as the command
/// handler does, so that erasing the student shreds it.
async fn approve_erasable(store: &EventStore, i: usize) -> CertificateApproved {
    let a = approval(i);
    let event = PortfolioEvent::CertificateApproved(a.clone());
    let (event_type, payload) = event.to_payload();
    let new = log::encode(event_type, 1, payload, Some(*a.student_uid.as_uuid()));
    store
        .append(
            &a.portfolio_id.stream_id(),
            ExpectedVersion::Any,
            &[new],
            &metadata(),
        )
        .await
        .unwrap();
    a
}

async fn erase(store: &EventStore, media: &MediaStore, who: &CertificateApproved) {
    support::erase_student(store, media, who.student_uid).await;
}

/// The folder's files against its manifest: every other file listed with its size and hash,
/// nothing else on disk. Returns the manifest.
fn check_folder(dir: &Path) -> serde_json::Value {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(MANIFEST_FILE_NAME)).unwrap()).unwrap();
    let mut listed: Vec<String> = Vec::new();
    for f in manifest["files"].as_array().unwrap() {
        let name = f["name"].as_str().unwrap();
        let bytes = std::fs::read(dir.join(name)).unwrap();
        assert_eq!(f["sha256"], hex::encode(Sha256::digest(&bytes)), "{name}");
        assert_eq!(f["size"], bytes.len(), "{name}");
        listed.push(name.to_owned());
    }
    listed.push(MANIFEST_FILE_NAME.to_owned());
    listed.sort();
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, listed, "exactly the manifest's files");
    manifest
}

/// The CSV's rows as (certificate_id, ladok_uid, identity_number, family_name).
fn csv_rows(dir: &Path) -> Vec<(String, String, String, String)> {
    let bytes = std::fs::read(dir.join(LADOK_CSV_FILE_NAME)).unwrap();
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let headers = reader.headers().unwrap().clone();
    let at = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (id, uid, number, family) = (
        at("certificate_id"),
        at("ladok_uid"),
        at("identity_number"),
        at("family_name"),
    );
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (
                r[id].to_owned(),
                r[uid].to_owned(),
                r[number].to_owned(),
                r[family].to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_holder_erased_mid_batch_does_not_stop_this_batch_or_the_next() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), log::upcasters());
    let out = tempfile::tempdir().unwrap();
    let media_dir = tempfile::tempdir().unwrap();
    let media = MediaStore::new(media_dir.path(), 1 << 20);
    let first = approve(&store, 0).await;
    let erased = approve_erasable(&store, 1).await;
    let last = approve(&store, 2).await;
    support::settle(&store).await;

    // The batch is created and its CSV written (with the holder's data, as it stood), then the
    // worker dies and the holder is erased before the other files are written.
    let batch_id = {
        let mut lock = ExportLock::try_acquire(&db.pool).await.unwrap().unwrap();
        let mut worker = ExportWorker::new(store.clone(), one_file_per_step(out.path()));
        let Step::Created { batch_id, .. } = worker.step(&mut lock).await.unwrap() else {
            panic!("the first step creates the batch")
        };
        let written = worker.step(&mut lock).await.unwrap();
        assert_eq!(
            written,
            Step::FilesWritten {
                batch_id,
                names: vec![LADOK_CSV_FILE_NAME.to_owned()]
            }
        );
        lock.release().await;
        batch_id
    };
    erase(&store, &media, &erased).await;

    // Every later run used to fail on this batch (HolderErased); now the batch is finished.
    let run = ExportWorker::new(store.clone(), WorkerConfig::new(out.path()))
        .run_once()
        .await
        .unwrap();
    let RunOutcome::Ran { completed, .. } = run else {
        panic!("the only worker got the lock")
    };
    assert_eq!(completed, [batch_id]);
    let folder = out.path().join(batch_id.to_string());
    let manifest = check_folder(&folder);
    assert_eq!(
        manifest["personal_data_erased"],
        serde_json::json!([erased.certificate_id.to_string()])
    );
    assert_eq!(manifest["counts"]["certificates"], 3);
    // The CSV was written before the erasure and is not rewritten; the other certificates have
    // their files, the erased holder's certificate has none that would name them.
    assert_eq!(csv_rows(&folder).len(), 3);
    for a in [&first, &last] {
        assert!(
            folder
                .join(format!("cim-{}-elmo.xml", a.certificate_id))
                .exists()
        );
    }
    for kind in ["elmo.xml", "ds-6.1.txt"] {
        let name = format!("cim-{}-{kind}", erased.certificate_id);
        assert!(!folder.join(name).exists(), "{kind} of the erased holder");
    }

    // Later batches go on, and an approval whose holder was erased before its batch was created is
    // recorded with the Ladok UID and empty personal cells.
    let next = approve(&store, 3).await;
    let erased_before = approve_erasable(&store, 4).await;
    support::settle(&store).await;
    erase(&store, &media, &erased_before).await;
    let run = ExportWorker::new(store.clone(), WorkerConfig::new(out.path()))
        .run_once()
        .await
        .unwrap();
    let RunOutcome::Ran { completed, .. } = run else {
        panic!("the only worker got the lock")
    };
    assert_eq!(completed.len(), 1);
    let folder = out.path().join(completed[0].to_string());
    let manifest = check_folder(&folder);
    assert_eq!(
        manifest["personal_data_erased"],
        serde_json::json!([erased_before.certificate_id.to_string()])
    );
    let mut rows = csv_rows(&folder);
    rows.sort();
    let mut expected = vec![
        (
            next.certificate_id.to_string(),
            next.student_uid.to_string(),
            next.personal
                .as_ref()
                .unwrap()
                .identity_number
                .as_str()
                .to_owned(),
            next.personal
                .as_ref()
                .unwrap()
                .name
                .family_name()
                .to_owned(),
        ),
        (
            erased_before.certificate_id.to_string(),
            erased_before.student_uid.to_string(),
            String::new(),
            String::new(),
        ),
    ];
    expected.sort();
    assert_eq!(rows, expected);
    db.drop().await;
}

#[tokio::test]
async fn a_resumed_batch_renders_the_same_manifest_after_an_erasure() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), log::upcasters());
    let out = tempfile::tempdir().unwrap();
    let media_dir = tempfile::tempdir().unwrap();
    let media = MediaStore::new(media_dir.path(), 1 << 20);
    let erased = approve_erasable(&store, 0).await;
    approve(&store, 1).await;
    support::settle(&store).await;

    // The CSV and the erased holder's DS are written before the erasure, then the worker dies.
    let mut lock = ExportLock::try_acquire(&db.pool).await.unwrap().unwrap();
    let mut worker = ExportWorker::new(store.clone(), one_file_per_step(out.path()));
    let Step::Created { batch_id, .. } = worker.step(&mut lock).await.unwrap() else {
        panic!("the first step creates the batch")
    };
    worker.step(&mut lock).await.unwrap();
    let Step::FilesWritten { names, .. } = worker.step(&mut lock).await.unwrap() else {
        panic!("a file")
    };
    assert_eq!(names, [format!("cim-{}-ds-6.1.txt", erased.certificate_id)]);
    lock.release().await;
    erase(&store, &media, &erased).await;
    let run = ExportWorker::new(store.clone(), WorkerConfig::new(out.path()))
        .run_once()
        .await
        .unwrap();
    assert!(matches!(run, RunOutcome::Ran { completed, .. } if completed == [batch_id]));
    let folder = out.path().join(batch_id.to_string());

    // Rendering the batch again from its stream, as a run resumed at any later moment would (say
    // one that died before recording the manifest), gives the very bytes on disk.
    let commands = cim::app::CommandHandler::new(store.clone());
    let (state, _) = commands.load_batch(batch_id).await.unwrap();
    let created = state.created.as_ref().unwrap();
    let loaded = batch::load_batch(&store, created).await.unwrap();
    let files =
        batch::render(created, &loaded, &ExportSettings::default(), &state.written).unwrap();
    let mut compared = 0;
    for file in &files {
        // The CSV and the DS were written before the erasure and keep those bytes; everything
        // written after it must render the same again.
        let before = file.name == LADOK_CSV_FILE_NAME
            || file.name.contains(&erased.certificate_id.to_string());
        if !before {
            let on_disk = std::fs::read(folder.join(&file.name)).unwrap();
            assert_eq!(on_disk, file.bytes, "{} renders the same", file.name);
            compared += 1;
        }
    }
    // The other certificate's DS and ELMO, and the manifest.
    assert_eq!(compared, 3);
    // The DS written before the erasure stays as written, and the manifest describes it as such.
    let manifest = check_folder(&folder);
    let listed: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(listed.contains(&format!("cim-{}-ds-6.1.txt", erased.certificate_id).as_str()));
    assert!(!listed.contains(&format!("cim-{}-elmo.xml", erased.certificate_id).as_str()));
    db.drop().await;
}

#[tokio::test]
async fn a_certificate_that_cannot_be_read_is_withheld_and_the_batch_finished() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), log::upcasters());
    let out = tempfile::tempdir().unwrap();
    let broken = approve(&store, 0).await;
    let fine = approve(&store, 1).await;
    support::settle(&store).await;
    let batch_id = {
        let mut lock = ExportLock::try_acquire(&db.pool).await.unwrap().unwrap();
        let mut worker = ExportWorker::new(store.clone(), WorkerConfig::new(out.path()));
        let Step::Created { batch_id, .. } = worker.step(&mut lock).await.unwrap() else {
            panic!("the first step creates the batch")
        };
        lock.release().await;
        batch_id
    };
    // The approval's stored payload no longer decodes (as after a bad migration or upcaster).
    sqlx::query(
        "UPDATE events SET payload = '{\"certificate_id\": 7}'::jsonb \
         WHERE stream_id = $1 AND event_type = 'CertificateApproved'",
    )
    .bind(broken.portfolio_id.stream_id())
    .execute(&db.pool)
    .await
    .unwrap();

    let run = ExportWorker::new(store.clone(), WorkerConfig::new(out.path()))
        .run_once()
        .await
        .unwrap();
    assert!(matches!(run, RunOutcome::Ran { completed, .. } if completed == [batch_id]));
    let folder = out.path().join(batch_id.to_string());
    let manifest = check_folder(&folder);
    assert_eq!(
        manifest["withheld"],
        serde_json::json!([{
            "certificate_id": broken.certificate_id.to_string(),
            "reason": "source_unreadable",
        }])
    );
    let rows = csv_rows(&folder);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, fine.certificate_id.to_string());
    assert!(
        folder
            .join(format!("cim-{}-elmo.xml", fine.certificate_id))
            .exists()
    );
    db.drop().await;
}

/// A worker that writes one file per step, so a test can stop it between any two files.
fn one_file_per_step(dir: &std::path::Path) -> WorkerConfig {
    WorkerConfig {
        files_per_step: 1,
        ..WorkerConfig::new(dir)
    }
}
