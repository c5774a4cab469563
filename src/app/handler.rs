//! The command handler: one pipeline for every command of every aggregate. Take the stream's state,
//! decide, and commit with the version it was folded to as the expected one (`commit.rs`). A lost
//! race is retried once against the state read from the log (a decision on the cache that lost is
//! not counted); a retried command id returns the first outcome.
//!
//! The state is first taken from the fold cache as it is, without asking the log: the append's
//! version check proves it was the stream's latest (the store refuses an append whose expected
//! version is not the stream's end), so a decision on it that appends is a decision on the current
//! state. Only something else (a conflict, a refusal of the rules or of what commits with the
//! events, a command that changes nothing, a stale `If-Match`) may be an artefact of a cache behind the log, written by another instance or by
//! hand, and it is decided again on the stream read from the log (the events after the cached
//! fold). A program's state, read for the decision but not appended to, is taken from the cache
//! only while it is at most [`PROGRAM_TRUST`] old.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::command::{CommandContext, CommandError, Handled};

use super::aggregate::{Aggregate, BatchAggregate, PortfolioAggregate, ProgramAggregate};
use super::commit::Write;
use super::loading::apply;
use crate::domain::batch::{BatchCommand, BatchEvent, BatchState};
use crate::domain::{
    BatchId, DomainError, PortfolioCommand, PortfolioEvent, PortfolioId, PortfolioState,
    ProgramCommand, ProgramEvent, ProgramId, ProgramState,
};
use crate::log::FoldCache;
use crate::store::EventStore;

/// How many streams of each kind the handler keeps folded: more than a service advances at one time.
const CACHED_PORTFOLIOS: usize = 4_000;
/// A portfolio's state holds what the student wrote: from a few KiB to over 100 KiB with thirteen
/// reflections of 1,000 words. The cache also turns over at about this much (`cim-bench` section 7
/// watches the service's memory).
const PORTFOLIO_FOLD_BYTES: usize = 128 << 20;
/// A portfolio's fold holds the student's personal data: an entry nobody uses is dropped after at
/// most twice this, so an erasure made through another instance does not linger in this one's
/// memory (this instance's own erasures drop the entry at once).
const PORTFOLIO_FOLD_AGE: std::time::Duration = std::time::Duration::from_secs(5 * 60);
const CACHED_PROGRAMS: usize = 256;
/// A batch's state lists every certificate it took; the worker works on one at a time.
const CACHED_BATCHES: usize = 16;
/// How long a program's fold, last read or written by this instance, is used without asking the
/// log: a change of rules or catalog made through another instance reaches this one's decisions
/// within this time (this instance's own changes at once: they go through its cache).
pub const PROGRAM_TRUST: std::time::Duration = std::time::Duration::from_secs(1);

/// How many commands a handler runs at once, per core of the machine (plus one): a command's work
/// is mostly the database's, and a database given more statements than it has cores only switches
/// between them. With 32 clients' commands let through at once on two cores, `cim-bench` measured
/// no more commands per second than with seven, while the projections, sharing those cores, fell
/// 150-190 ms behind (p99) instead of about 50 (docs/performance.md, "fifth round"). The others
/// wait for a slot in arrival order, before they read or write anything.
const COMMAND_SLOTS_PER_CORE: usize = 3;

/// Where the state a command is decided on came from (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Basis {
    /// The fold cache as it was: only an append proves it current.
    Cached,
    /// The log, just now.
    Read,
}

/// The handler's folds, one cache per aggregate (see `log::fold_cache`).
#[derive(Debug)]
pub(super) struct Caches {
    pub programs: FoldCache<Arc<ProgramState>>,
    pub portfolios: FoldCache<Arc<PortfolioState>>,
    pub batches: FoldCache<Arc<BatchState>>,
}

/// Runs commands. Cheap to clone: the clones share the store, the fold caches and the slots.
#[derive(Debug, Clone)]
pub struct CommandHandler {
    store: EventStore,
    pub(super) caches: Arc<Caches>,
    /// See [`COMMAND_SLOTS_PER_CORE`].
    slots: Arc<Semaphore>,
}

impl CommandHandler {
    pub fn new(store: EventStore) -> Self {
        Self {
            store,
            caches: Arc::new(Caches {
                programs: FoldCache::new(CACHED_PROGRAMS),
                portfolios: FoldCache::with_max_age(CACHED_PORTFOLIOS, PORTFOLIO_FOLD_AGE)
                    .weighed(PORTFOLIO_FOLD_BYTES, |state| state.approx_bytes()),
                batches: FoldCache::new(CACHED_BATCHES),
            }),
            slots: Arc::new(Semaphore::new(command_slots())),
        }
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// Drops the fold of a portfolio whose personal data was just erased. (Any later load would
    /// fold it again anyway, reading the erasure; this drops the data from memory now.)
    pub(super) fn forget_portfolio(&self, id: PortfolioId) {
        drop(self.caches.portfolios.take_latest(&id.stream_id()));
    }

    /// Whether a fold of the portfolio (with its student's personal data) is held in memory.
    pub fn holds_portfolio_fold(&self, id: PortfolioId) -> bool {
        self.caches.portfolios.contains(&id.stream_id())
    }

    pub async fn program(
        &self,
        id: ProgramId,
        command: ProgramCommand,
        ctx: &CommandContext,
    ) -> Result<Handled<ProgramState, ProgramEvent>, CommandError> {
        self.program_if(id, command, ctx, None).await
    }

    /// [`Self::program`], decided only if the stream is still at `if_version` (the client's
    /// `If-Match`); see [`Self::portfolio_if`].
    pub async fn program_if(
        &self,
        id: ProgramId,
        command: ProgramCommand,
        ctx: &CommandContext,
        if_version: Option<i32>,
    ) -> Result<Handled<ProgramState, ProgramEvent>, CommandError> {
        let write = Write::if_version(if_version);
        self.execute::<ProgramAggregate>(&id.stream_id(), None, command, ctx, write)
            .await
    }

    /// Opens the student's portfolio in `program_id`; other commands go through [`Self::portfolio`].
    ///
    /// The portfolio's id is [`PortfolioId::of`] the student and the program, whatever id the
    /// command names: one student, one program, one stream, so the append's "no stream yet" check
    /// refuses a second portfolio even when many opens race. The loser of such a race (or a later
    /// open) gets [`CommandError::PortfolioExists`] naming the portfolio that is there, unless it is a
    /// retry of the command that opened it, which gets that first outcome.
    pub async fn open_portfolio(
        &self,
        program_id: ProgramId,
        command: PortfolioCommand,
        ctx: &CommandContext,
    ) -> Result<Handled<PortfolioState, PortfolioEvent>, CommandError> {
        let PortfolioCommand::OpenPortfolio {
            student_uid,
            identity_number,
            name,
            email,
            expected_completion,
            identity_check,
            ..
        } = command
        else {
            return Err(CommandError::Domain(DomainError::PortfolioNotOpened));
        };
        let portfolio_id = PortfolioId::of(student_uid, program_id);
        let command = PortfolioCommand::OpenPortfolio {
            portfolio_id,
            student_uid,
            identity_number,
            name,
            email,
            expected_completion,
            identity_check,
        };
        let stream_id = portfolio_id.stream_id();
        let write = Write::default();
        match self
            .execute::<PortfolioAggregate>(&stream_id, Some(program_id), command, ctx, write)
            .await
        {
            Err(CommandError::Domain(DomainError::PortfolioAlreadyOpened)) => {
                Err(CommandError::PortfolioExists { portfolio_id })
            }
            other => other,
        }
    }

    /// A command on an existing portfolio (its program is the one it was opened in).
    pub async fn portfolio(
        &self,
        portfolio_id: PortfolioId,
        command: PortfolioCommand,
        ctx: &CommandContext,
    ) -> Result<Handled<PortfolioState, PortfolioEvent>, CommandError> {
        self.portfolio_if(portfolio_id, command, ctx, None).await
    }

    /// [`Self::portfolio`], decided only if the stream is still at `if_version` (the client's
    /// `If-Match`). The check is made on the state the command is decided against, and the append
    /// expects that same version, so a change landing between the client's read and the append is
    /// always caught: before the decision as `VersionMismatch`, or by the store as a conflict whose
    /// retry then finds the stream moved on. A retry of a command that already took effect is
    /// answered with its outcome, not refused.
    pub async fn portfolio_if(
        &self,
        portfolio_id: PortfolioId,
        command: PortfolioCommand,
        ctx: &CommandContext,
        if_version: Option<i32>,
    ) -> Result<Handled<PortfolioState, PortfolioEvent>, CommandError> {
        let write = Write::if_version(if_version);
        self.execute::<PortfolioAggregate>(&portfolio_id.stream_id(), None, command, ctx, write)
            .await
    }

    /// A command on an export batch: the export worker's steps and the registrar's actions.
    pub async fn batch(
        &self,
        batch_id: BatchId,
        command: BatchCommand,
        ctx: &CommandContext,
        write: Write<'_>,
    ) -> Result<Handled<BatchState, BatchEvent>, CommandError> {
        self.execute::<BatchAggregate>(&batch_id.stream_id(), None, command, ctx, write)
            .await
    }

    /// The pipeline. `program` is the program an opening command names.
    async fn execute<A: Aggregate>(
        &self,
        stream_id: &str,
        program: Option<ProgramId>,
        command: A::Command,
        ctx: &CommandContext,
        mut write: Write<'_>,
    ) -> Result<Handled<A::State, A::Event>, CommandError> {
        // Never closed. Held until the command is answered; no command runs another inside it.
        let _slot = self
            .slots
            .acquire()
            .await
            .expect("command slots are never closed");
        let mut cached = A::cache(&self.caches).peek_latest(stream_id, None);
        // Decisions on a fold read from the log: a conflict on the first is retried once.
        let mut reads = 0;
        loop {
            let (state, version, basis) = match cached.take() {
                Some((version, state)) => (state, version, Basis::Cached),
                None => {
                    reads += 1;
                    let (state, version) = self.fold::<A>(stream_id).await?;
                    (Arc::new(state), version, Basis::Read)
                }
            };
            let outcome = self
                .attempt::<A>(
                    stream_id,
                    (state, version, basis),
                    program,
                    command.clone(),
                    ctx,
                    &mut write,
                )
                .await;
            match outcome {
                Ok(Some(handled)) => return Ok(handled),
                // Decided on the cache, and not an append: decided again on the log.
                Ok(None) => continue,
                Err(CommandError::Conflict { .. }) if reads < 2 => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Decides `command` against `state` (the stream folded to `version`) and commits the outcome.
    /// `Ok(None)` when a decision on the cache as it was (`Basis::Cached`) came to anything but an
    /// append, which the caller decides again on the log. Whatever happens, the cache keeps a fold.
    #[allow(clippy::too_many_arguments)]
    async fn attempt<A: Aggregate>(
        &self,
        stream_id: &str,
        (state, version, basis): (Arc<A::State>, i32, Basis),
        program: Option<ProgramId>,
        command: A::Command,
        ctx: &CommandContext,
        write: &mut Write<'_>,
    ) -> Result<Option<Handled<A::State, A::Event>>, CommandError> {
        let cache = A::cache(&self.caches);
        let cached = basis == Basis::Cached;
        if !cached {
            cache.put_unless_newer(stream_id, version, state.clone());
        }
        if let Some(expected) = write.if_version.filter(|v| *v != version) {
            if cached {
                return Ok(None);
            }
            let stale = CommandError::VersionMismatch {
                expected,
                current: version,
            };
            return self.refused::<A>(stream_id, stale, ctx).await.map(Some);
        }
        let program_state = match A::program_of(&state, program) {
            Ok(Some(id)) if cached => Some(self.recent_program(id).await?.0),
            Ok(Some(id)) => Some(self.load::<ProgramAggregate>(&id.stream_id()).await?.0),
            Ok(None) => None,
            Err(_) if cached => return Ok(None),
            Err(refusal) => return self.refused::<A>(stream_id, refusal, ctx).await.map(Some),
        };
        let subject = A::subject(&state, &command);
        let events = match A::decide(&state, program_state.as_deref(), command, ctx.now) {
            Ok(events) => events,
            Err(_) if cached => return Ok(None),
            Err(refusal) => return self.refused::<A>(stream_id, refusal, ctx).await.map(Some),
        };
        if events.is_empty() {
            return Ok((!cached).then_some(Handled {
                state,
                events,
                outcome: None,
                version,
            }));
        }
        let companion = A::companion(stream_id, &state, &events);
        let new: Vec<_> = events.iter().map(|e| A::encode(e, subject)).collect();
        let outcome = match self
            .commit(stream_id, version, &new, ctx, companion, write)
            .await
        {
            Ok(outcome) => outcome,
            // What commits with the events is checked before the append's version: a refusal there
            // (an identity number taken) may come from the cache's staleness too.
            Err(e) if cached && !matches!(e, CommandError::Conflict { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        if outcome.duplicate {
            // A retry that already took effect answers with the state now.
            drop(state);
            let (state, version) = self.load::<A>(stream_id).await?;
            return Ok(Some(Handled {
                state,
                events: Vec::new(),
                outcome: Some(outcome),
                version,
            }));
        }
        // The state decided on is also in the cache, under the old version: take it back (no
        // copy), unless a concurrent reader holds it.
        let before = match cache.take(stream_id, version) {
            Some(held) => {
                drop(state);
                Arc::unwrap_or_clone(held)
            }
            None => Arc::unwrap_or_clone(state),
        };
        if A::FOLDS_RECORDING_TIME {
            // Read back with the events as stored (their recording time).
            match self.read_after::<A>(stream_id, version).await {
                Ok((recorded, decoded)) => {
                    let (after, version) = apply::<A>(before, version, &recorded, decoded);
                    let after = Arc::new(after);
                    cache.put(stream_id, version, after.clone());
                    return Ok(Some(Handled {
                        state: after,
                        events,
                        outcome: Some(outcome),
                        version,
                    }));
                }
                // The events are committed whatever happens to that read: the answer folds them
                // with the decision's clock instead, and is not cached.
                Err(e) => {
                    tracing::warn!(error = %e, stream_id, "reading a stream back after its command failed");
                    let after = events.iter().fold(before, |s, e| {
                        A::evolve(s, e, outcome.last_version, ctx.now)
                    });
                    return Ok(Some(Handled {
                        state: Arc::new(after),
                        events,
                        outcome: Some(outcome),
                        version: outcome.last_version,
                    }));
                }
            }
        }
        let after = events.iter().fold(before, |s, e| {
            A::evolve(s, e, outcome.last_version, ctx.now)
        });
        let after = Arc::new(after);
        cache.put(stream_id, outcome.last_version, after.clone());
        Ok(Some(Handled {
            state: after,
            events,
            outcome: Some(outcome),
            version: outcome.last_version,
        }))
    }

    /// A refusal may be the rules seeing the effect of this very command's first attempt (a retried
    /// "apply" finds the application already made). A command id already in the log therefore gets the
    /// first outcome, not the refusal.
    async fn refused<A: Aggregate>(
        &self,
        stream_id: &str,
        refusal: impl Into<CommandError>,
        ctx: &CommandContext,
    ) -> Result<Handled<A::State, A::Event>, CommandError> {
        match self.store.command_outcome(ctx.command_id).await? {
            Some(outcome) => {
                let (state, version) = self.load::<A>(stream_id).await?;
                Ok(Handled {
                    state,
                    events: Vec::new(),
                    outcome: Some(outcome),
                    version,
                })
            }
            None => Err(refusal.into()),
        }
    }
}

/// [`COMMAND_SLOTS_PER_CORE`] times the cores this process may use, plus one.
fn command_slots() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores * COMMAND_SLOTS_PER_CORE + 1
}
