//! The vocabulary of the event store: what goes in, what comes out, and where a consumer stands.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use uuid::Uuid;

/// Who caused an event. Roles are the actors of `domain.md`; the store records them on every event so
/// the audit can answer "who did this, in which capacity" without consulting anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorRole {
    Student,
    Coordinator,
    Registrar,
    Admin,
    System,
}

impl ActorRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorRole::Student => "student",
            ActorRole::Coordinator => "coordinator",
            ActorRole::Registrar => "registrar",
            ActorRole::Admin => "admin",
            ActorRole::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "student" => ActorRole::Student,
            "coordinator" => ActorRole::Coordinator,
            "registrar" => ActorRole::Registrar,
            "admin" => ActorRole::Admin,
            "system" => ActorRole::System,
            _ => return None,
        })
    }
}

impl fmt::Display for ActorRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Metadata shared by every event of one append (one command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The staff id, the student's Ladok UID, or the name of a system job.
    pub actor_id: String,
    pub actor_role: ActorRole,
    /// The request id of the HTTP call (or the job run) that led here; ties log lines to events.
    pub correlation_id: Uuid,
    /// The event or command that caused this one, when it was not a direct request.
    pub causation_id: Option<Uuid>,
    /// Makes the append idempotent: a second append with the same id stores nothing and returns the
    /// first outcome.
    pub command_id: Uuid,
}

/// An event about to be appended. The payload is already split into its non-personal part and its
/// personal part, so the store never has to know which fields are which.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: i16,
    pub payload: Value,
    pub personal: Option<Value>,
    /// The person whose data `personal` holds.
    pub data_subject: Option<Uuid>,
}

/// The version a writer expects the stream to be at before its append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be exactly at this version (its last event has this version).
    Exact(i32),
    /// Append at the end, whatever it is. Only for streams with a single writer (export batches).
    Any,
}

impl ExpectedVersion {
    /// The stream version this append builds on, when the writer stated one.
    pub fn as_version(self) -> Option<i32> {
        match self {
            ExpectedVersion::NoStream => Some(0),
            ExpectedVersion::Exact(v) => Some(v),
            ExpectedVersion::Any => None,
        }
    }
}

/// A place in the global order: (appending transaction id, position). Consumers store the last
/// checkpoint they processed and ask for everything after it; see `tail.rs` for why both parts are
/// needed.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub struct Checkpoint {
    /// The 64-bit transaction id (`xid8`) of the transaction that appended the event.
    pub transaction_id: i64,
    pub position: i64,
}

impl Checkpoint {
    /// Before the first event.
    pub const START: Checkpoint = Checkpoint {
        transaction_id: 0,
        position: 0,
    };
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transaction_id, self.position)
    }
}

/// An event as stored, already upcast to the current shape of its type.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub checkpoint: Checkpoint,
    pub stream_id: String,
    pub version: i32,
    pub event_id: Uuid,
    pub event_type: String,
    /// The schema version after upcasting (the current one for this type).
    pub schema_version: i16,
    /// The version it was stored with, kept for audit.
    pub stored_schema_version: i16,
    pub payload: Value,
    pub personal: Option<Value>,
    pub data_subject: Option<Uuid>,
    pub actor_id: String,
    pub actor_role: ActorRole,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub command_id: Uuid,
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    pub fn position(&self) -> i64 {
        self.checkpoint.position
    }
}

/// What an append produced. A retried command gets the first attempt's outcome with `duplicate` set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AppendOutcome {
    pub first_version: i32,
    pub last_version: i32,
    pub first_position: i64,
    /// Where the command's last event sits in the global order: a reader that has reached this
    /// checkpoint sees the command's effects (read-your-writes).
    pub checkpoint: Checkpoint,
    pub duplicate: bool,
}

impl AppendOutcome {
    /// The outcome a `commands` row records: `[first, last]` versions and positions of the
    /// command's events, written by transaction `xid`.
    pub(super) fn recorded(
        versions: (i32, i32),
        positions: (i64, i64),
        xid: i64,
        duplicate: bool,
    ) -> Self {
        Self {
            first_version: versions.0,
            last_version: versions.1,
            first_position: positions.0,
            checkpoint: Checkpoint {
                transaction_id: xid,
                position: positions.1,
            },
            duplicate,
        }
    }
}
