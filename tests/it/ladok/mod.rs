//! Ladok as its published schema has it, against the fake Ladok (a real HTTPS server that speaks
//! only what the schema has) and a real PostgreSQL:
//!
//! - every body the client sends, and what the fake answers, validates with `xmllint --nonet
//!   --schema` against Ladok's own XSDs in `../shared/formats/ladok/`; a field the schema lacks is
//!   refused by the client before sending and by the fake when sent;
//! - exactly once without a field for our id: a merit whose answer was lost is found by its marker
//!   on the student's last page; a write another worker may still have in flight is left alone
//!   until it cannot be, then found; an attested merit that says something else is corrected with
//!   Ladok's optimistic lock;
//! - the identity check: a student record that is not the portfolio's student is never written to;
//! - `cim ladok check` answers for every operation and writes nothing.

use crate::support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::certificates::cohort;
use support::ladok::{delivery, run, worker};

use cim::db::embedded::EmbeddedPostgres;
use cim::db::{self};
use cim::domain::BatchId;
use cim::domain::batch::{BatchEvent, DeliveryFailed, DeliveryStarted};
use cim::domain::portfolio::CertificateApproved;
use cim::export::worker::ladok::merit::{MeritContent, marker};
use cim::export::worker::ladok::schema::{self, Root};
use cim::export::worker::ladok::{Endpoint, Evidence, LadokClient, LadokError, Operation};
use cim::export::worker::{ExportLock, ExportWorker, Step, WorkerError};
use cim::export::{ExportCertificate, ExportSettings};
use cim::store::{EventStore, ExpectedVersion};
use cim_fake_ladok::{FakeLadok, Fault};

mod lost_lock;
mod markers;
mod xsd;

const LADOK_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/formats/ladok");

/// Validates `xml` against the schema of `root` exactly as `shared/formats/ladok/README.md` says.
fn assert_valid(root: Root, xml: &str) {
    let dir = PathBuf::from(LADOK_DIR)
        .canonicalize()
        .expect("the shared Ladok schema folder ../shared/formats/ladok exists");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), xml).unwrap();
    let out = Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(dir.join(schema::schema_file(root)))
        .arg(file.path())
        .output()
        .expect("xmllint is installed (libxml2-utils)");
    assert!(
        out.status.success(),
        "{} does not validate:\n{xml}\n{}",
        root.ty.name,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every body the fake received validates against Ladok's XSD.
fn assert_all_valid(fake: &FakeLadok) {
    for r in fake.received() {
        assert_valid(r.root, &schema::to_xml(r.root, &r.body).unwrap());
    }
}

/// The fake's merits carrying `approval`'s marker (withdrawn ones too).
fn merits_of(fake: &FakeLadok, approval: &CertificateApproved) -> Vec<Value> {
    fake.merits()
        .into_iter()
        .filter(|m| {
            FakeLadok::certificate_of(&m.merit) == Some(approval.certificate_id.to_string())
        })
        .map(|m| m.merit)
        .collect()
}

/// The one batch the worker wrote (without Ladok), to append to as a dead worker would have.
async fn only_batch(store: &EventStore) -> BatchId {
    let id: uuid::Uuid = sqlx::query_scalar("SELECT batch_id FROM export_batches")
        .fetch_one(store.pool())
        .await
        .unwrap();
    BatchId::new(id)
}

async fn append(store: &EventStore, batch: BatchId, event: BatchEvent) {
    store
        .append(
            &batch.stream_id(),
            ExpectedVersion::Any,
            &[cim::log::encode_batch(&event)],
            &support::certificates::metadata(),
        )
        .await
        .unwrap();
}

/// What a worker that died after sending the creation of `approval`'s merit left behind: the
/// write recorded as started (in flight for `in_flight_secs`), and the merit in Ladok (`ended`: the
/// worker also recorded that the request failed, as after a lost answer).
async fn dead_worker_created(
    store: &EventStore,
    fake: &FakeLadok,
    approval: &CertificateApproved,
    ended: bool,
    in_flight_secs: u64,
) -> String {
    let batch = only_batch(store).await;
    append(
        store,
        batch,
        BatchEvent::DeliveryStarted(DeliveryStarted {
            certificate_id: approval.certificate_id,
            operation: "create".to_owned(),
            ladok_merit_uid: None,
            in_flight_secs,
        }),
    )
    .await;
    if ended {
        append(
            store,
            batch,
            BatchEvent::DeliveryFailed(DeliveryFailed {
                certificate_id: approval.certificate_id,
                reason: "unavailable".to_owned(),
                felgrupp: None,
                retryable: true,
                settles_write: false,
            }),
        )
        .await;
    }
    let certificate = ExportCertificate::new(approval, None).unwrap();
    let body = MeritContent::new(&certificate, &ExportSettings::default()).create_body();
    fake.insert_merit(&approval.student_uid.to_string(), body)
}
