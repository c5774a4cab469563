//! Commands through the handler into a real PostgreSQL: the whole path of one student, a race between
//! a coordinator and the student, and retried commands.

use crate::support;
use cim::log;

use chrono::{NaiveDate, TimeDelta, Utc};
use cim::app::{self, CommandContext, CommandError, CommandHandler};
use cim::domain::portfolio::{FinalContent, Phase, ReflectionContent};
use cim::domain::values::{Email, IdentityNumber, MediaRef, NonEmptyText, PersonName};
use cim::domain::{
    ActivityId, CatalogItemId, CertificateId, DomainError, PortfolioCommand, PortfolioEvent,
    PortfolioId, ProgramCommand, ProgramId, StaffId, StudentUid,
};
use cim::store::{ActorRole, EventStore};
use support::texts;
use uuid::Uuid;

mod concurrency;
mod fold_cache;
mod journey;

const COORDINATOR: &str = "coord-anna";

struct World {
    db: support::TestDb,
    handler: CommandHandler,
    program: ProgramId,
}

fn ctx(actor: &str, role: ActorRole) -> CommandContext {
    CommandContext {
        actor_id: actor.to_owned(),
        role,
        correlation_id: Uuid::now_v7(),
        command_id: Uuid::now_v7(),
        now: Utc::now(),
    }
}

fn staff() -> StaffId {
    StaffId::parse(COORDINATOR).unwrap()
}

fn text(s: &str) -> NonEmptyText {
    NonEmptyText::parse(s, "text", 5000).unwrap()
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

async fn world() -> World {
    let db = support::fresh().await;
    let handler = CommandHandler::new(EventStore::new(db.pool.clone(), log::upcasters()));
    let seeded = app::seed_pilot_programs(&handler, "admin-1", Utc::now())
        .await
        .unwrap();
    assert_eq!(seeded.len(), 4);
    let program = seeded[0].id;
    handler
        .program(
            program,
            ProgramCommand::AssignCoordinator { staff: staff() },
            &ctx("admin-1", ActorRole::Admin),
        )
        .await
        .unwrap();
    World {
        db,
        handler,
        program,
    }
}

async fn open(w: &World) -> (PortfolioId, StudentUid) {
    let student = StudentUid::new(Uuid::now_v7());
    let portfolio = PortfolioId::of(student, w.program);
    let command = PortfolioCommand::OpenPortfolio {
        portfolio_id: portfolio,
        student_uid: student,
        identity_number: IdentityNumber::parse("19121212-1212", today()).unwrap(),
        name: PersonName::parse("Tolvan", "Tolvansson").unwrap(),
        email: Email::parse("tolvan@student.example.se").unwrap(),
        expected_completion: today() + TimeDelta::days(365),
        identity_check: None,
    };
    w.handler
        .open_portfolio(
            w.program,
            command,
            &ctx(&student.to_string(), ActorRole::Student),
        )
        .await
        .unwrap();
    // The coordinator confirms the date at once, as the usual path does before the final reflection.
    as_coordinator(
        w,
        portfolio,
        PortfolioCommand::ConfirmExpectedCompletion { by: staff() },
    )
    .await
    .unwrap();
    (portfolio, student)
}

async fn as_student(
    w: &World,
    p: PortfolioId,
    s: StudentUid,
    cmd: PortfolioCommand,
) -> Result<Vec<PortfolioEvent>, CommandError> {
    w.handler
        .portfolio(p, cmd, &ctx(&s.to_string(), ActorRole::Student))
        .await
        .map(|h| h.events)
}

async fn as_coordinator(
    w: &World,
    p: PortfolioId,
    cmd: PortfolioCommand,
) -> Result<Vec<PortfolioEvent>, CommandError> {
    w.handler
        .portfolio(p, cmd, &ctx(COORDINATOR, ActorRole::Coordinator))
        .await
        .map(|h| h.events)
}

fn log(activity: ActivityId, item: &str, days_ago: i64) -> PortfolioCommand {
    PortfolioCommand::LogActivity {
        activity_id: activity,
        item: CatalogItemId::parse(item).unwrap(),
        started_on: today() - TimeDelta::days(days_ago + 2),
        ended_on: today() - TimeDelta::days(days_ago),
        description: text("Two evenings a week with students from abroad."),
        evidence: None,
    }
}
