//! The three aggregates as the command handler sees them: how a stream's events are decoded and
//! folded, how a command is decided, and what an event is stored as. The handler's pipeline
//! (`handler.rs`) is written once against this trait.

use super::batch_rows;
use super::commit::Companion;
use super::handler::Caches;
use super::identity::claim_of;
use crate::domain::batch::{self, BatchCommand, BatchEvent, BatchState};
use crate::domain::{
    DomainError, PayloadError, PortfolioCommand, PortfolioEvent, PortfolioState, ProgramCommand,
    ProgramEvent, ProgramId, ProgramState, StudentUid, portfolio, program,
};
use crate::log::{
    FoldCache, StreamKind, decode_batch, decode_portfolio, decode_program, encode, encode_batch,
    stream_kind,
};
use crate::store::{NewEvent, RecordedEvent};
use chrono::{DateTime, Utc};

/// One aggregate type.
pub(super) trait Aggregate {
    type State: Default + Clone + Send + Sync + 'static;
    type Event: Send + Sync;
    type Command: Clone + Send + Sync;
    /// Whether [`Self::evolve`] reads the time an event was recorded: the state after a command is
    /// then read back from the log rather than folded from the decided events.
    const FOLDS_RECORDING_TIME: bool = false;

    fn decode(event: &RecordedEvent) -> Result<Self::Event, PayloadError>;
    fn evolve(
        state: Self::State,
        event: &Self::Event,
        version: i32,
        at: DateTime<Utc>,
    ) -> Self::State;
    /// The program whose state [`Self::decide`] needs (a portfolio's), or a refusal when there
    /// is none; `named` is the one an opening command names.
    fn program_of(
        _state: &Self::State,
        _named: Option<ProgramId>,
    ) -> Result<Option<ProgramId>, DomainError> {
        Ok(None)
    }
    fn decide(
        state: &Self::State,
        program: Option<&ProgramState>,
        command: Self::Command,
        now: DateTime<Utc>,
    ) -> Result<Vec<Self::Event>, DomainError>;
    /// The stored form of an event; `subject` is the person its personal part belongs to.
    fn encode(event: &Self::Event, subject: Option<StudentUid>) -> NewEvent;
    /// The person a command's events are about (their personal data is sealed with their key).
    fn subject(_state: &Self::State, _command: &Self::Command) -> Option<StudentUid> {
        None
    }
    /// Whether folding `event` must start again from the log: an erasure removed personal data
    /// that an older fold in memory still holds.
    fn forgets(_event: &Self::Event) -> bool {
        false
    }
    /// What must be written with `events`, decided against `before` (see `commit.rs`).
    fn companion(_stream_id: &str, _before: &Self::State, _events: &[Self::Event]) -> Companion {
        Companion::None
    }
    fn cache(caches: &Caches) -> &FoldCache<std::sync::Arc<Self::State>>;
}

pub(super) struct ProgramAggregate;
impl Aggregate for ProgramAggregate {
    type State = ProgramState;
    type Event = ProgramEvent;
    type Command = ProgramCommand;
    fn decode(event: &RecordedEvent) -> Result<ProgramEvent, PayloadError> {
        decode_program(event)
    }
    fn evolve(state: ProgramState, event: &ProgramEvent, _: i32, _: DateTime<Utc>) -> ProgramState {
        program::evolve(state, event)
    }
    fn decide(
        state: &ProgramState,
        _: Option<&ProgramState>,
        command: ProgramCommand,
        now: DateTime<Utc>,
    ) -> Result<Vec<ProgramEvent>, DomainError> {
        program::decide(state, command, now)
    }
    fn encode(event: &ProgramEvent, _: Option<StudentUid>) -> NewEvent {
        let (kind, payload) = event.to_payload();
        encode(kind, event.schema_version(), payload, None)
    }
    fn cache(caches: &Caches) -> &FoldCache<std::sync::Arc<ProgramState>> {
        &caches.programs
    }
}

pub(super) struct PortfolioAggregate;
impl Aggregate for PortfolioAggregate {
    type State = PortfolioState;
    type Event = PortfolioEvent;
    type Command = PortfolioCommand;
    fn decode(event: &RecordedEvent) -> Result<PortfolioEvent, PayloadError> {
        decode_portfolio(event)
    }
    fn evolve(
        state: PortfolioState,
        event: &PortfolioEvent,
        _: i32,
        _: DateTime<Utc>,
    ) -> PortfolioState {
        portfolio::evolve(state, event)
    }
    /// The portfolio's own program once it exists; only opening names one.
    fn program_of(
        state: &PortfolioState,
        named: Option<ProgramId>,
    ) -> Result<Option<ProgramId>, DomainError> {
        match (state.opened(), named) {
            (Some(p), _) => Ok(Some(p.program_id)),
            (None, Some(id)) => Ok(Some(id)),
            (None, None) => Err(DomainError::PortfolioNotOpened),
        }
    }
    fn decide(
        state: &PortfolioState,
        program: Option<&ProgramState>,
        command: PortfolioCommand,
        now: DateTime<Utc>,
    ) -> Result<Vec<PortfolioEvent>, DomainError> {
        let program = program.ok_or(DomainError::ProgramNotRegistered)?;
        portfolio::decide(state, program, command, now)
    }
    fn encode(event: &PortfolioEvent, subject: Option<StudentUid>) -> NewEvent {
        let (kind, payload) = event.to_payload();
        encode(
            kind,
            event.schema_version(),
            payload,
            subject.map(|s| *s.as_uuid()),
        )
    }
    fn subject(state: &PortfolioState, command: &PortfolioCommand) -> Option<StudentUid> {
        match (command, state.opened()) {
            (_, Some(p)) => Some(p.student_uid),
            (PortfolioCommand::OpenPortfolio { student_uid, .. }, None) => Some(*student_uid),
            _ => None,
        }
    }
    fn companion(_: &str, before: &PortfolioState, events: &[PortfolioEvent]) -> Companion {
        match claim_of(before.opened(), events) {
            Some(change) => Companion::Identity(change),
            None => Companion::None,
        }
    }
    fn forgets(event: &PortfolioEvent) -> bool {
        matches!(event, PortfolioEvent::PersonalDataErased(_))
    }
    fn cache(caches: &Caches) -> &FoldCache<std::sync::Arc<PortfolioState>> {
        &caches.portfolios
    }
}

pub(super) struct BatchAggregate;
impl Aggregate for BatchAggregate {
    type State = BatchState;
    type Event = BatchEvent;
    type Command = BatchCommand;
    // A write's in-flight bound runs from the time its DeliveryStarted was recorded.
    const FOLDS_RECORDING_TIME: bool = true;
    fn decode(event: &RecordedEvent) -> Result<BatchEvent, PayloadError> {
        decode_batch(event)
    }
    fn evolve(
        state: BatchState,
        event: &BatchEvent,
        version: i32,
        at: DateTime<Utc>,
    ) -> BatchState {
        batch::evolve(state, event, version, at)
    }
    fn decide(
        state: &BatchState,
        _: Option<&ProgramState>,
        command: BatchCommand,
        _: DateTime<Utc>,
    ) -> Result<Vec<BatchEvent>, DomainError> {
        batch::decide(state, command)
    }
    fn encode(event: &BatchEvent, _: Option<StudentUid>) -> NewEvent {
        encode_batch(event)
    }
    fn companion(stream_id: &str, _: &BatchState, events: &[BatchEvent]) -> Companion {
        match stream_kind(stream_id) {
            StreamKind::Batch(id) if batch_rows::follows(events) => {
                Companion::BatchRows(id, events.to_vec())
            }
            _ => Companion::None,
        }
    }
    fn cache(caches: &Caches) -> &FoldCache<std::sync::Arc<BatchState>> {
        &caches.batches
    }
}
