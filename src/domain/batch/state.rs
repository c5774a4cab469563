//! A batch as its stream tells it: what it took, which files are written, and where each
//! certificate's Ladok delivery stands.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::events::{BatchCreated, BatchEvent, DeliveryFailed};
use crate::domain::ids::CertificateId;

/// A batch as its stream tells it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchState {
    pub created: Option<BatchCreated>,
    /// File name → (sha256, size), for every BatchFileWritten.
    pub written: BTreeMap<String, (String, u64)>,
    /// The written files' names in the order they were written (the manifest last).
    pub file_order: Vec<String>,
    pub completed: bool,
    /// Certificate → Ladok's merit uid, for every CertificateDelivered.
    pub delivered: BTreeMap<CertificateId, String>,
    /// The last failure of each certificate not delivered since.
    pub failed: BTreeMap<CertificateId, DeliveryFailed>,
    /// Certificates that runs tried and failed to deliver, or deferred because Ladok had failed:
    /// why, since when, how many runs. Until delivered or queued again by the registrar.
    pub waiting: BTreeMap<CertificateId, Waiting>,
    /// Ladok's merit of each certificate whose merit was created (MeritCreated), delivered or not.
    pub merits: BTreeMap<CertificateId, String>,
    /// Certificates for which a Ladok write was started (DeliveryStarted) whose effect no later
    /// event settled: a successor looks in Ladok before it writes again.
    pub in_doubt: BTreeMap<CertificateId, WriteStarted>,
    /// Who acknowledged the batch (the first acknowledgement), if anyone did.
    pub acknowledged_by: Option<String>,
    /// The stream's version: the next append expects exactly this.
    pub version: i32,
}

/// A Ladok write recorded as about to be sent, not settled since by Ladok's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteStarted {
    pub operation: String,
    /// Until when the request may still be in flight (whatever was recorded about it meanwhile: a
    /// request whose answer the writer gave up on may still be carried out by Ladok).
    pub in_flight_until: DateTime<Utc>,
}

/// Why a certificate of the batch is still not in Ladok.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// The reason code of the last failed or deferred attempt.
    pub reason: String,
    /// When the first of them was recorded.
    pub since: DateTime<Utc>,
    /// Runs that failed to deliver it (tried it, or deferred it because Ladok had failed).
    pub attempts: u32,
}

impl BatchState {
    /// Applies the event recorded at `at` as the stream's `version`.
    pub fn evolve(&mut self, event: BatchEvent, version: i32, at: DateTime<Utc>) {
        self.version = version;
        let wait =
            |waiting: &mut BTreeMap<CertificateId, Waiting>, id: CertificateId, reason: &str| {
                let entry = waiting.entry(id).or_insert_with(|| Waiting {
                    reason: String::new(),
                    since: at,
                    attempts: 0,
                });
                entry.reason = reason.to_owned();
                entry.attempts += 1;
            };
        match event {
            BatchEvent::BatchCreated(created) => self.created = Some(created),
            BatchEvent::BatchFileWritten(file) => {
                if !self.written.contains_key(&file.name) {
                    self.file_order.push(file.name.clone());
                }
                self.written.insert(file.name, (file.sha256, file.size));
            }
            BatchEvent::BatchCompleted(_) => self.completed = true,
            BatchEvent::CertificateDelivered(d) => {
                self.failed.remove(&d.certificate_id);
                self.waiting.remove(&d.certificate_id);
                self.in_doubt.remove(&d.certificate_id);
                self.delivered.insert(d.certificate_id, d.ladok_merit_uid);
            }
            BatchEvent::DeliveryFailed(f) => {
                // A write stays in doubt unless Ladok refused it (or it was never sent): a request
                // without an answer may still have taken effect.
                if f.settles_write {
                    self.in_doubt.remove(&f.certificate_id);
                }
                wait(&mut self.waiting, f.certificate_id, &f.reason);
                self.failed.insert(f.certificate_id, f);
            }
            BatchEvent::DeliveryStarted(started) => {
                if let Some(uid) = started.ladok_merit_uid {
                    self.merits.insert(started.certificate_id, uid);
                }
                let in_flight = i64::try_from(started.in_flight_secs).unwrap_or(i64::MAX);
                self.in_doubt.insert(
                    started.certificate_id,
                    WriteStarted {
                        operation: started.operation,
                        in_flight_until: at
                            .checked_add_signed(chrono::Duration::seconds(in_flight))
                            .unwrap_or(DateTime::<Utc>::MAX_UTC),
                    },
                );
            }
            BatchEvent::MeritCreated(created) => {
                // The creation is settled; an attestation is a write of its own.
                self.in_doubt.remove(&created.certificate_id);
                self.merits
                    .insert(created.certificate_id, created.ladok_merit_uid);
            }
            BatchEvent::DeliveriesDeferred(d) => {
                for id in d.certificate_ids {
                    if !self.delivered.contains_key(&id) {
                        wait(&mut self.waiting, id, &d.reason);
                    }
                }
            }
            BatchEvent::BatchAcknowledged(a) => {
                self.acknowledged_by.get_or_insert(a.by);
            }
            BatchEvent::RedeliveryRequested(r) => {
                // The failures no longer count: the next run delivers these again.
                for id in &r.certificate_ids {
                    self.failed.remove(id);
                    self.waiting.remove(id);
                }
            }
        }
    }
}
