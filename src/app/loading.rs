//! How the command handler gets a stream's state: from its fold cache, trusted as it is or only
//! while recent, or from the log (the events after the cached fold, or all of them). The handler's
//! module docs say when each is used.

use std::sync::Arc;

use super::aggregate::{Aggregate, BatchAggregate, PortfolioAggregate, ProgramAggregate};
use super::command::CommandError;
use super::handler::{CommandHandler, PROGRAM_TRUST};
use crate::domain::batch::BatchState;
use crate::domain::{BatchId, PortfolioId, PortfolioState, ProgramId, ProgramState};
use crate::store::RecordedEvent;

impl CommandHandler {
    /// A portfolio's state to decide who may run a command on it: the fold this instance holds
    /// (perhaps behind the log, which the command's append finds out), else the current state. Its
    /// student and program never change once opened; a state not (yet) opened is always read.
    pub async fn known_portfolio(
        &self,
        id: PortfolioId,
    ) -> Result<(Arc<PortfolioState>, i32), CommandError> {
        let stream_id = id.stream_id();
        match self.caches.portfolios.peek_latest(&stream_id, None) {
            Some((version, state)) if state.opened().is_some() => Ok((state, version)),
            _ => self.load::<PortfolioAggregate>(&stream_id).await,
        }
    }

    /// A program's state as of at most [`PROGRAM_TRUST`] ago: for the rules a portfolio is shown
    /// under.
    pub async fn recent_program(
        &self,
        id: ProgramId,
    ) -> Result<(Arc<ProgramState>, i32), CommandError> {
        self.recent::<ProgramAggregate>(&id.stream_id(), PROGRAM_TRUST)
            .await
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

    /// The stream's state now, left in the fold cache.
    pub(super) async fn load<A: Aggregate>(
        &self,
        stream_id: &str,
    ) -> Result<(Arc<A::State>, i32), CommandError> {
        let (state, version) = self.fold::<A>(stream_id).await?;
        let state = Arc::new(state);
        // A command of this instance may have put a later version while this one was read.
        A::cache(&self.caches).put_unless_newer(stream_id, version, state.clone());
        Ok((state, version))
    }

    /// The stream's state as this instance put it in the fold cache at most `max_age` ago, else
    /// read now (and cached).
    pub(super) async fn recent<A: Aggregate>(
        &self,
        stream_id: &str,
        max_age: std::time::Duration,
    ) -> Result<(Arc<A::State>, i32), CommandError> {
        match A::cache(&self.caches).peek_latest(stream_id, Some(max_age)) {
            Some((version, state)) => Ok((state, version)),
            None => self.load::<A>(stream_id).await,
        }
    }

    /// The stream folded to its end: the cached fold and the events after it, or (on a miss, or
    /// after an erasure that a fold in memory would not know of) every event. Taken out of the
    /// cache: the caller puts back what it has.
    pub(super) async fn fold<A: Aggregate>(
        &self,
        stream_id: &str,
    ) -> Result<(A::State, i32), CommandError> {
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
    pub(super) async fn read_after<A: Aggregate>(
        &self,
        stream_id: &str,
        version: i32,
    ) -> Result<(Vec<RecordedEvent>, Vec<A::Event>), CommandError> {
        let recorded = self.store().read_stream(stream_id, version).await?;
        let decoded = decode_all::<A>(&recorded)?;
        Ok((recorded, decoded))
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

pub(super) fn apply<A: Aggregate>(
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
