//! The fake Ladok as an operator configures the real one for a `cim` process: its client certificate
//! (PKCS#12) and CA written to files, and the `CIM_LADOK_*` settings that point at them.

use cim_fake_ladok::{CLIENT_PASSWORD, FakeLadok};
use std::ffi::OsString;
use std::path::PathBuf;

/// The files of one fake Ladok; removed when dropped.
#[derive(Debug)]
pub struct LadokFiles {
    _dir: tempfile::TempDir,
    base_url: String,
    pkcs12: PathBuf,
    ca: PathBuf,
}

impl LadokFiles {
    pub fn write(fake: &FakeLadok) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pkcs12 = dir.path().join("client.p12");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&pkcs12, fake.client_pkcs12()).unwrap();
        std::fs::write(&ca, fake.ca_pem()).unwrap();
        LadokFiles {
            _dir: dir,
            base_url: fake.base_url().to_string(),
            pkcs12,
            ca,
        }
    }

    /// The environment of a `cim` process that delivers to this Ladok.
    pub fn env(&self) -> Vec<(&'static str, OsString)> {
        vec![
            ("CIM_LADOK_ENABLED", "true".into()),
            ("CIM_LADOK_BASE_URL", self.base_url.clone().into()),
            ("CIM_LADOK_PKCS12", self.pkcs12.clone().into()),
            ("CIM_LADOK_PKCS12_PASSWORD", CLIENT_PASSWORD.into()),
            ("CIM_LADOK_CA", self.ca.clone().into()),
            ("CIM_LADOK_TIMEOUT_SECS", "5".into()),
        ]
    }
}

/// An export worker writing batches to `dir`, delivering to Ladok when `ladok` is given.
pub fn worker(
    store: &cim::store::EventStore,
    dir: &std::path::Path,
    ladok: Option<cim::export::worker::ladok::LadokConfig>,
) -> cim::export::worker::ExportWorker {
    let mut config = cim::export::worker::WorkerConfig::new(dir);
    config.ladok = ladok;
    cim::export::worker::ExportWorker::new(store.clone(), config)
}

/// One run of `worker`, the only one: (delivered, failed).
pub async fn run(worker: &mut cim::export::worker::ExportWorker) -> (usize, usize) {
    match worker.run_once().await.unwrap() {
        cim::export::worker::RunOutcome::Ran {
            delivered, failed, ..
        } => (delivered, failed),
        cim::export::worker::RunOutcome::Busy => panic!("the only worker got the lock"),
    }
}

/// What a delivery test starts from: a fresh database with `n` approved certificates (their events
/// as the command handler appends them), the store on it, an empty export folder and a fake Ladok.
pub async fn delivery(
    n: usize,
) -> (
    super::TestDb,
    cim::store::EventStore,
    tempfile::TempDir,
    FakeLadok,
    Vec<cim::domain::portfolio::CertificateApproved>,
) {
    let db = super::fresh().await;
    let store = cim::store::EventStore::new(db.pool.clone(), cim::log::upcasters());
    let approved = super::certificates::cohort(&store, n).await;
    let out = tempfile::tempdir().unwrap();
    let fake = FakeLadok::start().await.unwrap();
    (db, store, out, fake, approved)
}

/// A plain HTTP client that `fake` lets in (its client certificate, its CA), for requests the
/// service's own Ladok client would refuse to send.
pub fn raw_client(fake: &FakeLadok) -> reqwest::Client {
    reqwest::Client::builder()
        .identity(
            reqwest::Identity::from_pkcs12_der(fake.client_pkcs12(), CLIENT_PASSWORD).unwrap(),
        )
        .add_root_certificate(reqwest::Certificate::from_pem(fake.ca_pem()).unwrap())
        .build()
        .unwrap()
}
