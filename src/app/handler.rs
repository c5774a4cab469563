//! The command handler: one pipeline for every command of every aggregate. Load the stream's state
//! (from the fold cache, reading only the events after it), decide, and commit with the version that
//! was loaded as the expected one (`commit.rs`). A lost race is retried once against the new state;
//! a retried command id returns the first outcome.

use std::sync::Arc;

use super::command::{CommandContext, CommandError, Handled};

use super::aggregate::{Aggregate, BatchAggregate, PortfolioAggregate, ProgramAggregate};
use super::commit::Write;
use crate::domain::batch::{BatchCommand, BatchEvent, BatchState};
use crate::domain::{
    BatchId, DomainError, PortfolioCommand, PortfolioEvent, PortfolioId, PortfolioState,
    ProgramCommand, ProgramEvent, ProgramId, ProgramState,
};
use crate::log::FoldCache;
use crate::store::{EventStore, RecordedEvent};

/// How many streams of each kind the handler keeps folded. A portfolio's state is a few KiB; the
/// streams a service advances at one time are far fewer than this.
const CACHED_PORTFOLIOS: usize = 4_000;
/// A portfolio's fold holds the student's personal data: an entry nobody uses is dropped after at
/// most twice this, so an erasure made through another instance does not linger in this one's
/// memory (this instance's own erasures drop the entry at once).
const PORTFOLIO_FOLD_AGE: std::time::Duration = std::time::Duration::from_secs(5 * 60);
const CACHED_PROGRAMS: usize = 256;
/// A batch's state lists every certificate it took; the worker works on one at a time.
const CACHED_BATCHES: usize = 16;

/// The handler's folds, one cache per aggregate (see `log::fold_cache`).
#[derive(Debug)]
pub(super) struct Caches {
    pub programs: FoldCache<Arc<ProgramState>>,
    pub portfolios: FoldCache<Arc<PortfolioState>>,
    pub batches: FoldCache<Arc<BatchState>>,
}

/// Runs commands. Cheap to clone: the clones share the store and the fold caches.
#[derive(Debug, Clone)]
pub struct CommandHandler {
    store: EventStore,
    caches: Arc<Caches>,
}

impl CommandHandler {
    pub fn new(store: EventStore) -> Self {
        Self {
            store,
            caches: Arc::new(Caches {
                programs: FoldCache::new(CACHED_PROGRAMS),
                portfolios: FoldCache::with_max_age(CACHED_PORTFOLIOS, PORTFOLIO_FOLD_AGE),
                batches: FoldCache::new(CACHED_BATCHES),
            }),
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

    /// The current state of a program and its stream version.
    pub async fn load_program(
        &self,
        id: ProgramId,
    ) -> Result<(Arc<ProgramState>, i32), CommandError> {
        self.load::<ProgramAggregate>(&id.stream_id()).await
    }

    /// The current state of a portfolio and its stream version.
    pub async fn load_portfolio(
        &self,
        id: PortfolioId,
    ) -> Result<(Arc<PortfolioState>, i32), CommandError> {
        self.load::<PortfolioAggregate>(&id.stream_id()).await
    }

    /// The current state of an export batch and its stream version.
    pub async fn load_batch(&self, id: BatchId) -> Result<(Arc<BatchState>, i32), CommandError> {
        self.load::<BatchAggregate>(&id.stream_id()).await
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
        for attempt in 0..2 {
            let (state, version) = self.fold::<A>(stream_id).await?;
            let outcome = self
                .attempt::<A>(
                    stream_id,
                    state,
                    version,
                    program,
                    command.clone(),
                    ctx,
                    &mut write,
                )
                .await;
            match outcome {
                Err(CommandError::Conflict { .. }) if attempt == 0 => continue,
                other => return other,
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// Decides `command` against `state` (the stream folded to `version`, taken out of the fold
    /// cache) and commits the outcome. Whatever happens, the cache gets a fold back.
    #[allow(clippy::too_many_arguments)]
    async fn attempt<A: Aggregate>(
        &self,
        stream_id: &str,
        state: A::State,
        version: i32,
        program: Option<ProgramId>,
        command: A::Command,
        ctx: &CommandContext,
        write: &mut Write<'_>,
    ) -> Result<Handled<A::State, A::Event>, CommandError> {
        let cache = A::cache(&self.caches);
        let state = Arc::new(state);
        cache.put(stream_id, version, state.clone());
        if let Some(expected) = write.if_version.filter(|v| *v != version) {
            let stale = CommandError::VersionMismatch {
                expected,
                current: version,
            };
            return self.refused::<A>(stream_id, stale, ctx).await;
        }
        let program_state = match A::program_of(&state, program) {
            Ok(Some(id)) => Some(self.load::<ProgramAggregate>(&id.stream_id()).await?.0),
            Ok(None) => None,
            Err(refusal) => return self.refused::<A>(stream_id, refusal, ctx).await,
        };
        let subject = A::subject(&state, &command);
        let events = match A::decide(&state, program_state.as_deref(), command, ctx.now) {
            Ok(events) => events,
            Err(refusal) => return self.refused::<A>(stream_id, refusal, ctx).await,
        };
        if events.is_empty() {
            return Ok(Handled {
                state,
                events,
                outcome: None,
                version,
            });
        }
        let companion = A::companion(stream_id, &state, &events);
        let new: Vec<_> = events.iter().map(|e| A::encode(e, subject)).collect();
        let outcome = self
            .commit(stream_id, version, &new, ctx, companion, write)
            .await?;
        if outcome.duplicate {
            // A retry that already took effect answers with the state now.
            drop(state);
            let (state, version) = self.load::<A>(stream_id).await?;
            return Ok(Handled {
                state,
                events: Vec::new(),
                outcome: Some(outcome),
                version,
            });
        }
        // The state decided on is now only in the cache, under the old version: take it back
        // (no copy), unless a concurrent reader holds it.
        let before = match cache.take(stream_id, version) {
            Some(cached) => {
                drop(state);
                Arc::unwrap_or_clone(cached)
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
                    return Ok(Handled {
                        state: after,
                        events,
                        outcome: Some(outcome),
                        version,
                    });
                }
                // The events are committed whatever happens to that read: the answer folds them
                // with the decision's clock instead, and is not cached.
                Err(e) => {
                    tracing::warn!(error = %e, stream_id, "reading a stream back after its command failed");
                    let after = events.iter().fold(before, |s, e| {
                        A::evolve(s, e, outcome.last_version, ctx.now)
                    });
                    return Ok(Handled {
                        state: Arc::new(after),
                        events,
                        outcome: Some(outcome),
                        version: outcome.last_version,
                    });
                }
            }
        }
        let after = events.iter().fold(before, |s, e| {
            A::evolve(s, e, outcome.last_version, ctx.now)
        });
        let after = Arc::new(after);
        cache.put(stream_id, outcome.last_version, after.clone());
        Ok(Handled {
            state: after,
            events,
            outcome: Some(outcome),
            version: outcome.last_version,
        })
    }

    /// The stream's state now, left in the fold cache.
    async fn load<A: Aggregate>(
        &self,
        stream_id: &str,
    ) -> Result<(Arc<A::State>, i32), CommandError> {
        let (state, version) = self.fold::<A>(stream_id).await?;
        let state = Arc::new(state);
        A::cache(&self.caches).put(stream_id, version, state.clone());
        Ok((state, version))
    }

    /// The stream folded to its end: the cached fold and the events after it, or (on a miss, or
    /// after an erasure that a fold in memory would not know of) every event. Taken out of the
    /// cache: the caller puts back what it has.
    async fn fold<A: Aggregate>(&self, stream_id: &str) -> Result<(A::State, i32), CommandError> {
        if let Some((version, cached)) = A::cache(&self.caches).take_latest(stream_id) {
            let (newer, decoded) = self.read_after::<A>(stream_id, version).await?;
            if !decoded.iter().any(A::forgets) {
                let state = Arc::unwrap_or_clone(cached);
                return Ok(apply::<A>(state, version, &newer, decoded));
            }
        }
        let (all, decoded) = self.read_after::<A>(stream_id, 0).await?;
        Ok(apply::<A>(A::State::default(), 0, &all, decoded))
    }

    /// The stream's events after `version`, as stored and decoded.
    async fn read_after<A: Aggregate>(
        &self,
        stream_id: &str,
        version: i32,
    ) -> Result<(Vec<RecordedEvent>, Vec<A::Event>), CommandError> {
        let recorded = self.store.read_stream(stream_id, version).await?;
        let decoded = decode_all::<A>(&recorded)?;
        Ok((recorded, decoded))
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

fn decode_all<A: Aggregate>(recorded: &[RecordedEvent]) -> Result<Vec<A::Event>, CommandError> {
    recorded
        .iter()
        .map(|event| {
            A::decode(event).map_err(|e| CommandError::Corrupt {
                position: event.position(),
                reason: e.to_string(),
            })
        })
        .collect()
}

fn apply<A: Aggregate>(
    state: A::State,
    version: i32,
    recorded: &[RecordedEvent],
    decoded: Vec<A::Event>,
) -> (A::State, i32) {
    recorded
        .iter()
        .zip(decoded)
        .fold((state, version), |(state, _), (r, e)| {
            (A::evolve(state, &e, r.version, r.recorded_at), r.version)
        })
}
