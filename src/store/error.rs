//! Typed errors of the event store. Callers react to `Conflict` (retry against the new state) and
//! treat everything else as infrastructure failure.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum AppendError {
    /// Another writer appended to the stream first. Nothing of this append was written.
    #[error("stream {stream_id} has moved on: expected version {expected}, found {actual}")]
    Conflict {
        stream_id: String,
        expected: i32,
        actual: i32,
    },
    #[error("an append needs at least one event")]
    Empty,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored event could not be brought to its current shape: an upcaster is missing or failed.
    #[error("event {position} ({event_type} v{schema_version}) cannot be read: {reason}")]
    Upcast {
        position: i64,
        event_type: String,
        schema_version: i16,
        reason: String,
    },
    #[error("event {position} has an unknown actor role {role:?}")]
    UnknownRole { position: i64, role: String },
    /// A sealed event whose data subject has no key row at all: the key table was lost (an erased
    /// subject keeps a tombstone row). See `store::keys`.
    #[error(
        "event {position}: the key of its data subject is missing from subject_keys (was the key table lost?)"
    )]
    KeyMissing { position: i64 },
    /// The sealed personal data does not open with its subject's key: altered data.
    #[error("event {position}: its sealed personal data does not open: {reason}")]
    Unseal {
        position: i64,
        reason: crate::crypto::CryptoError,
    },
    /// A subject key does not unwrap with the installed master key.
    #[error("a subject key does not unwrap with master key {master_key_id}: {reason}")]
    KeyUnwrap {
        master_key_id: String,
        reason: crate::crypto::CryptoError,
    },
    #[error(transparent)]
    MasterKey(#[from] crate::crypto::MasterKeyError),
    /// A subject key was erased while it was being created, three times in a row.
    #[error("the subject key changed while this append was sealing its personal data")]
    KeyRace,
}

/// SQLSTATE of a unique-constraint violation. Errors are told apart by code and constraint name, never
/// by their message text, which changes with the server's language and version.
pub(crate) const UNIQUE_VIOLATION: &str = "23505";

/// The constraint name of a unique violation, when `err` is one.
pub(crate) fn unique_violation(err: &sqlx::Error) -> Option<String> {
    let db = err.as_database_error()?;
    if db.code().as_deref() != Some(UNIQUE_VIOLATION) {
        return None;
    }
    Some(db.constraint().unwrap_or_default().to_owned())
}
