//! The one place where commands' events reach the log: every write of the service (the web API's
//! commands, the export worker's steps, the registrar's batch actions, Ladok's identity answers)
//! is appended here, with the metadata of its [`CommandContext`], and announced after commit.
//!
//! Most commands are a single append (one statement, no explicit transaction). Some need more in
//! the same transaction, decided from the events themselves ([`Companion`]) or asked for by the
//! caller ([`Write`]): the identity number a portfolio brings in is claimed; the export worker's
//! rows follow its batch events; a Ladok write is recorded through the export lock's own session.

use sqlx::{Connection, PgConnection};

use super::batch_rows::{self, SelectionMove};
use super::command::{CommandContext, CommandError};
use super::handler::CommandHandler;
use super::identity::{self, NumberChange};
use crate::domain::BatchId;
use crate::domain::batch::BatchEvent;
use crate::store::{AppendError, AppendOutcome, ExpectedVersion, NewEvent, StoreError};

/// What a caller asks of a command's write besides the defaults.
#[derive(Debug, Default)]
pub struct Write<'a> {
    /// Decide only if the stream is still at this version (the client's `If-Match`, or the version
    /// the export worker read); otherwise [`CommandError::VersionMismatch`].
    pub if_version: Option<i32>,
    /// Append through this connection (in a transaction of its own on it): the export lock's
    /// session, so that a worker whose lock died cannot record anything.
    pub session: Option<&'a mut PgConnection>,
    /// Move the export selection checkpoint with the events (a new batch).
    pub selection: Option<SelectionMove>,
}

impl Write<'_> {
    /// Only the client's `If-Match` (or none).
    pub fn if_version(if_version: Option<i32>) -> Self {
        Write {
            if_version,
            ..Write::default()
        }
    }
}

/// Writes that commit with a command's events or not at all, decided from the events.
#[derive(Debug)]
pub(super) enum Companion {
    None,
    /// A number enters a portfolio: claimed for its student (and a replaced one freed).
    Identity(NumberChange),
    /// Batch events the export worker's rows follow.
    BatchRows(BatchId, Vec<BatchEvent>),
}

impl CommandHandler {
    /// Appends `new` to `stream_id` at `version` with its companions. `Ok(outcome)` also for a
    /// retry of a command that already took effect (`outcome.duplicate`).
    pub(super) async fn commit(
        &self,
        stream_id: &str,
        version: i32,
        new: &[NewEvent],
        ctx: &CommandContext,
        companion: Companion,
        write: &mut Write<'_>,
    ) -> Result<AppendOutcome, CommandError> {
        let expected = if version == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(version)
        };
        let metadata = ctx.metadata();
        let store = self.store();
        let plain = matches!(companion, Companion::None)
            && write.session.is_none()
            && write.selection.is_none();
        if plain {
            // One statement: the store announces it itself.
            return store
                .append(stream_id, expected, new, &metadata)
                .await
                .map_err(|e| conflict_or(e, stream_id));
        }
        let mut tx = match write.session.as_deref_mut() {
            Some(session) => session.begin().await,
            None => store.pool().begin().await,
        }
        .map_err(StoreError::from)?;
        if let Some(selection) = write.selection {
            batch_rows::move_selection(&mut tx, selection).await?;
        }
        match &companion {
            Companion::None => {}
            Companion::Identity(change) => {
                if !identity::claim_in(&mut tx, store, stream_id, change).await? {
                    // A retry of a command that took effect is answered with its outcome.
                    return match store.command_outcome(ctx.command_id).await? {
                        Some(outcome) => Ok(outcome),
                        None => Err(CommandError::IdentityNumberTaken),
                    };
                }
            }
            Companion::BatchRows(batch_id, events) => {
                batch_rows::write(&mut tx, *batch_id, events)
                    .await
                    .map_err(StoreError::from)?;
            }
        }
        let outcome = store
            .append_in(&mut tx, stream_id, expected, new, &metadata)
            .await
            .map_err(|e| conflict_or(e, stream_id))?;
        // A duplicate leaves nothing of this attempt: the transaction rolls back on drop.
        if !outcome.duplicate {
            tx.commit().await.map_err(StoreError::from)?;
            store.announce();
        }
        Ok(outcome)
    }
}

fn conflict_or(e: AppendError, stream_id: &str) -> CommandError {
    match e {
        AppendError::Conflict { .. } => CommandError::Conflict {
            stream_id: stream_id.to_owned(),
        },
        AppendError::Store(e) => e.into(),
        AppendError::Empty => unreachable!("only commands with events are committed"),
    }
}
