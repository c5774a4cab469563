//! The export worker: turns approved (and revoked) certificates into immutable batch folders for the
//! registrar, exactly once.
//!
//! A run ([`ExportWorker::run_once`]) holds the export lock ([`ExportLock`]) and repeats
//! [`ExportWorker::step`] until there is nothing left to do. One step is one durable unit of work,
//! recorded as an event on the batch's stream `export-batch-{id}` (the batch aggregate,
//! `domain::batch`, decides what may be recorded; the command handler appends it):
//!
//! 1. an unfinished batch is finished first: the next files that have no BatchFileWritten event
//!    (up to [`WorkerConfig::files_per_step`]) are written (temporary name, flushed, renamed) and
//!    their events appended together; the manifest comes last, alone, then BatchCompleted;
//! 2. otherwise the log after the selection checkpoint is read and, if it holds certificates, a new
//!    batch is created: BatchCreated is appended in the same transaction that moves the checkpoint and
//!    inserts the batch's row (`migrations/20261130000003_exports.sql`);
//! 3. otherwise, with Ladok delivery switched on ([`WorkerConfig::ladok`]), the next certificate of a
//!    complete batch without a CertificateDelivered event is delivered ([`ladok`]), oldest batch
//!    first, and the outcome appended (CertificateDelivered or DeliveryFailed). A certificate is tried
//!    at most once per run; retryable failures are tried again by the next run, rule errors wait for
//!    the registrar. An authentication failure or an unavailable Ladok stops the deliveries of the run:
//!    every batch's other open certificates get a DeliveriesDeferred (one per batch) instead of an
//!    attempt each, so the registrar sees for every one of them why it waits.
//!
//! # Exactly once
//! - Only the holder of a session-level advisory lock works; the lock dies with its session, so a
//!   killed worker's lock is released by PostgreSQL and the next run takes over.
//! - Every step is a file write that is harmless to repeat followed by one append; a worker killed
//!   between the two writes the same bytes again (rendering is deterministic: same events, same batch
//!   instant) and then appends. A worker killed after the append skips the file.
//! - Behind the lock, appends to a batch stream expect its exact version, and the selection checkpoint
//!   moves only from the value the run read: a second worker that somehow got past the lock fails
//!   instead of writing a second batch or a second event.
//! - Ladok: every write is recorded (DeliveryStarted) through the lock's own session before it is
//!   sent, and a write in doubt is looked for in Ladok, by the merit's marker, before it is sent
//!   again; see `delivery.rs`.
//!
//! The phases live apart: `files.rs` (1 and 2), `delivery.rs` (3) with `merit_writes.rs` (one certificate's Ladok writes), `lock.rs` (the lock).
//!
//! Nothing personal is logged: certificates are named by id only.

pub mod batch;
mod delivery;
mod files;
pub mod identity_check;
pub mod ladok;
mod lock;
mod merit_writes;
pub mod runs;
pub mod schedule;

pub use delivery::settle_deliveries;
pub use lock::{ExportLock, lock_key};

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use sqlx::PgConnection;
use uuid::Uuid;

use self::ladok::{LadokClient, LadokConfig, LadokError};
use crate::app::{CommandContext, CommandError, CommandHandler, Write};
use crate::domain::batch::{BatchCommand, BatchState};
use crate::domain::{BatchId, CertificateId};
use crate::export::{ExportCertificate, ExportError, ExportFile, ExportSettings};
use crate::store::{EventStore, StoreError};

/// The actor id on every event the worker appends.
pub const WORKER_ACTOR: &str = "export-worker";

/// Why a run stopped. Everything here stops the run; the next run starts over from the log.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The command handler refused or failed a step (a refusal here is a bug: the worker asks
    /// only for what the batch's state allows).
    #[error(transparent)]
    Command(CommandError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A portfolio event could not be decoded (the source error may quote personal data, so only the
    /// type and id are kept).
    #[error("event {event_id} ({event_type}) cannot be read as a portfolio event")]
    UnreadableEvent { event_id: Uuid, event_type: String },
    /// A batch names a certificate whose approval (or revocation) is not in its portfolio stream.
    #[error("the source events of certificate {certificate_id} are missing")]
    SourceMissing { certificate_id: CertificateId },
    #[error("rendering the batch failed: {0}")]
    Render(#[from] ExportError),
    #[error("writing {path} failed: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another worker moved the selection checkpoint or appended to our batch: we lost the lock.
    #[error("another export worker got in between; this run stops")]
    Overtaken,
    /// The lock's session ended (the database connection broke): another worker may take over.
    #[error("the export lock was lost")]
    LockLost,
    /// The Ladok client cannot be built from the configuration.
    #[error(transparent)]
    Ladok(#[from] LadokError),
}

impl WorkerError {
    /// A stable code for the kind of failure, without anything of the error's text (which may name
    /// a path or quote a server): what `export_runs` records and operations alert on.
    pub fn code(&self) -> &'static str {
        match self {
            WorkerError::Store(_) => "store",
            WorkerError::Command(_) => "command",
            WorkerError::Database(_) => "database",
            WorkerError::UnreadableEvent { .. } => "unreadable_event",
            WorkerError::SourceMissing { .. } => "source_missing",
            WorkerError::Render(_) => "render",
            WorkerError::Io { .. } => "io",
            WorkerError::Overtaken => "overtaken",
            WorkerError::LockLost => "lock_lost",
            // Only ever the client that cannot be built: delivery failures are recorded per
            // certificate, and Ladok being down ends a run successfully (deferred).
            WorkerError::Ladok(_) => "ladok_client",
        }
    }
}

/// Where the worker writes and what it renders.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Batch folders go to `{export_dir}/{batch id}/`.
    pub export_dir: PathBuf,
    pub settings: ExportSettings,
    /// At most this many log events are read into one batch; the rest go into the next.
    pub max_events_per_batch: usize,
    /// How many files one step writes and records (one append): fewer round trips and disk flushes
    /// per file; a crash repeats at most one step's files, with the same bytes.
    pub files_per_step: usize,
    /// Ladok delivery: `None` switches it off (batches are still written; their certificates are
    /// delivered once it is switched on).
    pub ladok: Option<LadokConfig>,
}

impl WorkerConfig {
    pub fn new(export_dir: impl Into<PathBuf>) -> Self {
        Self {
            export_dir: export_dir.into(),
            settings: ExportSettings::default(),
            max_events_per_batch: 50_000,
            files_per_step: 500,
            ladok: None,
        }
    }

    /// The folder of a batch.
    pub fn batch_dir(&self, batch_id: BatchId) -> PathBuf {
        self.export_dir.join(batch_id.to_string())
    }
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A new batch took these many certificates and revocations.
    Created {
        batch_id: BatchId,
        certificates: usize,
        revocations: usize,
    },
    /// These files of a batch are on disk and recorded (the manifest alone, after all others).
    FilesWritten {
        batch_id: BatchId,
        names: Vec<String>,
    },
    /// A batch's folder is complete.
    Completed { batch_id: BatchId },
    /// Ladok holds the certificate's merit.
    Delivered {
        batch_id: BatchId,
        certificate_id: CertificateId,
    },
    /// A delivery failed and was recorded.
    DeliveryFailed {
        batch_id: BatchId,
        certificate_id: CertificateId,
        reason: &'static str,
    },
    /// Ladok failed earlier in the run: these many open certificates of the batch wait for the next.
    Deferred {
        batch_id: BatchId,
        certificates: usize,
    },
    /// Nothing to do.
    Idle,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Another worker holds the lock; this run did nothing.
    Busy,
    /// The run worked until nothing was left to do.
    Ran {
        /// Batches completed by this run (including one it resumed).
        completed: Vec<BatchId>,
        files_written: usize,
        /// Certificates delivered to Ladok by this run.
        delivered: usize,
        /// Delivery failures recorded by this run.
        failed: usize,
    },
}

/// The files of the batch being written, rendered once per run, not once per file.
#[derive(Debug)]
struct Rendered {
    batch_id: BatchId,
    files: Vec<ExportFile>,
    /// Every file before this index was seen written.
    next: usize,
}

/// The export worker of one process. Holds the rendered files of the batch it is working on, so a
/// batch is rendered once per run, not once per file.
#[derive(Debug)]
pub struct ExportWorker {
    /// Every step is recorded through the command handler, like every other write.
    commands: CommandHandler,
    config: WorkerConfig,
    /// The run's correlation id, on every event it appends.
    correlation_id: Uuid,
    rendered: Option<Rendered>,
    /// The batch last worked on as its stream told it (see [`Self::batch_state`]).
    state: Option<(BatchId, Arc<BatchState>)>,
    /// The certificates of the batch being delivered, so a batch is loaded once per run.
    certificates: Option<(BatchId, Vec<ExportCertificate>)>,
    ladok: Option<LadokClient>,
    /// Certificates tried this run: each gets one delivery attempt (with its retries) per run.
    attempted: HashSet<CertificateId>,
    /// Set when Ladok as a whole failed (authentication, unavailable), to the failure's reason code:
    /// no more deliveries this run.
    ladok_down: Option<&'static str>,
    /// Batches whose open certificates this run deferred (or found none to defer).
    deferred: HashSet<BatchId>,
}

impl ExportWorker {
    pub fn new(store: EventStore, config: WorkerConfig) -> Self {
        Self {
            commands: CommandHandler::new(store),
            config,
            correlation_id: Uuid::now_v7(),
            rendered: None,
            state: None,
            certificates: None,
            ladok: None,
            attempted: HashSet::new(),
            ladok_down: None,
            deferred: HashSet::new(),
        }
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// One run: take the lock (or return [`RunOutcome::Busy`]), step until idle, release the lock.
    pub async fn run_once(&mut self) -> Result<RunOutcome, WorkerError> {
        let Some(mut lock) = ExportLock::try_acquire(self.store().pool()).await? else {
            tracing::info!("another export worker is running; this run does nothing");
            return Ok(RunOutcome::Busy);
        };
        self.correlation_id = Uuid::now_v7();
        self.rendered = None;
        self.state = None;
        self.certificates = None;
        self.attempted.clear();
        self.ladok_down = None;
        self.deferred.clear();
        let mut completed = Vec::new();
        let mut files_written = 0;
        let (mut delivered, mut failed) = (0, 0);
        let result = loop {
            match self.step(&mut lock).await {
                Ok(Step::Idle) => break Ok(()),
                Ok(Step::Created {
                    batch_id,
                    certificates,
                    revocations,
                }) => {
                    tracing::info!(%batch_id, certificates, revocations, "export batch created")
                }
                Ok(Step::FilesWritten { names, .. }) => files_written += names.len(),
                Ok(Step::Completed { batch_id }) => {
                    tracing::info!(%batch_id, "export batch complete");
                    completed.push(batch_id);
                }
                Ok(Step::Delivered { .. }) => delivered += 1,
                Ok(Step::DeliveryFailed { .. }) => failed += 1,
                Ok(Step::Deferred {
                    batch_id,
                    certificates,
                }) => {
                    tracing::info!(%batch_id, certificates, "Ladok deliveries deferred to the next run")
                }
                Err(e) => break Err(e),
            }
        };
        lock.release().await;
        result.map(|()| RunOutcome::Ran {
            completed,
            files_written,
            delivered,
            failed,
        })
    }

    /// One durable unit of work. Needs the lock (as proof that this worker may work); tests call it
    /// directly to stop a worker between two steps, as a crash would.
    pub async fn step(&mut self, lock: &mut ExportLock) -> Result<Step, WorkerError> {
        lock.check().await?;
        if let Some(batch_id) = self.unfinished_batch().await? {
            return self.continue_batch(batch_id).await;
        }
        match self.create_batch().await? {
            Step::Idle => {}
            created => return Ok(created),
        }
        if self.config.ladok.is_none() {
            return Ok(Step::Idle);
        }
        if let Some(reason) = self.ladok_down {
            return self.defer_open(reason).await;
        }
        self.deliver_next(lock).await
    }

    /// The state of `batch_id`'s stream now. Reading the whole stream at every step made a batch
    /// quadratic (its first event lists every certificate, and there is a step per file and per
    /// delivery); the command handler's fold cache keeps the state and reads only the events
    /// appended since, which are usually none but may be another worker's or the registrar's, so
    /// the state is always the stream's.
    pub(super) async fn batch_state(
        &mut self,
        batch_id: BatchId,
    ) -> Result<&BatchState, WorkerError> {
        // Released first, so the handler brings the cached state up to date in place.
        self.state = None;
        let (state, _) = self
            .commands
            .load_batch(batch_id)
            .await
            .map_err(overtaken_on_conflict)?;
        Ok(&self.state.insert((batch_id, state)).1)
    }

    /// The store under the handler.
    fn store(&self) -> &EventStore {
        self.commands.store()
    }

    /// Records `command` on `batch_id`'s stream, decided on the state of `version` (the one this
    /// step read: a change since means another worker got in between). `session`: see
    /// [`Write::session`].
    async fn record_step(
        &mut self,
        batch_id: BatchId,
        version: i32,
        command: BatchCommand,
        command_id: Uuid,
        session: Option<&mut PgConnection>,
    ) -> Result<(), CommandError> {
        // The handler folds the cached state in place only when nobody else holds it: a batch's
        // state lists every certificate, and copying it at every step would make a batch quadratic.
        self.state = None;
        let ctx = CommandContext::system(WORKER_ACTOR, self.correlation_id, command_id);
        let write = Write {
            if_version: Some(version),
            session,
            selection: None,
        };
        self.commands.batch(batch_id, command, &ctx, write).await?;
        Ok(())
    }
}

/// A stable command id for one step of one batch: a step repeated after a crash is the same command,
/// so the store's idempotency stops it from being recorded twice.
fn step_id(batch_id: BatchId, step: &str) -> Uuid {
    Uuid::new_v5(batch_id.as_uuid(), step.as_bytes())
}

/// A step decided on a stream that moved on, or lost its race: another worker got in between.
fn overtaken_on_conflict(e: CommandError) -> WorkerError {
    match e {
        CommandError::Conflict { .. } | CommandError::VersionMismatch { .. } => {
            WorkerError::Overtaken
        }
        CommandError::Store(e) => WorkerError::Store(e),
        other => WorkerError::Command(other),
    }
}

/// The folders of the completed batches under `export_dir`, oldest first (for tests and tools).
pub fn batch_folders(export_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(export_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_key_is_stable_and_apart_from_the_projections() {
        assert_eq!(lock_key(), lock_key());
        assert_ne!(lock_key(), crate::projections::lock::lock_key("export"));
    }

    #[test]
    fn step_ids_are_stable_per_batch_and_step() {
        let batch = BatchId::new(Uuid::from_u128(1));
        assert_eq!(step_id(batch, "file:a"), step_id(batch, "file:a"));
        assert_ne!(step_id(batch, "file:a"), step_id(batch, "file:b"));
        assert_ne!(
            step_id(batch, "file:a"),
            step_id(BatchId::new(Uuid::from_u128(2)), "file:a")
        );
    }
}
