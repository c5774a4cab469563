//! The export worker against a real PostgreSQL and a real file system: batches hold every approved
//! certificate exactly once (also with two workers at once and after a worker dies mid-batch), their
//! files are complete and match the manifest, every ELMO document validates, and a revocation after
//! export goes out as a correction row in a later batch.

use crate::support;

use support::certificates::{approval, approve, cohort, record, revoke};
use support::ladok::{delivery, run, worker as ladok_worker};

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use cim::domain::BatchId;
use cim::domain::PortfolioEvent;
use cim::domain::batch::BatchEvent;
use cim::domain::ids::CertificateId;
use cim::export::worker::{ExportLock, ExportWorker, RunOutcome, WorkerConfig, batch_folders};
use cim::export::{LADOK_CSV_FILE_NAME, MANIFEST_FILE_NAME};
use cim::store::EventStore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use cim::export::worker::ladok::{LadokClient, LadokError};
use cim::export::worker::schedule::{ExportScheduler, Schedule, run_export};
use cim_fake_ladok::{FakeLadok, Fault};

mod batches;
mod delivery;
mod runs;

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
        let events = store.read_stream(&id.stream_id(), 0).await.unwrap();
        out.insert(
            id,
            events
                .iter()
                .map(|e| cim::log::decode_batch(e).unwrap())
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
