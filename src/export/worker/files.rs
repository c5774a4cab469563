//! The file phase of a run: a new batch from the log after the selection checkpoint, and the files
//! of an unfinished batch written one per step, the manifest last.

use sqlx::PgConnection;
use uuid::Uuid;

use super::batch::{self, Selection};
use super::events::{self, BatchCompleted, BatchCreated, BatchEvent, BatchFileWritten};
use super::{
    ExportWorker, Rendered, Step, WORKER_ACTOR, WorkerError, overtaken_on_conflict, step_id,
};
use crate::export::BatchId;
use crate::store::{ActorRole, Checkpoint, ExpectedVersion, Metadata};

impl ExportWorker {
    pub(super) async fn unfinished_batch(&self) -> Result<Option<BatchId>, sqlx::Error> {
        let id: Option<Uuid> = sqlx::query_scalar(
            // The partial index export_batches_unfinished_idx serves this.
            "SELECT batch_id FROM export_batches WHERE completed_at IS NULL ORDER BY batch_id LIMIT 1",
        )
        .fetch_optional(self.store.pool())
        .await?;
        Ok(id.map(BatchId::new))
    }

    pub(super) async fn create_batch(&mut self) -> Result<Step, WorkerError> {
        let (xid, position): (i64, i64) =
            sqlx::query_as("SELECT transaction_id, position FROM export_selection")
                .fetch_one(self.store.pool())
                .await?;
        let from = Checkpoint {
            transaction_id: xid,
            position,
        };
        let selection = batch::select(&self.store, from, self.config.max_events_per_batch).await?;
        if selection.checkpoint == from {
            return Ok(Step::Idle);
        }
        let mut tx = self.store.pool().begin().await?;
        // Guarded by the value we read: see the migration's comment on export_selection.
        let moved = sqlx::query(
            "UPDATE export_selection SET transaction_id = $1, position = $2, updated_at = now() \
             WHERE transaction_id = $3 AND position = $4",
        )
        .bind(selection.checkpoint.transaction_id)
        .bind(selection.checkpoint.position)
        .bind(from.transaction_id)
        .bind(from.position)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            return Err(WorkerError::Overtaken);
        }
        if selection.is_empty() {
            // Only other events since the last run: move past them, create nothing.
            tx.commit().await?;
            return Ok(Step::Idle);
        }
        let step = self.append_created(&mut tx, selection).await?;
        tx.commit().await?;
        self.store.announce();
        Ok(step)
    }

    async fn append_created(
        &self,
        tx: &mut PgConnection,
        selection: Selection,
    ) -> Result<Step, WorkerError> {
        let batch_id = BatchId::new(Uuid::now_v7());
        // Whole seconds: the instant appears in the files, and a resumed run must render the same
        // bytes from the stored value.
        let created_at = chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp(), 0)
            .expect("now is a valid instant");
        let created = BatchCreated {
            batch_id,
            created_at,
            certificates: selection.certificates,
            revocations: selection.revocations,
            // Nothing is refused any more (an erased holder's certificate is exported without the
            // erased data); the field stays for the batches created before.
            refused: Vec::new(),
        };
        sqlx::query(
            "INSERT INTO export_batches (batch_id, created_at, certificates, revocations) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(batch_id.as_uuid())
        .bind(created_at)
        .bind(created.certificates.len() as i32)
        .bind(created.revocations.len() as i32)
        .execute(&mut *tx)
        .await?;
        let step = Step::Created {
            batch_id,
            certificates: created.certificates.len(),
            revocations: created.revocations.len(),
        };
        let event = BatchEvent::BatchCreated(created).to_new_event();
        self.store
            .append_in(
                tx,
                &events::stream_id(batch_id),
                ExpectedVersion::NoStream,
                &[event],
                &self.metadata(*batch_id.as_uuid()),
            )
            .await?;
        Ok(step)
    }

    pub(super) async fn continue_batch(&mut self, batch_id: BatchId) -> Result<Step, WorkerError> {
        let stream = events::stream_id(batch_id);
        self.batch_state(batch_id).await?;
        let state = &self.state.as_ref().expect("loaded above").1;
        let created = state.created.as_ref().ok_or(WorkerError::Overtaken)?;
        if self.rendered.as_ref().map(|r| r.batch_id) != Some(batch_id) {
            let loaded = batch::load_batch(&self.store, created).await?;
            let files = batch::render(created, &loaded, &self.config.settings, &state.written)?;
            self.rendered = Some(Rendered {
                batch_id,
                files,
                next: 0,
            });
        }
        let version = state.version;
        let metadata = |command_id| Metadata {
            actor_id: WORKER_ACTOR.to_owned(),
            actor_role: ActorRole::System,
            correlation_id: self.correlation_id,
            causation_id: None,
            command_id,
        };
        let rendered = self.rendered.as_mut().expect("rendered above");
        // The manifest is the last file (render puts it last): a reader who sees it sees a whole batch.
        // Files are written in order, and every file before `next` was seen written, so the first
        // file not written is found without looking at the written ones again.
        let unwritten = rendered
            .files
            .iter()
            .enumerate()
            .skip(rendered.next)
            .find(|(_, f)| !state.written.contains_key(&f.name));
        if let Some((index, file)) = unwritten {
            let dir = self.config.batch_dir(batch_id);
            batch::write_atomically(&dir, &file.name, &file.bytes).map_err(|source| {
                WorkerError::Io {
                    path: dir.join(&file.name),
                    source,
                }
            })?;
            let event = BatchEvent::BatchFileWritten(BatchFileWritten {
                name: file.name.clone(),
                sha256: batch::sha256_hex(&file.bytes),
                size: file.bytes.len() as u64,
            });
            let name = file.name.clone();
            rendered.next = index + 1;
            let command_id = step_id(batch_id, &format!("file:{name}"));
            self.store
                .append(
                    &stream,
                    ExpectedVersion::Exact(version),
                    &[event.to_new_event()],
                    &metadata(command_id),
                )
                .await
                .map_err(overtaken_on_conflict)?;
            return Ok(Step::FileWritten { batch_id, name });
        }
        let files = rendered.files.len();
        let mut tx = self.store.pool().begin().await?;
        sqlx::query("UPDATE export_batches SET completed_at = now() WHERE batch_id = $1")
            .bind(batch_id.as_uuid())
            .execute(&mut *tx)
            .await?;
        let event = BatchEvent::BatchCompleted(BatchCompleted { files });
        self.store
            .append_in(
                &mut tx,
                &stream,
                ExpectedVersion::Exact(version),
                &[event.to_new_event()],
                &metadata(step_id(batch_id, "completed")),
            )
            .await
            .map_err(overtaken_on_conflict)?;
        tx.commit().await?;
        self.store.announce();
        self.rendered = None;
        Ok(Step::Completed { batch_id })
    }
}
