//! The five read models against a real PostgreSQL, fed by the real command handler:
//! - a generated workload of many students (every event type) projected LIVE by the runner while
//!   the commands are written concurrently, then every table compared row for row with a rebuild
//!   from position 0, and every event applied exactly once;
//! - time travel: the audit's portfolio "as of" each event of the portfolio's and its program's
//!   streams (rules changes and a catalog rename included) equals the live row right after it;
//! - concrete values of the review queue, the registrar's list, the audit and the pilot statistics
//!   for a small known scenario, and no personal data in any read-model table.

use crate::support;
use cim::log;

use chrono::{NaiveDate, TimeDelta, Utc};
use cim::app::{self, CommandContext, CommandHandler, Handled};
use cim::domain::portfolio::{
    ExpectedCompletionChanged, FinalContent, LadokRecord, Phase, PortfolioEvent, ReflectionContent,
    ReflectionStatus,
};
use cim::domain::rules::ProgramRules;
use cim::domain::values::{Email, IdentityNumber, MediaRef, NonEmptyText, PersonName};
use cim::domain::{
    ActivityId, CatalogItemId, CertificateId, PortfolioCommand, PortfolioId, PortfolioState,
    ProgramCommand, ProgramId, StaffId, StudentUid, stockholm_date,
};
use cim::projections::read_models::audit::{self, AuditFilter};
use cim::projections::read_models::registrar::{self, CertificateFilter, CertificateStatus};
use cim::projections::read_models::review_queue::{self, QueueItemKind};
use cim::projections::read_models::statistics::{self, Step, StepCount};
use cim::projections::read_models::view::NextStepCode;
use cim::projections::read_models::{self, portfolio};
use cim::projections::{
    self, Projection, ProjectionRunner, RunnerConfig, Scope, checkpoint, definition_hash,
};
use cim::store::{ActorRole, Checkpoint, EventStore, ExpectedVersion, Metadata};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use support::log_checks::{rebuild_from_start, snapshot};
use support::texts;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// The world: seeded programs, a coordinator per program, students.
// ---------------------------------------------------------------------------------------------

mod batches;
mod fold_cache;
mod indexes;
mod known_scenario;
mod live;
mod scenario;
mod time_travel;
mod workload;

struct World {
    db: support::TestDb,
    handler: CommandHandler,
    programs: Vec<ProgramId>,
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

fn coordinator(program: usize) -> StaffId {
    StaffId::parse(&format!("coord-{program}")).unwrap()
}

fn text(s: &str) -> NonEmptyText {
    NonEmptyText::parse(s, "text", 5000).unwrap()
}

fn today() -> NaiveDate {
    stockholm_date(Utc::now())
}

async fn world() -> World {
    let db = support::fresh().await;
    let handler = CommandHandler::new(EventStore::new(db.pool.clone(), log::upcasters()));
    let seeded = app::seed_pilot_programs(&handler, "admin-1", Utc::now())
        .await
        .unwrap();
    let programs: Vec<ProgramId> = seeded.iter().map(|s| s.id).collect();
    for (i, program) in programs.iter().enumerate() {
        handler
            .program(
                *program,
                ProgramCommand::AssignCoordinator {
                    staff: coordinator(i),
                },
                &ctx("admin-1", ActorRole::Admin),
            )
            .await
            .unwrap();
    }
    World {
        db,
        handler,
        programs,
    }
}

/// A valid personnummer (Luhn check digit over YYMMDDNNN), distinct per `n`.
fn personnummer(n: u32) -> String {
    let (month, day, serial) = (1 + n % 12, 1 + (n / 12) % 28, 100 + n % 900);
    IdentityNumber::with_check_digit(&format!("1995{month:02}{day:02}{serial:03}"))
        .unwrap()
        .as_str()
        .to_owned()
}

/// A family name made of letters only, distinct per `n` ("Testpersonab", ...).
fn family_name(n: u32) -> String {
    let letters: String = [n / 26 % 26, n % 26]
        .iter()
        .map(|d| char::from(b'a' + *d as u8))
        .collect();
    format!("Testperson{letters}")
}

/// Everything personal about a student, for the searches that prove it stays out of read models.
#[derive(Debug, Clone)]
struct Person {
    uid: StudentUid,
    identity_number: String,
    family_name: String,
    email: String,
}

/// Opens and has the coordinator confirm the date at once, as the usual path does before the final
/// reflection.
async fn open(w: &World, program: usize, n: u32) -> (PortfolioId, Person) {
    let (portfolio, person) = open_unconfirmed(w, program, n).await;
    staff(
        w,
        program,
        portfolio,
        PortfolioCommand::ConfirmExpectedCompletion {
            by: coordinator(program),
        },
    )
    .await;
    (portfolio, person)
}

async fn open_unconfirmed(w: &World, program: usize, n: u32) -> (PortfolioId, Person) {
    let uid = StudentUid::new(Uuid::now_v7());
    let portfolio = PortfolioId::of(uid, w.programs[program]);
    let person = Person {
        uid,
        identity_number: personnummer(n),
        family_name: family_name(n),
        email: format!("student{n}@student.example.se"),
    };
    let command = PortfolioCommand::OpenPortfolio {
        portfolio_id: portfolio,
        student_uid: person.uid,
        identity_number: IdentityNumber::parse(&person.identity_number, today()).unwrap(),
        name: PersonName::parse("Kim", &person.family_name).unwrap(),
        email: Email::parse(&person.email).unwrap(),
        expected_completion: today() + TimeDelta::days(200 + i64::from(n % 200)),
        identity_check: None,
    };
    w.handler
        .open_portfolio(
            w.programs[program],
            command,
            &ctx(&person.uid.to_string(), ActorRole::Student),
        )
        .await
        .unwrap();
    (portfolio, person)
}

const ITEMS: [&str; 6] = [
    "language-cafe",
    "tedx",
    "student-ambassador",
    "mentor-study-buddy",
    "course-in-global-health",
    "chase-career-fair",
];

fn log_activity(activity: ActivityId, item: &str, days_ago: i64) -> PortfolioCommand {
    PortfolioCommand::LogActivity {
        activity_id: activity,
        item: CatalogItemId::parse(item).unwrap(),
        started_on: today() - TimeDelta::days(days_ago + 2),
        ended_on: today() - TimeDelta::days(days_ago),
        description: text("Two evenings a week with students from abroad."),
        evidence: None,
    }
}

fn written() -> ReflectionContent {
    ReflectionContent::Written {
        text: texts::english(1000),
    }
}

/// A recording as the handler passes an upload on (the domain needs one; nothing is stored here).
fn recording() -> Option<MediaRef> {
    Some(MediaRef::new(&"ab".repeat(32), "audio/mpeg", 4096).unwrap())
}

fn oral() -> ReflectionContent {
    ReflectionContent::Oral {
        media: recording(),
        link: None,
        duration_s: 150,
        duration_measured: false,
    }
}

fn instagram(tag: &str) -> ReflectionContent {
    ReflectionContent::Instagram {
        links: (1..=3)
            .map(|i| format!("https://www.instagram.com/p/C{tag}x{i}/"))
            .collect(),
        text: texts::english(500),
    }
}

fn final_written() -> FinalContent {
    FinalContent::Written {
        text: texts::english(3000),
    }
}

fn final_oral() -> FinalContent {
    FinalContent::Oral {
        media: recording(),
        link: None,
        duration_s: 320,
        duration_measured: false,
    }
}

type Outcome = Handled<PortfolioState, PortfolioEvent>;

async fn student(w: &World, p: PortfolioId, who: &Person, cmd: PortfolioCommand) -> Outcome {
    w.handler
        .portfolio(p, cmd, &ctx(&who.uid.to_string(), ActorRole::Student))
        .await
        .unwrap()
}

async fn staff(w: &World, program: usize, p: PortfolioId, cmd: PortfolioCommand) -> Outcome {
    w.handler
        .portfolio(
            p,
            cmd,
            &ctx(coordinator(program).as_str(), ActorRole::Coordinator),
        )
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Driving projections by hand (the runner's own batch transaction) and comparing tables.
// ---------------------------------------------------------------------------------------------

/// How many events the test's database holds. Tests call it once their commands are done, so it is
/// the final count.
async fn event_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Reads the next batch after `at`, waiting while the log's readable head lags: transactions of
/// other tests on the same server hold the (cluster-wide) bound back for a moment.
async fn next_batch(w: &World, at: Checkpoint, batch: i64) -> Vec<cim::store::RecordedEvent> {
    for _ in 0..3000 {
        let events = w
            .handler
            .store()
            .read_after_omitting_personal(at, batch)
            .await
            .unwrap();
        if !events.is_empty() {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the log's readable head did not move for a minute");
}

/// Applies every event of the log to `projection` in batches of `batch`, through
/// `checkpoint::apply_batch` (the runner's transaction), setting it up first if needed.
async fn catch_up(w: &World, projection: &dyn Projection, batch: i64) {
    let pool = &w.db.pool;
    let total = event_count(pool).await;
    let hash = definition_hash(projection);
    let (mut at, mut applied) = match checkpoint::load(pool, projection.name()).await.unwrap() {
        Some(stored) => (stored.checkpoint, stored.events_applied),
        None => {
            checkpoint::reset(pool, projection).await.unwrap();
            (Checkpoint::START, 0)
        }
    };
    while applied < total {
        let events = next_batch(w, at, batch).await;
        at = checkpoint::apply_batch(pool, projection, &hash, at, &events)
            .await
            .unwrap();
        applied += events.len() as i64;
    }
}

/// All text of every read-model table, for searching personal data in it.
async fn all_read_model_text(pool: &PgPool) -> String {
    snapshot(pool, &read_models::all())
        .await
        .into_iter()
        .flat_map(|(_, rows)| rows)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts that `haystack` holds no identity number (12 or 10 digits), name or e-mail of
/// `people`, and, with `with_uid`, not their Ladok UID either (the pseudonymous statistics must not
/// link to a student at all; other read models key on the UID on purpose).
fn assert_no_personal_data(haystack: &str, people: &[Person], with_uid: bool, what: &str) {
    for person in people {
        let mut needles = vec![
            person.identity_number.clone(),
            person.identity_number[2..].to_string(),
            person.family_name.clone(),
            person.email.clone(),
        ];
        if with_uid {
            needles.push(person.uid.to_string());
        }
        for needle in needles {
            assert!(
                !haystack.contains(&needle),
                "{what} contains personal data ({needle})"
            );
        }
    }
}

/// Waits (bounded) until the runner has applied all `total` events to every projection.
async fn wait_until_applied(
    pool: &PgPool,
    store: &EventStore,
    runner: &projections::RunnerHandle,
    models: &[Arc<dyn Projection>],
    total: i64,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let head = store.head().await.unwrap();
        runner
            .wait_for(Scope::All, head, Duration::from_secs(60))
            .await
            .unwrap();
        let mut done = true;
        for p in models {
            let stored = checkpoint::load(pool, p.name()).await.unwrap().unwrap();
            done &= stored.events_applied == total;
        }
        if done {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the runner did not apply every event in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The generated workload.
// ---------------------------------------------------------------------------------------------

/// A student who gets three activities approved, the final reflection approved and applies; the
/// reflections are written, written, Instagram. Activities start 32, 22 and 12 days ago.
async fn complete_and_apply(w: &World, program: usize, p: PortfolioId, s: &Person) {
    let acts: Vec<ActivityId> = (0..3).map(|_| ActivityId::new(Uuid::now_v7())).collect();
    for (i, a) in acts.iter().enumerate() {
        student(w, p, s, log_activity(*a, ITEMS[i], 30 - 10 * i as i64)).await;
    }
    let tag = s.uid.as_uuid().simple().to_string();
    for (a, content) in acts
        .iter()
        .zip([written(), written(), instagram(&tag[..8])])
    {
        student(
            w,
            p,
            s,
            PortfolioCommand::SubmitReflection {
                activity_id: *a,
                content,
            },
        )
        .await;
        staff(
            w,
            program,
            p,
            PortfolioCommand::ApproveReflection {
                activity_id: *a,
                by: coordinator(program),
            },
        )
        .await;
    }
    student(
        w,
        p,
        s,
        PortfolioCommand::SubmitFinalReflection {
            content: final_oral(),
        },
    )
    .await;
    staff(
        w,
        program,
        p,
        PortfolioCommand::ApproveFinalReflection {
            by: coordinator(program),
        },
    )
    .await;
    student(w, p, s, PortfolioCommand::Apply).await;
}

async fn admin(w: &World, program: usize, cmd: ProgramCommand) {
    w.handler
        .program(w.programs[program], cmd, &ctx("admin-1", ActorRole::Admin))
        .await
        .unwrap();
}
