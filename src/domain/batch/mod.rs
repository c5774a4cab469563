//! One export batch (stream `export-batch-{id}`): which certificates it took from the log, which
//! files of its folder are written, and where each certificate's Ladok delivery stands.
//!
//! Decided like the other aggregates: the export worker and the registrar send [`BatchCommand`]s,
//! [`decide`] checks them against the [`BatchState`] folded from the stream, and the command handler
//! appends the events. The worker does the I/O (files, Ladok) and asks to record its outcome; what
//! may be recorded when is decided here.

mod commands;
mod decide;
mod events;
pub mod manual;
mod state;

pub use commands::BatchCommand;
pub use decide::{decide, failed_for_good};
pub use events::{
    BatchAcknowledged, BatchCompleted, BatchCreated, BatchEvent, BatchFileWritten, BatchItem,
    CertificateDelivered, DeliveriesDeferred, DeliveryFailed, DeliveryStarted, MeritCreated,
    RedeliveryRequested, RefusedItem,
};
pub use state::{BatchState, Waiting, WriteStarted};

/// Folds one recorded event onto `state` (the shape the command handler folds every aggregate in).
pub fn evolve(
    mut state: BatchState,
    event: &BatchEvent,
    version: i32,
    at: chrono::DateTime<chrono::Utc>,
) -> BatchState {
    state.evolve(event.clone(), version, at);
    state
}
