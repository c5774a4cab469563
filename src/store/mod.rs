//! The append-only event log in PostgreSQL: the only source of truth.
//!
//! The guarantees (each proven by a test in `tests/it/event_store/`):
//! - optimistic concurrency: an append states the version it expects; a lost race is a typed
//!   [`AppendError::Conflict`], detected by SQLSTATE and constraint name, and writes nothing;
//! - atomic multi-event appends: one command's events are one statement;
//! - under load, one-event appends that arrive together share a statement and a transaction, each
//!   keeping the guarantees above and below (`group.rs`);
//! - idempotency: a command id is stored once, and a retry gets the first outcome back;
//! - a gap-free global order for tailing consumers ([`EventStore::read_after`], see `tail.rs`);
//! - metadata on every event ([`Metadata`]);
//! - schema evolution: every read path upcasts old shapes ([`Upcasters`]);
//! - personal data in its own column, tied to its data subject, sealed with the subject's key
//!   ([`keys`]), so deleting the key erases it without rewriting the log.

mod announce;
mod append;
mod error;
mod group;
mod identity;
pub mod keys;
mod read;
mod row;
mod sealing;
mod tail;
mod types;
mod upcast;

pub use announce::CHANNEL;
pub use error::{AppendError, StoreError};
pub use identity::{IDENTITY_INDEX_SUBJECT, IdentityClaim};
pub use tail::{TransactionIdsBehind, check_transaction_ids};
pub use types::{
    ActorRole, AppendOutcome, Checkpoint, ExpectedVersion, Metadata, NewEvent, RecordedEvent,
};
pub use upcast::{UpcastFn, Upcasters};

use sqlx::PgPool;

/// Handle to the event log. Cheap to clone: the pool is reference-counted.
#[derive(Debug, Clone)]
pub struct EventStore {
    pool: PgPool,
    upcasters: std::sync::Arc<Upcasters>,
    /// Shared by the clones of this handle: one coalescing notifier (see `announce.rs`).
    announcer: std::sync::Arc<announce::Announcer>,
    /// Shared by the clones: keys that let an append with personal data seal without a round trip.
    sealing: std::sync::Arc<sealing::SealingKeys>,
    /// Shared by the clones: one-event appends that arrive together commit together.
    committer: std::sync::Arc<group::Committer>,
}

impl EventStore {
    pub fn new(pool: PgPool, upcasters: Upcasters) -> Self {
        Self {
            announcer: std::sync::Arc::new(announce::Announcer::new(pool.clone())),
            pool,
            upcasters: std::sync::Arc::new(upcasters),
            sealing: Default::default(),
            committer: Default::default(),
        }
    }

    /// Wakes the log's consumers (`NOTIFY cim_events`, coalesced). [`Self::append`] does this
    /// itself; a caller of [`Self::append_in`] calls it after its transaction committed.
    pub fn announce(&self) {
        self.announcer.announce();
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
