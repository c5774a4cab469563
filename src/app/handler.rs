//! The thin command handler: load, decide, append with the expected version.

use super::codec::{decode_portfolio, decode_program, encode};
use super::identity::NumberChange;
use crate::domain::{
    DomainError, PayloadError, PortfolioCommand, PortfolioEvent, PortfolioId, PortfolioState,
    ProgramCommand, ProgramEvent, ProgramId, ProgramState, StudentUid, portfolio, program,
};
use crate::store::{
    ActorRole, AppendError, AppendOutcome, EventStore, ExpectedVersion, Metadata, NewEvent,
    RecordedEvent, StoreError,
};
use chrono::{DateTime, Utc};
use thiserror::Error;
use uuid::Uuid;

/// Who asks, on behalf of which request, and when. `now` is read once, at the edge, so that a decision
/// and its retry judge deadlines by the same clock.
#[derive(Debug, Clone)]
pub struct CommandContext {
    pub actor_id: String,
    pub role: ActorRole,
    pub correlation_id: Uuid,
    /// The client's idempotency key (or a fresh id): the same id twice is one command.
    pub command_id: Uuid,
    pub now: DateTime<Utc>,
}

impl CommandContext {
    pub(super) fn metadata(&self) -> Metadata {
        Metadata {
            actor_id: self.actor_id.clone(),
            actor_role: self.role,
            correlation_id: self.correlation_id,
            causation_id: None,
            command_id: self.command_id,
        }
    }
}

/// The result of a handled command: the state after it, the events it produced, and where it sits in
/// the log (`None` when the command changed nothing).
#[derive(Debug, Clone)]
pub struct Handled<S, E> {
    pub state: S,
    pub events: Vec<E>,
    pub outcome: Option<AppendOutcome>,
    /// The stream's version after the command (the portfolio's ETag).
    pub version: i32,
}

#[derive(Debug, Error)]
pub enum CommandError {
    /// The rules refused the command. Nothing was written.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Another change landed between loading and appending, twice in a row. Nothing was written; the
    /// client should reload and decide again.
    #[error(
        "the {stream_id} stream kept changing while this command was decided; reload and try again"
    )]
    Conflict { stream_id: String },
    /// The client decided on version `expected` (its `If-Match`), but the stream is at `current`.
    /// Nothing was written; the client should reload and decide again.
    #[error(
        "this resource has changed since version {expected} (it is at version {current}); reload it and decide again"
    )]
    VersionMismatch { expected: i32, current: i32 },
    /// The student already has a portfolio in this program (one per student and program).
    #[error(
        "you already have a portfolio in this program ({portfolio_id}); a student has one portfolio per program, so continue in that one"
    )]
    PortfolioExists { portfolio_id: PortfolioId },
    /// The identity number of the portfolio being opened belongs to another student UID (one number,
    /// one student, across the service). The message never names the number or the other student.
    #[error(
        "this identity number already belongs to another student in this service; if it is yours, contact the registrar's office"
    )]
    IdentityNumberTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event does not fit its type: a bug or a missing upcaster, never the client's fault.
    /// Only the `Display` of the decoding error is kept: its source (serde's message) may quote
    /// stored values, personal ones included, and this error ends up in logs.
    #[error("stored event {position} cannot be decoded: {reason}")]
    Corrupt { position: i64, reason: String },
}

/// One aggregate type as the handler sees it.
trait Aggregate {
    type State: Default + Clone;
    type Event;
    fn decode(event: &RecordedEvent) -> Result<Self::Event, PayloadError>;
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;
}

struct ProgramAggregate;
impl Aggregate for ProgramAggregate {
    type State = ProgramState;
    type Event = ProgramEvent;
    fn decode(event: &RecordedEvent) -> Result<ProgramEvent, PayloadError> {
        decode_program(event)
    }
    fn evolve(state: ProgramState, event: &ProgramEvent) -> ProgramState {
        program::evolve(state, event)
    }
}

struct PortfolioAggregate;
impl Aggregate for PortfolioAggregate {
    type State = PortfolioState;
    type Event = PortfolioEvent;
    fn decode(event: &RecordedEvent) -> Result<PortfolioEvent, PayloadError> {
        decode_portfolio(event)
    }
    fn evolve(state: PortfolioState, event: &PortfolioEvent) -> PortfolioState {
        portfolio::evolve(state, event)
    }
}

/// Runs commands. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CommandHandler {
    store: EventStore,
}

impl CommandHandler {
    pub fn new(store: EventStore) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// The current state of a program and its stream version.
    pub async fn load_program(&self, id: ProgramId) -> Result<(ProgramState, i32), CommandError> {
        self.load::<ProgramAggregate>(&id.stream_id()).await
    }

    /// The current state of a portfolio and its stream version.
    pub async fn load_portfolio(
        &self,
        id: PortfolioId,
    ) -> Result<(PortfolioState, i32), CommandError> {
        self.load::<PortfolioAggregate>(&id.stream_id()).await
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
        let stream_id = id.stream_id();
        for attempt in 0..2 {
            let (state, version) = self.load::<ProgramAggregate>(&stream_id).await?;
            if let Some(expected) = if_version.filter(|v| *v != version) {
                return self
                    .stale::<ProgramAggregate>(&stream_id, expected, version, ctx)
                    .await;
            }
            let events = match program::decide(&state, command.clone(), ctx.now) {
                Ok(events) => events,
                Err(refusal) => {
                    return self
                        .refused::<ProgramAggregate>(&stream_id, refusal, ctx)
                        .await;
                }
            };
            let new: Vec<NewEvent> = events
                .iter()
                .map(|e| {
                    let (kind, payload) = e.to_payload();
                    encode(kind, e.schema_version(), payload, None)
                })
                .collect();
            match self
                .commit::<ProgramAggregate>(&stream_id, state, version, events, &new, ctx, None)
                .await
            {
                Err(CommandError::Conflict { .. }) if attempt == 0 => continue,
                other => return other,
            }
        }
        unreachable!("the loop returns on its second attempt")
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
        match self
            .portfolio_command(Some(program_id), portfolio_id, command, ctx, None)
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
        self.portfolio_command(None, portfolio_id, command, ctx, None)
            .await
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
        self.portfolio_command(None, portfolio_id, command, ctx, if_version)
            .await
    }

    async fn portfolio_command(
        &self,
        program_id: Option<ProgramId>,
        portfolio_id: PortfolioId,
        command: PortfolioCommand,
        ctx: &CommandContext,
        if_version: Option<i32>,
    ) -> Result<Handled<PortfolioState, PortfolioEvent>, CommandError> {
        let stream_id = portfolio_id.stream_id();
        for attempt in 0..2 {
            let (state, version) = self.load::<PortfolioAggregate>(&stream_id).await?;
            if let Some(expected) = if_version.filter(|v| *v != version) {
                return self
                    .stale::<PortfolioAggregate>(&stream_id, expected, version, ctx)
                    .await;
            }
            let opened = state.opened();
            // The program is the portfolio's own once it exists; only opening names one.
            let program_id = match (opened, program_id) {
                (Some(p), _) => p.program_id,
                (None, Some(id)) => id,
                (None, None) => {
                    return self
                        .refused::<PortfolioAggregate>(
                            &stream_id,
                            DomainError::PortfolioNotOpened,
                            ctx,
                        )
                        .await;
                }
            };
            let subject: Option<StudentUid> = match (&command, opened) {
                (_, Some(p)) => Some(p.student_uid),
                (PortfolioCommand::OpenPortfolio { student_uid, .. }, None) => Some(*student_uid),
                _ => None,
            };
            let (program_state, _) = self
                .load::<ProgramAggregate>(&program_id.stream_id())
                .await?;
            let events = match portfolio::decide(&state, &program_state, command.clone(), ctx.now) {
                Ok(events) => events,
                Err(refusal) => {
                    return self
                        .refused::<PortfolioAggregate>(&stream_id, refusal, ctx)
                        .await;
                }
            };
            // A number that enters the portfolio (at opening, or Ladok's correcting the typed one) is
            // claimed for the student in the append's transaction.
            let claim = super::identity::claim_of(opened, &events);
            let new: Vec<NewEvent> = events
                .iter()
                .map(|e| {
                    let (kind, payload) = e.to_payload();
                    encode(
                        kind,
                        e.schema_version(),
                        payload,
                        subject.map(|s| *s.as_uuid()),
                    )
                })
                .collect();
            match self
                .commit::<PortfolioAggregate>(
                    &stream_id,
                    state,
                    version,
                    events,
                    &new,
                    ctx,
                    claim.as_ref(),
                )
                .await
            {
                Err(CommandError::Conflict { .. }) if attempt == 0 => continue,
                other => return other,
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    async fn load<A: Aggregate>(&self, stream_id: &str) -> Result<(A::State, i32), CommandError> {
        let recorded = self.store.read_stream(stream_id, 0).await?;
        let mut state = A::State::default();
        let mut version = 0;
        for event in &recorded {
            let decoded = A::decode(event).map_err(|e| CommandError::Corrupt {
                position: event.position(),
                reason: e.to_string(),
            })?;
            state = A::evolve(state, &decoded);
            version = event.version;
        }
        Ok((state, version))
    }

    /// Appends the decided events and folds them onto the state they were decided against. With a
    /// `claim`, the identity number is claimed for the student in the same transaction.
    #[allow(clippy::too_many_arguments)]
    async fn commit<A: Aggregate>(
        &self,
        stream_id: &str,
        state: A::State,
        version: i32,
        events: Vec<A::Event>,
        new: &[NewEvent],
        ctx: &CommandContext,
        claim: Option<&NumberChange>,
    ) -> Result<Handled<A::State, A::Event>, CommandError> {
        if new.is_empty() {
            return Ok(Handled {
                state,
                events,
                outcome: None,
                version,
            });
        }
        let expected = if version == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(version)
        };
        let appended = match claim {
            None => {
                self.store
                    .append(stream_id, expected, new, &ctx.metadata())
                    .await
            }
            Some(claim) => {
                super::identity::append_claiming(&self.store, stream_id, expected, new, ctx, claim)
                    .await?
            }
        };
        match appended {
            Ok(outcome) if outcome.duplicate => {
                // This command id already took effect (an earlier attempt): answer with the state now.
                let (state, version) = self.load::<A>(stream_id).await?;
                Ok(Handled {
                    state,
                    events: Vec::new(),
                    outcome: Some(outcome),
                    version,
                })
            }
            Ok(outcome) => {
                let state = events.iter().fold(state, A::evolve);
                Ok(Handled {
                    state,
                    events,
                    outcome: Some(outcome),
                    version: outcome.last_version,
                })
            }
            Err(AppendError::Conflict { .. }) => Err(CommandError::Conflict {
                stream_id: stream_id.to_owned(),
            }),
            Err(AppendError::Store(e)) => Err(e.into()),
            Err(AppendError::Empty) => unreachable!("checked above"),
        }
    }

    /// The stream moved past the client's `If-Match`: the outcome of this command when it already
    /// took effect (a retry), a version mismatch otherwise.
    async fn stale<A: Aggregate>(
        &self,
        stream_id: &str,
        expected: i32,
        current: i32,
        ctx: &CommandContext,
    ) -> Result<Handled<A::State, A::Event>, CommandError> {
        self.refused::<A>(
            stream_id,
            CommandError::VersionMismatch { expected, current },
            ctx,
        )
        .await
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
