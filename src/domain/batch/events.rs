//! The events of an export batch's stream, `export-batch-{batch id}`.
//!
//! The stream is the record of what the worker did: which certificates a batch took (and so which are
//! no longer "not yet exported"), which files were written with which hash, when the folder was
//! complete, and every delivery outcome. Nothing personal is in these events: certificates are named by
//! id, and the files' content is named by its hash.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::event_payload::domain_events;
use crate::domain::ids::{BatchId, CertificateId};

/// One certificate a batch took, and where its source events are: the worker renders the files from
/// the portfolio stream again when it resumes a batch, so the ids are enough.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchItem {
    pub certificate_id: CertificateId,
    /// The portfolio stream holding the CertificateApproved (and, for a revocation, CertificateRevoked).
    pub stream_id: String,
}

/// A certificate the batch could not take, and why (a machine-readable code, never personal data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedItem {
    pub certificate_id: CertificateId,
    /// e.g. `holder_erased`.
    pub reason: String,
}

/// The batch took these certificates (approvals to record) and revocations (corrections to send).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchCreated {
    pub batch_id: BatchId,
    /// The creation instant, also the `generated_at` of every file: a resumed batch renders the same
    /// bytes again.
    pub created_at: DateTime<Utc>,
    pub certificates: Vec<BatchItem>,
    pub revocations: Vec<BatchItem>,
    /// Approvals that were selected but not exported. Only batches created before an erased holder's
    /// certificate was exported without the erased data have any (reason `holder_erased`).
    #[serde(default)]
    pub refused: Vec<RefusedItem>,
}

/// One file of the folder is complete on disk under its final name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchFileWritten {
    pub name: String,
    /// Lower-case hex SHA-256 of the bytes, as the manifest states it.
    pub sha256: String,
    pub size: u64,
}

/// Every file, the manifest last, is written: the folder is final and immutable from here on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchCompleted {
    pub files: usize,
}

/// A Ladok write is about to be sent: recorded (through the export lock's own database session, so a
/// worker that lost its lock cannot record it) before the request leaves, so that whoever resumes
/// knows a write may have taken effect and looks for the merit by its marker before writing again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryStarted {
    pub certificate_id: CertificateId,
    /// `create`, `attest`, `correct` or `withdraw`.
    pub operation: String,
    /// The merit written to, once it exists.
    pub ladok_merit_uid: Option<String>,
    /// How long after this event the request may still be in flight: the writer sends it only
    /// within its request timeout of recording this, and the request lasts at most that timeout
    /// again (plus a second for clocks). Nobody writes for the certificate again before then.
    #[serde(default)]
    pub in_flight_secs: u64,
}

/// Ladok created the certificate's merit (not yet attested) and gave it this UID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeritCreated {
    pub certificate_id: CertificateId,
    pub ladok_merit_uid: String,
}

/// Ladok holds the merit as the certificate says: created and attested, or, for a revocation,
/// withdrawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateDelivered {
    pub certificate_id: CertificateId,
    pub ladok_merit_uid: String,
}

/// A delivery attempt failed. `retryable` failures are tried again by the next run; rule errors
/// (`felgrupp`) wait for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryFailed {
    pub certificate_id: CertificateId,
    /// Our code for the failure, e.g. `rule_error`, `authentication`, `unavailable`.
    pub reason: String,
    /// Ladok's error group, when Ladok named one.
    pub felgrupp: Option<String>,
    pub retryable: bool,
    /// The failure settles the write this run started for the certificate: Ladok answered it with
    /// a refusal (so it was not carried out), or it was never sent. A failure without an answer
    /// (a timeout, a lost connection, a 5xx) leaves the write in doubt until its in-flight bound.
    #[serde(default)]
    pub settles_write: bool,
}

/// Ladok as a whole failed during a run (unavailable, or our session refused) and the run stopped
/// delivering: these certificates of the batch, still open, were not tried by that run and wait for
/// the next. Recorded so that every waiting certificate says why, not only the one that was tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveriesDeferred {
    pub certificate_ids: Vec<CertificateId>,
    /// The reason code of the failure that stopped the run (`unavailable`, `authentication`).
    pub reason: String,
}

/// The registrar confirmed that they took the batch's folder (`POST /exports/batches/{id}/acknowledge`).
/// Recorded once per batch: a second acknowledgement changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAcknowledged {
    /// The registrar's staff id (the token's subject).
    pub by: String,
}

/// The registrar asked for these certificates' failed deliveries to be tried again
/// (`POST /exports/batches/{id}/redeliver`): their last DeliveryFailed no longer counts, so the next
/// run delivers them (also after a rule error, which runs otherwise leave alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeliveryRequested {
    pub by: String,
    pub certificate_ids: Vec<CertificateId>,
}

domain_events!(
    /// The events of a batch stream.
    BatchEvent {
        BatchCreated,
        BatchFileWritten,
        BatchCompleted,
        CertificateDelivered,
        DeliveryFailed,
        DeliveriesDeferred,
        BatchAcknowledged,
        RedeliveryRequested,
        DeliveryStarted,
        MeritCreated,
    }
);
