//! What a command carries besides itself ([`CommandContext`]), what handling it gives back
//! ([`Handled`]), and why it can fail ([`CommandError`]).

use std::sync::Arc;

use crate::domain::{DomainError, PortfolioId};
use crate::store::{ActorRole, AppendOutcome, Metadata, StoreError};
use chrono::{DateTime, Utc};
use thiserror::Error;
use uuid::Uuid;

/// Who asks, on behalf of which request, and when. `now` is read once, at the edge, so that a decision
/// and its retry judge deadlines by the same clock.
#[derive(Debug, Clone)]
pub struct CommandContext {
    pub actor_id: String,
    pub role: ActorRole,
    pub correlation_id: Uuid,
    /// The client's idempotency key (or a fresh id): the same id twice is one command.
    pub command_id: Uuid,
    pub now: DateTime<Utc>,
}

impl CommandContext {
    /// A command of the service itself (the export worker, the Ladok identity check), by `actor`,
    /// as part of the run `correlation_id`. `command_id` makes a repeated step one command.
    pub fn system(actor: &str, correlation_id: Uuid, command_id: Uuid) -> Self {
        Self {
            actor_id: actor.to_owned(),
            role: ActorRole::System,
            correlation_id,
            command_id,
            now: Utc::now(),
        }
    }

    /// The metadata every event of the command carries: the one place it is made.
    pub fn metadata(&self) -> Metadata {
        Metadata {
            actor_id: self.actor_id.clone(),
            actor_role: self.role,
            correlation_id: self.correlation_id,
            causation_id: None,
            command_id: self.command_id,
        }
    }
}

/// The result of a handled command: the state after it, the events it produced, and where it sits in
/// the log (`None` when the command changed nothing).
#[derive(Debug, Clone)]
pub struct Handled<S, E> {
    /// Shared with the fold cache: reading it costs no copy.
    pub state: Arc<S>,
    pub events: Vec<E>,
    pub outcome: Option<AppendOutcome>,
    /// The stream's version after the command (the portfolio's ETag).
    pub version: i32,
}

#[derive(Debug, Error)]
pub enum CommandError {
    /// The rules refused the command. Nothing was written.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Another change landed between loading and appending, twice in a row. Nothing was written; the
    /// client should reload and decide again.
    #[error(
        "the {stream_id} stream kept changing while this command was decided; reload and try again"
    )]
    Conflict { stream_id: String },
    /// The client decided on version `expected` (its `If-Match`), but the stream is at `current`.
    /// Nothing was written; the client should reload and decide again.
    #[error(
        "this resource has changed since version {expected} (it is at version {current}); reload it and decide again"
    )]
    VersionMismatch { expected: i32, current: i32 },
    /// The student already has a portfolio in this program (one per student and program).
    #[error(
        "you already have a portfolio in this program ({portfolio_id}); a student has one portfolio per program, so continue in that one"
    )]
    PortfolioExists { portfolio_id: PortfolioId },
    /// The identity number of the portfolio being opened belongs to another student UID (one number,
    /// one student, across the service). The message never names the number or the other student.
    #[error(
        "this identity number already belongs to another student in this service; if it is yours, contact the registrar's office"
    )]
    IdentityNumberTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event does not fit its type: a bug or a missing upcaster, never the client's fault.
    /// Only the `Display` of the decoding error is kept: its source (serde's message) may quote
    /// stored values, personal ones included, and this error ends up in logs.
    #[error("stored event {position} cannot be decoded: {reason}")]
    Corrupt { position: i64, reason: String },
}
