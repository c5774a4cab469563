//! The file phase of a run: a new batch from the log after the selection checkpoint, and the files
//! of an unfinished batch written one per step, the manifest last.

use uuid::Uuid;

use super::batch;
use super::{
    ExportWorker, Rendered, Step, WORKER_ACTOR, WorkerError, overtaken_on_conflict, step_id,
};
use crate::app::{CommandContext, SelectionMove, Write};
use crate::domain::BatchId;
use crate::domain::batch::{BatchCommand, BatchCreated, BatchFileWritten};
use crate::export::ExportFile;
use crate::store::Checkpoint;

impl ExportWorker {
    pub(super) async fn unfinished_batch(&self) -> Result<Option<BatchId>, sqlx::Error> {
        // The partial index export_batches_unfinished_idx serves this.
        let id = sqlx::query_scalar!(
            "SELECT batch_id FROM export_batches WHERE completed_at IS NULL ORDER BY batch_id LIMIT 1",
        )
        .fetch_optional(self.store().pool())
        .await?;
        Ok(id.map(BatchId::new))
    }

    pub(super) async fn create_batch(&mut self) -> Result<Step, WorkerError> {
        let from = sqlx::query_as!(
            Checkpoint,
            "SELECT transaction_id, position FROM export_selection"
        )
        .fetch_one(self.store().pool())
        .await?;
        let selection = batch::select(self.store(), from, self.config.max_events_per_batch).await?;
        if selection.checkpoint == from {
            return Ok(Step::Idle);
        }
        let to = selection.checkpoint;
        if selection.is_empty() {
            // Only other events since the last run: move past them, create nothing. Guarded by
            // the value we read: see the migration's comment on export_selection.
            let mut conn = self.store().pool().acquire().await?;
            let moved = SelectionMove { from, to }.apply(&mut conn).await?;
            if !moved {
                return Err(WorkerError::Overtaken);
            }
            return Ok(Step::Idle);
        }
        let batch_id = BatchId::new(Uuid::now_v7());
        // Whole seconds: the instant appears in the files, and a resumed run must render the same
        // bytes from the stored value.
        let created_at = chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp(), 0)
            .expect("now is a valid instant");
        let step = Step::Created {
            batch_id,
            certificates: selection.certificates.len(),
            revocations: selection.revocations.len(),
        };
        let created = BatchCreated {
            batch_id,
            created_at,
            certificates: selection.certificates,
            revocations: selection.revocations,
            // Nothing is refused any more (an erased holder's certificate is exported without the
            // erased data); the field stays for the batches created before.
            refused: Vec::new(),
        };
        // The batch's row and the moved checkpoint commit with the event (`app::batch_rows`).
        let ctx = CommandContext::system(WORKER_ACTOR, self.correlation_id, *batch_id.as_uuid());
        let write = Write {
            selection: Some(SelectionMove { from, to }),
            ..Write::default()
        };
        self.commands
            .batch(batch_id, BatchCommand::Create(created), &ctx, write)
            .await
            .map_err(overtaken_on_conflict)?;
        Ok(step)
    }

    pub(super) async fn continue_batch(&mut self, batch_id: BatchId) -> Result<Step, WorkerError> {
        self.batch_state(batch_id).await?;
        let state = self.state.as_ref().expect("loaded above").1.clone();
        let created = state.created.as_ref().ok_or(WorkerError::Overtaken)?;
        if self.rendered.as_ref().map(|r| r.batch_id) != Some(batch_id) {
            let loaded = batch::load_batch(self.store(), created).await?;
            let files = batch::render(created, &loaded, &self.config.settings, &state.written)?;
            self.rendered = Some(Rendered {
                batch_id,
                files,
                next: 0,
            });
        }
        let version = state.version;
        let rendered = self.rendered.as_mut().expect("rendered above");
        // The next files with no event, in render order. The manifest is the last file (render puts
        // it last) and goes alone, once every other file is recorded: a reader who sees it sees a
        // whole batch. Every file before `next` was seen written, so they are not looked at again.
        let manifest = rendered.files.len() - 1;
        let mut chunk: Vec<usize> = (rendered.next..manifest)
            .filter(|&i| !state.written.contains_key(&rendered.files[i].name))
            .take(self.config.files_per_step.max(1))
            .collect();
        if chunk.is_empty() && !state.written.contains_key(&rendered.files[manifest].name) {
            chunk.push(manifest);
        }
        if let (Some(&first), Some(&last)) = (chunk.first(), chunk.last()) {
            let files: Vec<&ExportFile> = chunk.iter().map(|&i| &rendered.files[i]).collect();
            let dir = self.config.batch_dir(batch_id);
            // Off the runtime's threads: a step's flushes take a good part of a second, and in
            // `cim serve` the same two threads answer the API. The copy costs little beside them.
            let owned: Vec<ExportFile> = files.iter().map(|&f| f.clone()).collect();
            let target = dir.clone();
            tokio::task::spawn_blocking(move || {
                batch::write_atomically(&target, &owned.iter().collect::<Vec<_>>())
            })
            .await
            .expect("the file writer panicked")
            .map_err(|(name, source)| WorkerError::Io {
                path: dir.join(name),
                source,
            })?;
            let command = BatchCommand::RecordFiles(
                files
                    .iter()
                    .map(|f| BatchFileWritten {
                        name: f.name.clone(),
                        sha256: batch::sha256_hex(&f.bytes),
                        size: f.bytes.len() as u64,
                    })
                    .collect(),
            );
            let names: Vec<String> = files.iter().map(|f| f.name.clone()).collect();
            // The same files after a crash are the same step: the same command id.
            let step = format!("files:{}+{}", rendered.files[first].name, chunk.len());
            rendered.next = last + 1;
            // Not held across the step: the handler then folds the batch in place.
            drop(state);
            self.record_step(batch_id, version, command, step_id(batch_id, &step), None)
                .await
                .map_err(overtaken_on_conflict)?;
            return Ok(Step::FilesWritten { batch_id, names });
        }
        let files = rendered.files.len();
        drop(state);
        // The batch's row is marked complete with the event (`app::batch_rows`).
        let command_id = step_id(batch_id, "completed");
        self.record_step(
            batch_id,
            version,
            BatchCommand::Complete { files },
            command_id,
            None,
        )
        .await
        .map_err(overtaken_on_conflict)?;
        self.rendered = None;
        Ok(Step::Completed { batch_id })
    }
}
