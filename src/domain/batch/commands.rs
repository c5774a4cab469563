//! What the export worker and the registrar ask of a batch.

use super::events::{
    BatchCreated, BatchFileWritten, CertificateDelivered, DeliveriesDeferred, DeliveryFailed,
    DeliveryStarted, MeritCreated,
};

/// A command on one batch. The worker's commands record what it did or is about to do (a file on
/// disk, a Ladok write); the registrar's acknowledge and ask for re-delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchCommand {
    /// The worker took these certificates from the log into a new batch.
    Create(BatchCreated),
    /// These files of the folder are complete on disk (one event each).
    RecordFiles(Vec<BatchFileWritten>),
    /// Every file is written, the manifest last.
    Complete { files: usize },
    /// A Ladok write for a certificate is about to be sent.
    StartWrite(DeliveryStarted),
    /// Ladok created the certificate's merit.
    RecordMerit(MeritCreated),
    /// Ladok holds the certificate's merit as the certificate says.
    RecordDelivered(CertificateDelivered),
    /// A delivery attempt failed.
    RecordFailure(DeliveryFailed),
    /// Ladok as a whole failed in a run: these open certificates wait for the next.
    Defer(DeliveriesDeferred),
    /// The registrar took the batch's folder.
    Acknowledge { by: String },
    /// The registrar asks for every delivery that failed for good to be tried again.
    RequestRedelivery { by: String },
}
