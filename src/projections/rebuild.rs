//! The offline rebuild behind `cim projections rebuild`: throw a read model away and apply the whole
//! log again, with progress, interruptible, and resumable.
//!
//! It uses the same reset and the same batch transaction as the live runner, so a rebuilt read model
//! equals the live one (guarantee 6). Each batch commits with its checkpoint while the status stays
//! `rebuilding`; an interrupted rebuild (Ctrl-C, crash, lost connection) therefore continues where it
//! stopped when started again, instead of beginning anew: rebuilds of large logs must not be
//! all-or-nothing.

use super::checkpoint::{self, Phase, version_i32};
use super::feed::LogFeed;
use super::lock::ProjectionLock;
use super::{Projection, ProjectionError, definition_hash};
use crate::store::Checkpoint;
use sqlx::PgPool;
use std::sync::atomic::{AtomicBool, Ordering};

/// How to rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildOptions {
    /// Start from scratch even when an interrupted rebuild could be resumed.
    pub restart: bool,
    /// Events per transaction (and per progress report).
    pub batch_size: i64,
}

impl Default for RebuildOptions {
    fn default() -> Self {
        Self {
            restart: false,
            // Larger than the live runner's 1,000: an offline rebuild has only the log to catch
            // up with, and per batch it pays a transaction, its round trips and the projections'
            // lookups of what earlier batches stored. `cim-bench`'s rebuild of the audit alone went
            // from 55,000 to 64,000–69,000 events/s, all five at once from 25,000 to 32,000. The
            // feed remembers up to eight batches, so a rebuild holds some 32,000 events in memory.
            batch_size: 4_000,
        }
    }
}

/// What [`rebuild`] reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebuildProgress {
    /// About to apply events. `resumed_from` is set when an interrupted rebuild continues;
    /// `events_applied` is what is already done.
    Started {
        resumed_from: Option<Checkpoint>,
        events_applied: i64,
    },
    /// A batch committed.
    Batch {
        checkpoint: Checkpoint,
        events_applied: i64,
    },
}

/// How a [`rebuild`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebuildOutcome {
    /// Caught up with the log; the projection is `live`.
    Completed {
        checkpoint: Checkpoint,
        events_applied: i64,
    },
    /// `stop` was set; the projection stays `rebuilding` at `checkpoint`, and the next rebuild
    /// without `restart` resumes there.
    Interrupted {
        checkpoint: Checkpoint,
        events_applied: i64,
    },
}

/// Rebuilds `projection` from the log, read through `feed` (rebuilds of several projections at
/// once share one feed, and so one read of the log).
///
/// Starts from scratch (drop tables, DDL, checkpoint to the start) unless the projection is still
/// `rebuilding` with this binary's definition and `options.restart` is false: then it resumes from its
/// checkpoint. Checks `stop` between batches, so an interruption never leaves a half-applied batch.
///
/// `lock` must hold the projection's lock (so no `cim serve` advances it meanwhile); it is checked
/// before every batch, and a lost lock ends the rebuild with an error (resumable). A projection that
/// the database holds at a newer version than this binary's is refused
/// ([`ProjectionError::Outdated`]): rebuilding it would downgrade it.
///
/// # Panics
///
/// When `lock` is not held, or is for another projection.
pub async fn rebuild(
    feed: &LogFeed,
    pool: &PgPool,
    lock: &mut ProjectionLock,
    projection: &dyn Projection,
    options: RebuildOptions,
    stop: &AtomicBool,
    progress: &mut (dyn FnMut(RebuildProgress) + Send),
) -> Result<RebuildOutcome, ProjectionError> {
    let name = projection.name();
    assert!(
        lock.is_held() && lock.name() == name,
        "rebuilding projection {name} requires holding its lock"
    );
    let hash = definition_hash(projection);
    let stored = checkpoint::load(pool, name).await?;
    if let Some(s) = &stored
        && s.version > version_i32(projection)
    {
        return Err(ProjectionError::Outdated {
            name: name.to_owned(),
            stored: s.version,
            ours: projection.version(),
        });
    }
    let resume = stored
        .filter(|s| !options.restart && s.phase == Phase::Rebuilding && s.definition_hash == hash);
    let (mut at, mut applied) = match &resume {
        Some(s) => (s.checkpoint, s.events_applied),
        None => {
            checkpoint::reset(pool, projection).await?;
            (Checkpoint::START, 0)
        }
    };
    progress(RebuildProgress::Started {
        resumed_from: resume.map(|s| s.checkpoint),
        events_applied: applied,
    });
    let follower = feed.follow();
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(RebuildOutcome::Interrupted {
                checkpoint: at,
                events_applied: applied,
            });
        }
        lock.check().await?;
        let batch = follower.read_after(at, options.batch_size).await?;
        if batch.is_empty() {
            checkpoint::mark_live(pool, name, &hash).await?;
            return Ok(RebuildOutcome::Completed {
                checkpoint: at,
                events_applied: applied,
            });
        }
        at = checkpoint::apply_batch(pool, projection, &hash, at, &batch).await?;
        applied += batch.len() as i64;
        progress(RebuildProgress::Batch {
            checkpoint: at,
            events_applied: applied,
        });
    }
}
