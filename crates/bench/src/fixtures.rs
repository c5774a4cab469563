//! Data made through the real command handler: the pilot programs, and a student's portfolio with an
//! activity on every catalog item (reflections are then submitted against those activities).

use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use cim::app::{self, CommandContext, CommandHandler, pilot_program_id};
use cim::domain::portfolio::ReflectionContent;
use cim::domain::program::{default_catalog, pilot_programs};
use cim::domain::values::{Email, IdentityNumber, NonEmptyText, PersonName};
use cim::domain::{ActivityId, PortfolioCommand, PortfolioId, StudentUid};
use cim::log;
use cim::store::{ActorRole, EventStore, NewEvent};
use sqlx::PgPool;
use uuid::Uuid;

/// The actor of the bench's own seeding.
pub const BENCH_ADMIN: &str = "admin-bench";

/// A portfolio with one activity per catalog item, none reflected on yet.
#[derive(Debug, Clone)]
pub struct OpenPortfolio {
    pub portfolio: PortfolioId,
    pub student: StudentUid,
    pub activities: Vec<ActivityId>,
}

pub fn handler(pool: &PgPool) -> CommandHandler {
    CommandHandler::new(EventStore::new(pool.clone(), log::upcasters()))
}

/// Seeds the pilot programs and opens one portfolio in the first, with an activity on every item.
pub async fn open_portfolio(
    handler: &CommandHandler,
    now: DateTime<Utc>,
) -> anyhow::Result<OpenPortfolio> {
    app::seed_pilot_programs(handler, BENCH_ADMIN, now).await?;
    let (code, _) = pilot_programs()[0];
    let program = pilot_program_id(code);
    let student = StudentUid::new(Uuid::new_v4());
    let portfolio = PortfolioId::of(student, program);
    let today = now.date_naive();
    let ctx = student_ctx(student, now);
    handler
        .open_portfolio(
            program,
            PortfolioCommand::OpenPortfolio {
                portfolio_id: portfolio,
                student_uid: student,
                identity_number: IdentityNumber::parse("19121212-1212", today)?,
                name: PersonName::parse("Tolvan", "Tolvansson")?,
                email: Email::parse("tolvan@student.example.se")?,
                expected_completion: today + TimeDelta::days(400),
                identity_check: None,
            },
            &ctx,
        )
        .await
        .context("opening the bench portfolio")?;
    let mut activities = Vec::new();
    for (k, (item, _)) in default_catalog().into_iter().enumerate() {
        let activity_id = ActivityId::new(Uuid::new_v4());
        let ended_on = today - TimeDelta::days(20 + k as i64);
        handler
            .portfolio(
                portfolio,
                PortfolioCommand::LogActivity {
                    activity_id,
                    item,
                    started_on: ended_on - TimeDelta::days(2),
                    ended_on,
                    description: NonEmptyText::parse(
                        "Two evenings a week with students from abroad.",
                        "description",
                        5_000,
                    )?,
                    evidence: None,
                },
                &student_ctx(student, now),
            )
            .await
            .context("logging a bench activity")?;
        activities.push(activity_id);
    }
    Ok(OpenPortfolio {
        portfolio,
        student,
        activities,
    })
}

/// A written reflection of 1000 words, as students submit them.
pub fn reflection_text(variant: usize) -> String {
    cim_demo::english(1000, variant)
}

/// A reflection event twice over: as the command handler hands it to the store, and as the store
/// keeps it.
pub struct Reflection {
    /// Personal part in plaintext, for appends (the store seals it, as for every command).
    pub submitted: NewEvent,
    /// Personal part sealed as stored, for the baseline's rows: the bytes an event row holds.
    pub stored: NewEvent,
}

/// Submits a written reflection on the portfolio's first activity and returns the event the
/// handler appended, as a template of what a real reflection event holds.
pub async fn reflection_event(
    handler: &CommandHandler,
    pool: &PgPool,
    open: &OpenPortfolio,
    now: DateTime<Utc>,
) -> anyhow::Result<Reflection> {
    handler
        .portfolio(
            open.portfolio,
            PortfolioCommand::SubmitReflection {
                activity_id: open.activities[0],
                content: ReflectionContent::Written {
                    text: reflection_text(0),
                },
            },
            &student_ctx(open.student, now),
        )
        .await
        .context("submitting the template reflection")?;
    let (event_type, schema_version, payload, personal, data_subject): (
        String,
        i16,
        serde_json::Value,
        Option<serde_json::Value>,
        Option<Uuid>,
    ) = sqlx::query_as(
        "SELECT event_type, schema_version, payload, personal, data_subject FROM events
         WHERE stream_id = $1 AND event_type = 'ReflectionSubmitted'",
    )
    .bind(open.portfolio.stream_id())
    .fetch_one(pool)
    .await?;
    let stored = NewEvent {
        event_id: Uuid::nil(),
        event_type,
        schema_version,
        payload,
        personal,
        data_subject,
    };
    // The store's own read opens the personal part again.
    let opened = EventStore::new(pool.clone(), log::upcasters())
        .read_stream(&open.portfolio.stream_id(), 0)
        .await?
        .into_iter()
        .find(|e| e.event_type == stored.event_type)
        .context("reading the template reflection back")?;
    let submitted = NewEvent {
        personal: opened.personal,
        ..stored.clone()
    };
    Ok(Reflection { submitted, stored })
}

fn student_ctx(student: StudentUid, now: DateTime<Utc>) -> CommandContext {
    let id = Uuid::now_v7();
    CommandContext {
        actor_id: student.to_string(),
        role: ActorRole::Student,
        correlation_id: id,
        command_id: id,
        now,
    }
}
