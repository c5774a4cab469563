//! The export worker's own bookkeeping rows (`migrations/20261130000003_exports.sql`), written in
//! the transaction that appends the batch events they follow: `export_batches` says which batches
//! are unfinished and which have deliveries open, and `export_selection` how far the log has been
//! taken into batches. Committing them with the events means the worker's lists never disagree
//! with the streams, whoever appends (the worker, or the registrar asking for a re-delivery).

use sqlx::PgConnection;

use super::command::CommandError;
use crate::domain::BatchId;
use crate::domain::batch::BatchEvent;
use crate::store::Checkpoint;

/// Moving the selection checkpoint from where the worker read it to the end of what a new batch
/// took: guarded by the value read, so a second worker that somehow got past the export lock fails
/// instead of taking the same certificates into a second batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectionMove {
    pub from: Checkpoint,
    pub to: Checkpoint,
}

/// Whether `events` change a row here.
pub(super) fn follows(events: &[BatchEvent]) -> bool {
    events.iter().any(|e| {
        matches!(
            e,
            BatchEvent::BatchCreated(_)
                | BatchEvent::BatchCompleted(_)
                | BatchEvent::RedeliveryRequested(_)
        )
    })
}

impl SelectionMove {
    /// Moves the checkpoint if it is still where the worker read it; whether it did. Also used
    /// alone, when a selection found nothing to export.
    pub async fn apply(self, conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
        let moved = sqlx::query!(
            "UPDATE export_selection SET transaction_id = $1, position = $2, updated_at = now() \
             WHERE transaction_id = $3 AND position = $4",
            self.to.transaction_id,
            self.to.position,
            self.from.transaction_id,
            self.from.position,
        )
        .execute(&mut *conn)
        .await?;
        Ok(moved.rows_affected() == 1)
    }
}

/// Moves the selection checkpoint with a new batch; a conflict when it is no longer where the
/// worker read it.
pub(super) async fn move_selection(
    tx: &mut PgConnection,
    selection: SelectionMove,
) -> Result<(), CommandError> {
    if !selection
        .apply(tx)
        .await
        .map_err(crate::store::StoreError::from)?
    {
        return Err(CommandError::Conflict {
            stream_id: "export-selection".to_owned(),
        });
    }
    Ok(())
}

/// Brings `batch_id`'s row of `export_batches` in line with its new `events`.
pub(super) async fn write(
    tx: &mut PgConnection,
    batch_id: BatchId,
    events: &[BatchEvent],
) -> Result<(), sqlx::Error> {
    let batch = batch_id.as_uuid();
    for event in events {
        match event {
            BatchEvent::BatchCreated(created) => {
                sqlx::query!(
                    "INSERT INTO export_batches (batch_id, created_at, certificates, revocations) \
                 VALUES ($1, $2, $3, $4)",
                    batch,
                    created.created_at,
                    created.certificates.len() as i32,
                    created.revocations.len() as i32,
                )
                .execute(&mut *tx)
                .await?
            }
            BatchEvent::BatchCompleted(_) => {
                sqlx::query!(
                    "UPDATE export_batches SET completed_at = now() WHERE batch_id = $1",
                    batch
                )
                .execute(&mut *tx)
                .await?
            }
            // Back on the worker's delivery list.
            BatchEvent::RedeliveryRequested(_) => {
                sqlx::query!(
                    "UPDATE export_batches SET deliveries_settled_at = NULL WHERE batch_id = $1",
                    batch
                )
                .execute(&mut *tx)
                .await?
            }
            _ => continue,
        };
    }
    Ok(())
}
