//! The five read models against a real PostgreSQL, fed by the real command handler:
//! - a generated workload of many students (every event type) projected LIVE by the runner while
//!   the commands are written concurrently, then every table compared row for row with a rebuild
//!   from position 0, and every event applied exactly once;
//! - time travel: the audit's portfolio "as of" each event of the portfolio's and its program's
//!   streams (rules changes and a catalog rename included) equals the live row right after it;
//! - concrete values of the review queue, the registrar's list, the audit and the pilot statistics
//!   for a small known scenario, and no personal data in any read-model table.

use crate::support;

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
    self, Projection, ProjectionLock, ProjectionRunner, RebuildOptions, RunnerConfig, Scope,
    checkpoint, definition_hash,
};
use cim::store::{ActorRole, Checkpoint, EventStore, ExpectedVersion, Metadata};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use support::texts;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// The world: seeded programs, a coordinator per program, students.
// ---------------------------------------------------------------------------------------------

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
    let handler = CommandHandler::new(EventStore::new(db.pool.clone(), app::upcasters()));
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

/// Every row of every table of `projections`, as JSON text, in a stable order.
async fn snapshot(
    pool: &PgPool,
    projections: &[Arc<dyn Projection>],
) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for p in projections {
        for table in p.tables() {
            let rows: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT row_to_json(t)::text FROM {table} t ORDER BY 1"
            ))
            .fetch_all(pool)
            .await
            .unwrap();
            out.push((table.to_string(), rows));
        }
    }
    out
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

/// What a generated student will do (drawn once per student from a seeded generator).
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Stops after this many commands (drop-off).
    stop_after: Option<usize>,
    withdraw: bool,
    return_reflection: bool,
    return_final: bool,
    extension: bool,
    change_completion: bool,
    check_identity: bool,
    reject: bool,
    revoke: bool,
}

struct Sim {
    n: u32,
    program: usize,
    portfolio: PortfolioId,
    person: Person,
    plan: Plan,
    rng: StdRng,
    state: PortfolioState,
    commands: usize,
    withdrawn: bool,
    /// How far the date's set / propose / decide sequence has got.
    completion_step: u8,
}

enum Actor {
    Student,
    Coordinator,
    /// The export run's identity check against Ladok.
    System,
}

impl Sim {
    /// The next command, chosen at random among those the rules allow now; `None` when done.
    fn next(&mut self) -> Option<(Actor, PortfolioCommand)> {
        if self.plan.stop_after.is_some_and(|n| self.commands >= n) {
            return None;
        }
        let p = self.state.opened()?;
        let rules = ProgramRules::default();
        let staff = coordinator(self.program);
        let mut options: Vec<(Actor, PortfolioCommand)> = Vec::new();
        match p.phase {
            Phase::Applied { .. } => {
                let cmd = if self.plan.reject && p.rejections.is_empty() {
                    PortfolioCommand::RejectApplication {
                        by: staff,
                        reason: text("Reflection two does not describe the activity."),
                    }
                } else {
                    PortfolioCommand::ApproveApplication {
                        certificate_id: CertificateId::new(Uuid::now_v7()),
                        by: staff,
                    }
                };
                return Some((Actor::Coordinator, cmd));
            }
            Phase::Certified if self.plan.revoke => {
                return Some((
                    Actor::Coordinator,
                    PortfolioCommand::RevokeCertificate {
                        by: staff,
                        reason: text("The certificate was issued on a mistaken premise."),
                    },
                ));
            }
            Phase::Certified | Phase::Revoked => return None,
            Phase::Collecting => {}
        }
        // Ladok answers the identity check: the number corrected (odd students, to a number of
        // their own) or none in Ladok (even ones).
        if self.plan.check_identity && p.identity_check.is_none() {
            let identity_number = (self.n % 2 == 1)
                .then(|| IdentityNumber::parse(&personnummer(self.n + 5_000), today()).unwrap());
            options.push((
                Actor::System,
                PortfolioCommand::CheckIdentityInLadok {
                    record: LadokRecord::Student { identity_number },
                },
            ));
        }
        // The date: a coordinator sets it, the student proposes another one, a coordinator accepts
        // (even students) or declines (odd ones).
        if self.plan.change_completion {
            let days = |d| p.expected_completion + TimeDelta::days(d);
            match self.completion_step {
                0 => options.push((
                    Actor::Coordinator,
                    PortfolioCommand::SetExpectedCompletion {
                        expected_completion: days(60),
                        reason: text("Study plan prolonged."),
                        by: staff.clone(),
                    },
                )),
                1 => options.push((
                    Actor::Student,
                    PortfolioCommand::ProposeExpectedCompletion {
                        expected_completion: days(30),
                        reason: text("Placement moved."),
                    },
                )),
                2 if self.n % 2 == 0 => options.push((
                    Actor::Coordinator,
                    PortfolioCommand::AcceptExpectedCompletion {
                        by: staff.clone(),
                        reason: text("Confirmed."),
                    },
                )),
                2 => options.push((
                    Actor::Coordinator,
                    PortfolioCommand::DeclineExpectedCompletion {
                        by: staff.clone(),
                        reason: text("Not in the study plan."),
                    },
                )),
                _ => {}
            }
        }
        let active: Vec<_> = p.active_activities().collect();
        let wanted = if self.plan.withdraw && !self.withdrawn {
            4
        } else {
            3
        };
        if active.len() < wanted && p.final_attempts.is_empty() {
            let item = ITEMS[p.activities.len() % ITEMS.len()];
            options.push((
                Actor::Student,
                log_activity(
                    ActivityId::new(Uuid::now_v7()),
                    item,
                    i64::from(self.rng.random_range(5..60u32)),
                ),
            ));
        }
        if self.plan.withdraw && !self.withdrawn && active.len() == 4 {
            let last = active[3];
            if last.status() != ReflectionStatus::Approved {
                options.push((
                    Actor::Student,
                    PortfolioCommand::WithdrawActivity {
                        activity_id: last.id(),
                    },
                ));
            }
        }
        for a in &active {
            let content = match self.rng.random_range(0..3u32) {
                0 => written(),
                1 => oral(),
                _ => instagram(&format!("{}a{}", self.n, a.attempts.len())),
            };
            match a.status() {
                ReflectionStatus::NotSubmitted => options.push((
                    Actor::Student,
                    PortfolioCommand::SubmitReflection {
                        activity_id: a.id(),
                        content,
                    },
                )),
                ReflectionStatus::Returned => options.push((
                    Actor::Student,
                    PortfolioCommand::ResubmitReflection {
                        activity_id: a.id(),
                        content,
                    },
                )),
                ReflectionStatus::AwaitingReview => {
                    let cmd = if self.plan.return_reflection && a.attempts.len() == 1 {
                        PortfolioCommand::ReturnReflection {
                            activity_id: a.id(),
                            by: staff.clone(),
                            feedback: text("Please say more about what you will take with you."),
                        }
                    } else {
                        PortfolioCommand::ApproveReflection {
                            activity_id: a.id(),
                            by: staff.clone(),
                        }
                    };
                    options.push((Actor::Coordinator, cmd));
                }
                ReflectionStatus::Approved => {}
            }
        }
        let final_content = if self.rng.random_bool(0.5) {
            final_written()
        } else {
            final_oral()
        };
        if !p.completion_confirmed {
            options.push((
                Actor::Coordinator,
                PortfolioCommand::ConfirmExpectedCompletion { by: staff.clone() },
            ));
        }
        match p.final_status() {
            // The first final reflection waits for the date's confirmation.
            ReflectionStatus::NotSubmitted if !p.completion_confirmed => {}
            ReflectionStatus::NotSubmitted if p.reflected_count(&rules) >= 3 => {
                if self.plan.extension && p.extensions.is_empty() {
                    options.push((
                        Actor::Coordinator,
                        PortfolioCommand::GrantExtension {
                            until: p.expected_completion + TimeDelta::days(10),
                            reason: text("Parental leave during the spring term."),
                            by: staff.clone(),
                        },
                    ));
                } else {
                    options.push((
                        Actor::Student,
                        PortfolioCommand::SubmitFinalReflection {
                            content: final_content,
                        },
                    ));
                }
            }
            ReflectionStatus::Returned => options.push((
                Actor::Student,
                PortfolioCommand::ResubmitFinalReflection {
                    content: final_content,
                },
            )),
            ReflectionStatus::AwaitingReview => {
                let cmd = if self.plan.return_final && p.final_attempts.len() == 1 {
                    PortfolioCommand::ReturnFinalReflection {
                        by: staff.clone(),
                        feedback: text("Please relate the competencies to your future workplace."),
                    }
                } else {
                    PortfolioCommand::ApproveFinalReflection { by: staff.clone() }
                };
                options.push((Actor::Coordinator, cmd));
            }
            _ => {}
        }
        if p.final_status() == ReflectionStatus::Approved && p.approved_count(&rules) >= 3 {
            options.push((Actor::Student, PortfolioCommand::Apply));
        }
        if options.is_empty() {
            return None;
        }
        let pick = self.rng.random_range(0..options.len());
        Some(options.swap_remove(pick))
    }

    /// Runs one command (if any is left); returns whether it did.
    async fn step(&mut self, w: &World) -> bool {
        let Some((actor, cmd)) = self.next() else {
            return false;
        };
        match &cmd {
            PortfolioCommand::WithdrawActivity { .. } => self.withdrawn = true,
            PortfolioCommand::SetExpectedCompletion { .. }
            | PortfolioCommand::ProposeExpectedCompletion { .. }
            | PortfolioCommand::AcceptExpectedCompletion { .. }
            | PortfolioCommand::DeclineExpectedCompletion { .. } => self.completion_step += 1,
            _ => {}
        }
        let handled = match actor {
            Actor::Student => student(w, self.portfolio, &self.person, cmd).await,
            Actor::Coordinator => staff(w, self.program, self.portfolio, cmd).await,
            Actor::System => w
                .handler
                .portfolio(
                    self.portfolio,
                    cmd,
                    &ctx("identity-check", ActorRole::System),
                )
                .await
                .unwrap(),
        };
        self.state = handled.state;
        self.commands += 1;
        true
    }
}

fn plan(rng: &mut StdRng) -> Plan {
    Plan {
        stop_after: rng.random_bool(0.15).then(|| rng.random_range(1..12usize)),
        withdraw: rng.random_bool(0.15),
        return_reflection: rng.random_bool(0.3),
        return_final: rng.random_bool(0.2),
        extension: rng.random_bool(0.15),
        change_completion: rng.random_bool(0.2),
        check_identity: rng.random_bool(0.3),
        reject: rng.random_bool(0.15),
        revoke: rng.random_bool(0.15),
    }
}

const STUDENTS: u32 = 80;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_projection_under_concurrent_writers_equals_a_rebuild_from_the_start() {
    let w = world().await;
    let pool = w.db.pool.clone();
    let store = w.handler.store().clone();
    let models = read_models::all();

    // The real runner projects live while the workload writes, with small batches so that many
    // batch boundaries fall between concurrent appends.
    let config = RunnerConfig {
        batch_size: 37,
        poll_interval: Duration::from_millis(20),
        ..RunnerConfig::default()
    };
    let runner = ProjectionRunner::start_with(
        config,
        store.clone(),
        pool.clone(),
        &w.db.url,
        models.clone(),
    );

    let mut seed = StdRng::seed_from_u64(0x5EED_C1A0);
    let mut sims = Vec::new();
    for n in 0..STUDENTS {
        let program = (n % 4) as usize;
        // The date is confirmed (or set) by a step of the simulation, so some stay pending.
        let (portfolio, person) = open_unconfirmed(&w, program, n).await;
        let (state, _) = w.handler.load_portfolio(portfolio).await.unwrap();
        sims.push(Sim {
            n,
            program,
            portfolio,
            person,
            plan: plan(&mut seed),
            rng: StdRng::seed_from_u64(u64::from(n)),
            state,
            commands: 0,
            withdrawn: false,
            completion_step: 0,
        });
    }

    // Rounds: every student still going makes one command, all students concurrently.
    for round in 0..60 {
        if round == 4 {
            // Program events between portfolio events: a rules change re-renders that program's
            // portfolios (a later deadline), a rename and a new coordinator are ignored by them.
            w.handler
                .program(
                    w.programs[1],
                    ProgramCommand::ChangeRules {
                        rules: ProgramRules {
                            final_deadline_offset_days: 21,
                            ..ProgramRules::default()
                        },
                    },
                    &ctx("admin-1", ActorRole::Admin),
                )
                .await
                .unwrap();
            w.handler
                .program(
                    w.programs[2],
                    ProgramCommand::RenameCatalogItem {
                        item: CatalogItemId::parse("tedx").unwrap(),
                        name: text("TEDx Karolinska"),
                    },
                    &ctx("admin-1", ActorRole::Admin),
                )
                .await
                .unwrap();
        }
        let progressed = futures::future::join_all(sims.iter_mut().map(|s| s.step(&w))).await;
        if !progressed.iter().any(|p| *p) {
            break;
        }
    }

    // One student asks for erasure while the runner is live: the rebuild below must equal the live
    // read models across it.
    let media_dir = tempfile::tempdir().unwrap();
    cim::app::erase(
        w.handler.store(),
        &cim::media::MediaStore::new(media_dir.path(), 1 << 20),
        &cim::app::ErasureRequest {
            student_uid: sims[0].person.uid,
            by: StaffId::parse("admin-1").unwrap(),
            reason: text("GDPR request 17"),
        },
        &ctx("admin-1", ActorRole::Admin),
    )
    .await
    .unwrap();

    // A student's own date change as logs written before coordinators set the date hold it: it must
    // still fold, live and in the rebuild.
    let legacy = &sims[1];
    let (before, version) = w.handler.load_portfolio(legacy.portfolio).await.unwrap();
    let (event_type, payload) = PortfolioEvent::from(ExpectedCompletionChanged {
        expected_completion: before.opened().unwrap().expected_completion + TimeDelta::days(7),
        previous: before.opened().unwrap().expected_completion,
    })
    .to_payload();
    store
        .append(
            &format!("portfolio-{}", legacy.portfolio),
            ExpectedVersion::Exact(version),
            &[app::encode(event_type, 1, payload, None)],
            &Metadata {
                actor_id: legacy.person.uid.to_string(),
                actor_role: ActorRole::Student,
                correlation_id: Uuid::now_v7(),
                causation_id: None,
                command_id: Uuid::now_v7(),
            },
        )
        .await
        .unwrap();

    // Every event type occurred.
    let types: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT event_type FROM events ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    for t in PortfolioEvent::EVENT_TYPES {
        assert!(
            types.iter().any(|x| x == t),
            "the workload never produced {t}"
        );
    }
    let total = event_count(&pool).await;
    assert!(total > 1000, "only {total} events");

    // Let the runner catch up with the whole log, then stop it. The readable head can lag behind
    // while transactions of other tests on the same server are open (the bound is cluster-wide),
    // so wait until every event is readable and applied, not just up to the first head seen.
    wait_until_applied(&pool, &store, &runner, &models, total).await;
    runner.shutdown().await;

    // Exactly once: the audit index holds every position of the log once (its primary key would
    // have refused a second application), and each projection counted every event once.
    let logged: Vec<i64> = sqlx::query_scalar("SELECT position FROM events ORDER BY position")
        .fetch_all(&pool)
        .await
        .unwrap();
    let indexed: Vec<i64> = sqlx::query_scalar("SELECT position FROM rm_audit ORDER BY position")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(indexed, logged, "an event was missed or applied twice");
    let (transaction_id, position): (i64, i64) = sqlx::query_as(
        "SELECT transaction_id::text::bigint, position FROM events
         ORDER BY transaction_id DESC, position DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let last = Checkpoint {
        transaction_id,
        position,
    };
    for p in &models {
        let stored = checkpoint::load(&pool, p.name()).await.unwrap().unwrap();
        assert_eq!(stored.events_applied, total, "{}", p.name());
        assert_eq!(stored.checkpoint, last, "{}", p.name());
    }

    let live = snapshot(&pool, &models).await;
    let people: Vec<Person> = sims.iter().map(|s| s.person.clone()).collect();
    assert_no_personal_data(
        &all_read_model_text(&pool).await,
        &people,
        false,
        "a read model",
    );
    // The rules change re-rendered program 1's portfolios: their deadline is 21 days before the
    // expected completion.
    let (completion, deadline): (NaiveDate, NaiveDate) = sqlx::query_as(
        "SELECT (view->>'expected_completion')::date, deadline FROM rm_portfolios
         WHERE program_id = $1 AND NOT deadline_extended LIMIT 1",
    )
    .bind(w.programs[1].as_uuid())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(completion - deadline, TimeDelta::days(21));

    // Rebuild every read model from position 0 through the offline rebuild (all five at once, as
    // independent projections may), and compare.
    let rebuilds = models.iter().map(|p| {
        let (w, store, pool) = (&w, &store, &pool);
        async move {
            let mut lock = ProjectionLock::connect(&w.db.url, p.name()).await.unwrap();
            assert!(lock.try_acquire().await.unwrap());
            projections::rebuild(
                store,
                pool,
                &mut lock,
                p.as_ref(),
                RebuildOptions {
                    restart: true,
                    batch_size: 500,
                },
                &AtomicBool::new(false),
                &mut |_| {},
            )
            .await
            .unwrap();
            // The rebuild stops where the readable head was; carry on to the end of the log if
            // other tests' transactions held that back.
            catch_up(w, p.as_ref(), 500).await;
            let stored = checkpoint::load(pool, p.name()).await.unwrap().unwrap();
            assert_eq!(stored.events_applied, total, "{}", p.name());
            lock.release().await;
        }
    });
    futures::future::join_all(rebuilds).await;
    let rebuilt = snapshot(&pool, &models).await;
    assert_eq!(live.len(), rebuilt.len());
    for ((table, live_rows), (_, rebuilt_rows)) in live.iter().zip(&rebuilt) {
        assert!(!live_rows.is_empty(), "{table} is empty");
        assert_eq!(
            live_rows.len(),
            rebuilt_rows.len(),
            "{table}: row counts differ"
        );
        for (a, b) in live_rows.iter().zip(rebuilt_rows) {
            assert_eq!(a, b, "{table}: live and rebuilt rows differ");
        }
    }
    w.db.drop().await;
}

// ---------------------------------------------------------------------------------------------
// Time travel.
// ---------------------------------------------------------------------------------------------

async fn admin(w: &World, program: usize, cmd: ProgramCommand) {
    w.handler
        .program(w.programs[program], cmd, &ctx("admin-1", ActorRole::Admin))
        .await
        .unwrap();
}

/// Program 0's rules with a final deadline `offset` days before the expected completion.
fn deadline_offset(offset: u32) -> ProgramCommand {
    ProgramCommand::ChangeRules {
        rules: ProgramRules {
            final_deadline_offset_days: offset,
            ..ProgramRules::default()
        },
    }
}

#[tokio::test]
async fn the_portfolio_as_of_each_event_equals_the_live_view_right_after_it() {
    let w = world().await;
    let (p, s) = open(&w, 0, 1).await;
    let acts: Vec<ActivityId> = (0..3).map(|_| ActivityId::new(Uuid::now_v7())).collect();
    for (i, a) in acts.iter().enumerate() {
        student(&w, p, &s, log_activity(*a, ITEMS[i], 30 - 5 * i as i64)).await;
    }
    // Program events between portfolio events: a rules change that moves the deadline (a week
    // later: 21 days before completion instead of 28) re-renders the view ...
    admin(&w, 0, deadline_offset(21)).await;
    staff(
        &w,
        0,
        p,
        PortfolioCommand::SetExpectedCompletion {
            expected_completion: today() + TimeDelta::days(400),
            reason: text("Study plan prolonged."),
            by: coordinator(0),
        },
    )
    .await;
    // ... a catalog rename does not (the activity keeps the name it was logged under) ...
    admin(
        &w,
        0,
        ProgramCommand::RenameCatalogItem {
            item: CatalogItemId::parse(ITEMS[1]).unwrap(),
            name: text("TEDx Karolinska"),
        },
    )
    .await;
    for (a, content) in acts.iter().zip([written(), oral(), instagram("tt")]) {
        student(
            &w,
            p,
            &s,
            PortfolioCommand::SubmitReflection {
                activity_id: *a,
                content,
            },
        )
        .await;
    }
    // ... nor does a rules change the view does not show (the word bands).
    let mut bands = ProgramRules {
        final_deadline_offset_days: 21,
        ..ProgramRules::default()
    };
    bands.written.min = 800;
    admin(&w, 0, ProgramCommand::ChangeRules { rules: bands }).await;
    staff(
        &w,
        0,
        p,
        PortfolioCommand::ReturnReflection {
            activity_id: acts[1],
            by: coordinator(0),
            feedback: text("Say more about what you learned."),
        },
    )
    .await;
    student(
        &w,
        p,
        &s,
        PortfolioCommand::ResubmitReflection {
            activity_id: acts[1],
            content: oral(),
        },
    )
    .await;
    for a in &acts {
        staff(
            &w,
            0,
            p,
            PortfolioCommand::ApproveReflection {
                activity_id: *a,
                by: coordinator(0),
            },
        )
        .await;
    }
    staff(
        &w,
        0,
        p,
        PortfolioCommand::GrantExtension {
            until: today() + TimeDelta::days(390),
            reason: text("Illness."),
            by: coordinator(0),
        },
    )
    .await;
    // Under an extension the regular deadline still moves.
    admin(&w, 0, deadline_offset(14)).await;
    student(
        &w,
        p,
        &s,
        PortfolioCommand::SubmitFinalReflection {
            content: final_written(),
        },
    )
    .await;
    staff(
        &w,
        0,
        p,
        PortfolioCommand::ReturnFinalReflection {
            by: coordinator(0),
            feedback: text("Relate it to the workplace."),
        },
    )
    .await;
    student(
        &w,
        p,
        &s,
        PortfolioCommand::ResubmitFinalReflection {
            content: final_oral(),
        },
    )
    .await;
    staff(
        &w,
        0,
        p,
        PortfolioCommand::ApproveFinalReflection { by: coordinator(0) },
    )
    .await;
    student(&w, p, &s, PortfolioCommand::Apply).await;
    staff(
        &w,
        0,
        p,
        PortfolioCommand::RejectApplication {
            by: coordinator(0),
            reason: text("Not yet."),
        },
    )
    .await;
    student(&w, p, &s, PortfolioCommand::Apply).await;
    staff(
        &w,
        0,
        p,
        PortfolioCommand::ApproveApplication {
            certificate_id: CertificateId::new(Uuid::now_v7()),
            by: coordinator(0),
        },
    )
    .await;
    staff(
        &w,
        0,
        p,
        PortfolioCommand::RevokeCertificate {
            by: coordinator(0),
            reason: text("Mistake."),
        },
    )
    .await;
    // After the portfolio's last event, a rules change is the last thing that changed its view.
    admin(&w, 0, deadline_offset(35)).await;

    // Project one event per batch, capturing the live row (or its absence) after each event of
    // the portfolio's stream and of its program's stream, in log order.
    let projection = read_models::PortfolioProjection::new();
    let pool = &w.db.pool;
    checkpoint::reset(pool, &projection).await.unwrap();
    let hash = definition_hash(&projection);
    let program_stream = w.programs[0].stream_id();
    let mut at = Checkpoint::START;
    let mut captured = Vec::new();
    for _ in 0..event_count(pool).await {
        let batch = next_batch(&w, at, 1).await;
        let event = &batch[0];
        at = checkpoint::apply_batch(pool, &projection, &hash, at, &batch)
            .await
            .unwrap();
        if event.stream_id == p.stream_id() || event.stream_id == program_stream {
            let live = portfolio::stored_portfolio(pool, p).await.unwrap();
            captured.push((event.clone(), live));
        }
    }
    let own: Vec<_> = captured
        .iter()
        .filter(|(e, _)| e.stream_id == p.stream_id())
        .collect();
    assert_eq!(own.len(), 24);
    let rules_changes: Vec<usize> = (0..captured.len())
        .filter(|&i| captured[i].0.event_type == "RulesChanged")
        .collect();
    assert_eq!(rules_changes.len(), 4);
    assert!(
        captured
            .iter()
            .any(|(e, _)| e.event_type == "CatalogItemRenamed")
    );

    // What the rules changes did live: the deadline moved a week later, and each change that
    // altered the view dated the row; the change of the word bands left the row alone.
    let row = |i: usize| captured[i].1.as_ref().unwrap();
    let [later, bands, under_extension, last] = rules_changes[..] else {
        unreachable!()
    };
    assert_eq!(
        row(later).view.deadline.date,
        row(later - 1).view.deadline.date + TimeDelta::days(7)
    );
    assert_eq!(
        row(later).view.expected_completion - row(later).view.deadline.date,
        TimeDelta::days(21)
    );
    assert_eq!(row(bands), row(bands - 1));
    assert_eq!(
        row(under_extension).view.deadline.regular,
        row(under_extension - 1).view.deadline.regular + TimeDelta::days(7)
    );
    assert!(row(under_extension).view.deadline.extended);
    assert_eq!(
        row(last).view.expected_completion - row(last).view.deadline.regular,
        TimeDelta::days(35)
    );
    for i in [later, under_extension, last] {
        assert_eq!(row(i).updated_at, captured[i].0.recorded_at);
        assert_eq!(row(i).version, row(i - 1).version);
    }

    // The as-of view at every event of both streams is the live row right after it, and stays so
    // until the next event.
    let as_of = |t| async move {
        audit::portfolio_as_of(pool, p, t)
            .await
            .unwrap()
            .map(|page| portfolio::StoredPortfolio {
                view: page.view,
                version: page.version,
                updated_at: page.updated_at,
            })
    };
    let first = own[0].0.recorded_at;
    assert_eq!(as_of(first - TimeDelta::microseconds(1)).await, None);
    for (event, live) in &captured {
        let t = event.recorded_at;
        let what = format!("as of {} v{} ({t})", event.event_type, event.version);
        assert_eq!(as_of(t).await, *live, "{what}");
        assert_eq!(
            as_of(t + TimeDelta::microseconds(1)).await,
            *live,
            "just after {what}"
        );
    }
    // The as-of page carries the personal content of the time, from the log.
    let mid = audit::portfolio_as_of(pool, p, own[10].0.recorded_at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        mid.personal.student.as_ref().unwrap().name.family_name(),
        s.family_name
    );
    assert_eq!(
        mid.personal.activities[1].attempts[0]
            .feedback
            .as_ref()
            .map(|f| f.as_str()),
        Some("Say more about what you learned.")
    );
    assert_eq!(mid.view.activities[1].attempts.len(), 2);
    w.db.drop().await;
}

// ---------------------------------------------------------------------------------------------
// A small known scenario: concrete values of every query.
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

#[tokio::test]
async fn queue_registrar_audit_and_statistics_of_a_known_scenario() {
    let w = world().await;
    let pool = &w.db.pool;
    let (a, b) = (w.programs[0], w.programs[1]);

    // S1 (program A): three activities reflected, one returned and resubmitted, one approved.
    let (p1, s1) = open(&w, 0, 1).await;
    let acts: Vec<ActivityId> = (0..3).map(|_| ActivityId::new(Uuid::now_v7())).collect();
    for (i, act) in acts.iter().enumerate() {
        student(
            &w,
            p1,
            &s1,
            log_activity(*act, ITEMS[i], 30 - 10 * i as i64),
        )
        .await;
    }
    for (act, content) in acts.iter().zip([written(), oral(), instagram("s1")]) {
        student(
            &w,
            p1,
            &s1,
            PortfolioCommand::SubmitReflection {
                activity_id: *act,
                content,
            },
        )
        .await;
    }
    staff(
        &w,
        0,
        p1,
        PortfolioCommand::ApproveReflection {
            activity_id: acts[0],
            by: coordinator(0),
        },
    )
    .await;
    staff(
        &w,
        0,
        p1,
        PortfolioCommand::ReturnReflection {
            activity_id: acts[1],
            by: coordinator(0),
            feedback: text("Tell us what you would do differently."),
        },
    )
    .await;
    let resubmitted = student(
        &w,
        p1,
        &s1,
        PortfolioCommand::ResubmitReflection {
            activity_id: acts[1],
            content: oral(),
        },
    )
    .await;

    // S2 and S3 (program A) are certified; S3's certificate is then revoked.
    let (p2, s2) = open(&w, 0, 2).await;
    complete_and_apply(&w, 0, p2, &s2).await;
    let c2 = CertificateId::new(Uuid::now_v7());
    staff(
        &w,
        0,
        p2,
        PortfolioCommand::ApproveApplication {
            certificate_id: c2,
            by: coordinator(0),
        },
    )
    .await;
    let (p3, s3) = open(&w, 0, 3).await;
    complete_and_apply(&w, 0, p3, &s3).await;
    let c3 = CertificateId::new(Uuid::now_v7());
    staff(
        &w,
        0,
        p3,
        PortfolioCommand::ApproveApplication {
            certificate_id: c3,
            by: coordinator(0),
        },
    )
    .await;
    staff(
        &w,
        0,
        p3,
        PortfolioCommand::RevokeCertificate {
            by: coordinator(0),
            reason: text("Issued by mistake."),
        },
    )
    .await;

    // S4 (program A) logs one activity, reflects on it and withdraws it again.
    let (p4, s4) = open(&w, 0, 4).await;
    let act4 = ActivityId::new(Uuid::now_v7());
    student(&w, p4, &s4, log_activity(act4, "tedx", 40)).await;
    student(
        &w,
        p4,
        &s4,
        PortfolioCommand::SubmitReflection {
            activity_id: act4,
            content: written(),
        },
    )
    .await;
    student(
        &w,
        p4,
        &s4,
        PortfolioCommand::WithdrawActivity { activity_id: act4 },
    )
    .await;

    // S5 (program B) applies; the application waits.
    let (p5, s5) = open(&w, 1, 5).await;
    complete_and_apply(&w, 1, p5, &s5).await;
    // ... and proposes a later expected completion date twice: only the newer proposal waits.
    for days in [400, 420] {
        student(
            &w,
            p5,
            &s5,
            PortfolioCommand::ProposeExpectedCompletion {
                expected_completion: today() + TimeDelta::days(days),
                reason: text("Placement moved."),
            },
        )
        .await;
    }

    for model in read_models::all() {
        catch_up(&w, model.as_ref(), 50).await;
    }
    let people = [s1.clone(), s2.clone(), s3.clone(), s4.clone(), s5.clone()];

    // --- Review queue: oldest first, with how long each item has waited at `now`.
    let history1 = audit::portfolio_history(pool, p1).await.unwrap();
    let submitted_at = |version: i32| {
        history1
            .iter()
            .find(|e| e.stream_version == version)
            .unwrap()
            .recorded_at
    };
    let resubmitted_at = submitted_at(resubmitted.version);
    let now = resubmitted_at + TimeDelta::days(3);
    let queue = review_queue::review_queue(pool, a, now, None, 100)
        .await
        .unwrap();
    let summary: Vec<_> = queue
        .iter()
        .map(|e| (e.portfolio_id, e.kind, e.activity_id, e.attempt))
        .collect();
    assert_eq!(
        summary,
        [
            (p1, QueueItemKind::Reflection, Some(acts[2]), 1),
            (p1, QueueItemKind::Reflection, Some(acts[1]), 2),
        ]
    );
    assert_eq!(queue[0].item_name.as_deref(), Some("Student ambassador"));
    assert_eq!(queue[0].format.as_deref(), Some("instagram"));
    assert_eq!(queue[0].link_count, Some(3));
    assert_eq!(queue[0].submitted_at, submitted_at(8));
    assert_eq!(queue[1].format.as_deref(), Some("oral"));
    assert_eq!(queue[1].recording.as_deref(), Some("upload"));
    assert_eq!(queue[1].duration_measured, Some(false));
    assert_eq!(queue[1].submitted_at, resubmitted_at);
    assert_eq!(queue[1].waited_seconds, 3 * 86_400);
    assert_eq!(queue[1].waited_days, 3);
    assert_eq!(
        queue[0].waited_seconds,
        (now - submitted_at(8)).num_seconds()
    );
    let queue_b = review_queue::review_queue(pool, b, now, None, 100)
        .await
        .unwrap();
    let waiting_b: Vec<_> = queue_b
        .iter()
        .map(|e| (e.portfolio_id, e.kind, e.attempt))
        .collect();
    assert_eq!(
        waiting_b,
        [
            (p5, QueueItemKind::Application, 1),
            (p5, QueueItemKind::CompletionProposal, 2)
        ]
    );

    // --- Registrar: approved and revoked certificates, filters, keyset pages.
    let all = registrar::certificates(pool, &CertificateFilter::default(), None, 100)
        .await
        .unwrap();
    let ids: Vec<_> = all
        .certificates
        .iter()
        .map(|c| (c.certificate_id, c.status))
        .collect();
    assert_eq!(
        ids,
        [
            (c2, CertificateStatus::Approved),
            (c3, CertificateStatus::Revoked)
        ]
    );
    assert_eq!(all.next, None);
    let cert2 = &all.certificates[0];
    assert_eq!(cert2.portfolio_id, p2);
    assert_eq!(cert2.student_uid, s2.uid);
    assert_eq!(cert2.decided_on, today());
    assert_eq!(cert2.decided_by, coordinator(0));
    assert_eq!(
        cert2.activity_names,
        [
            "Participation in language café, participant and/or coordinator",
            "TEDx",
            "Student ambassador",
        ]
    );
    assert_eq!(cert2.program_name, "Occupational Therapy Program");
    assert_eq!(
        (cert2.export_status.as_str(), cert2.ladok_status.as_str()),
        ("pending", "pending")
    );
    let cert3 = &all.certificates[1];
    assert_eq!(cert3.revoked_on, Some(today()));
    assert_eq!(cert3.revoked_by, Some(coordinator(0)));
    let revoked = registrar::certificates(
        pool,
        &CertificateFilter {
            program_id: Some(a),
            status: Some(CertificateStatus::Revoked),
        },
        None,
        100,
    )
    .await
    .unwrap();
    assert_eq!(revoked.certificates.len(), 1);
    assert_eq!(revoked.certificates[0].certificate_id, c3);
    let none_in_b = registrar::certificates(
        pool,
        &CertificateFilter {
            program_id: Some(b),
            status: None,
        },
        None,
        100,
    )
    .await
    .unwrap();
    assert!(none_in_b.certificates.is_empty());
    let page1 = registrar::certificates(pool, &CertificateFilter::default(), None, 1)
        .await
        .unwrap();
    let page2 = registrar::certificates(pool, &CertificateFilter::default(), page1.next, 1)
        .await
        .unwrap();
    let page3 = registrar::certificates(pool, &CertificateFilter::default(), page2.next, 1)
        .await
        .unwrap();
    assert_eq!(page1.certificates[0].certificate_id, c2);
    assert_eq!(page2.certificates[0].certificate_id, c3);
    assert!(page3.certificates.is_empty() && page3.next.is_none());
    assert_eq!(
        registrar::certificate(pool, c3)
            .await
            .unwrap()
            .unwrap()
            .status,
        CertificateStatus::Revoked
    );

    // --- Portfolio page: next steps, days left, personal content joined from the log.
    let page = portfolio::portfolio_page(pool, p1, today())
        .await
        .unwrap()
        .unwrap();
    let codes: Vec<_> = page.view.next_steps.iter().map(|s| s.code).collect();
    assert_eq!(
        codes,
        [
            NextStepCode::SubmitFinalReflection,
            NextStepCode::AwaitReview
        ]
    );
    assert_eq!(
        page.days_left,
        Some((page.view.deadline.date - today()).num_days())
    );
    assert_eq!(
        page.personal.student.as_ref().unwrap().email.as_str(),
        s1.email
    );
    assert_eq!(
        page.personal.activities[1].attempts[0]
            .feedback
            .as_ref()
            .unwrap()
            .as_str(),
        "Tell us what you would do differently."
    );
    let list = portfolio::portfolios_of_program(pool, a, None, None, 100, today())
        .await
        .unwrap();
    assert_eq!(list.len(), 4);
    let mine = portfolio::portfolios_of_student(pool, s5.uid, None, 100, today())
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].next_steps, [NextStepCode::AwaitDecision]);

    // --- Audit: history with content, a filtered program log in pages, CSV.
    assert_eq!(history1.len(), 11);
    assert_eq!(history1[0].event_type, "PortfolioOpened");
    assert_eq!(history1[0].actor_role, ActorRole::Student);
    assert_eq!(history1[0].program_id, Some(a));
    assert!(
        history1[0].content["personal"]
            .to_string()
            .contains(&s1.family_name)
    );
    let returned = audit::program_log(
        pool,
        a,
        &AuditFilter {
            event_types: vec!["ReflectionReturned".into()],
            ..AuditFilter::default()
        },
        None,
        100,
    )
    .await
    .unwrap();
    assert_eq!(returned.entries.len(), 1);
    assert_eq!(returned.entries[0].actor_id, coordinator(0).as_str());
    let everything = audit::program_log(pool, a, &AuditFilter::default(), None, 1000)
        .await
        .unwrap();
    // Program A's own events (registration, 13 catalog items, coordinator) and its four
    // portfolios' (S1 11, S2 15, S3 16, S4 5: each with the date's confirmation).
    assert_eq!(everything.entries.len(), 15 + 11 + 15 + 16 + 5);
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = audit::program_log(pool, a, &AuditFilter::default(), after, 7)
            .await
            .unwrap();
        paged.extend(page.entries);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(paged, everything.entries);
    let by_s4 = audit::program_log(
        pool,
        a,
        &AuditFilter {
            actor_id: Some(s4.uid.to_string()),
            from: Some(history1[0].recorded_at),
            until: Some(Utc::now() + TimeDelta::days(1)),
            ..AuditFilter::default()
        },
        None,
        100,
    )
    .await
    .unwrap();
    assert_eq!(by_s4.entries.len(), 4);
    assert!(by_s4.entries.iter().all(|e| e.portfolio_id == Some(p4)));
    let csv = audit::audit_csv(&history1);
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(
        lines[0],
        "position,recorded_at,event_type,actor_role,actor_id,correlation_id,content"
    );
    assert_eq!(
        lines.len(),
        1 + history1.len() + 1,
        "header, rows, final CRLF"
    );
    assert!(lines[1].contains(",PortfolioOpened,student,"));
    assert!(lines[1].ends_with('"'), "the JSON content is quoted");

    // --- Statistics, overall and per program.
    let overall = statistics::statistics(pool, None).await.unwrap();
    assert_eq!(overall.students_started, 5);
    let reached: Vec<i64> = overall.reached.iter().map(|s| s.portfolios).collect();
    // started, logged one, logged three, reflected three, three approved, final submitted,
    // final approved, applied, certified.
    assert_eq!(reached, [5, 5, 4, 4, 3, 3, 3, 3, 2]);
    assert_eq!((overall.approved, overall.revoked), (2, 1));
    assert_eq!(overall.first_activity_to_approval.portfolios, 2);
    assert_eq!(overall.first_activity_to_approval.mean_days, Some(32.0));
    assert_eq!(overall.first_activity_to_approval.median_days, Some(32.0));
    let mix: Vec<(&str, i64)> = overall
        .activity_mix
        .iter()
        .map(|s| (s.key.as_str(), s.count))
        .collect();
    assert_eq!(
        mix,
        [("language-cafe", 4), ("student-ambassador", 4), ("tedx", 4)]
    );
    let formats: Vec<(&str, i64)> = overall
        .reflection_formats
        .iter()
        .map(|s| (s.key.as_str(), s.count))
        .collect();
    assert_eq!(formats, [("written", 7), ("instagram", 4), ("oral", 1)]);
    assert_eq!(
        (overall.reflections_submitted, overall.reflections_returned),
        (14, 1)
    );
    assert_eq!(overall.return_rate, Some(1.0 / 14.0));
    assert_eq!(overall.final_formats[0].key, "oral");
    let per_program = statistics::statistics_per_program(pool).await.unwrap();
    let started: Vec<_> = per_program
        .iter()
        .map(|s| (s.program_id.unwrap(), s.students_started))
        .collect();
    let mut expected = vec![(a, 4), (b, 1)];
    expected.sort();
    assert_eq!(started, expected);

    let later = statistics::drop_off(pool, None, Utc::now() + TimeDelta::days(40), 30)
        .await
        .unwrap();
    assert_eq!((later.open, later.inactive), (3, 3));
    assert_eq!(
        later.stuck,
        [
            StepCount {
                step: Step::Started,
                portfolios: 1
            },
            StepCount {
                step: Step::ReflectionsSubmitted,
                portfolios: 1
            },
            StepCount {
                step: Step::Applied,
                portfolios: 1
            },
        ]
    );
    let soon = statistics::drop_off(pool, Some(a), Utc::now() + TimeDelta::days(1), 30)
        .await
        .unwrap();
    assert_eq!((soon.open, soon.inactive), (2, 0));

    // --- No personal data in the statistics, nor in any other read-model table.
    let stats_text: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(t)::text FROM rm_stats_portfolios t")
            .fetch_all(pool)
            .await
            .unwrap();
    let stats_text = stats_text.join("\n");
    assert_no_personal_data(&stats_text, &people, true, "rm_stats_portfolios");
    assert!(!stats_text.contains("Testperson"));
    let everything_text = all_read_model_text(pool).await;
    assert_no_personal_data(&everything_text, &people, false, "a read model");
    // The opening words of every generated reflection text.
    let reflection_words = support::texts::english(12);
    for secret in [
        "Tell us what you would do differently.",
        "Issued by mistake.",
        "Two evenings a week",
        reflection_words.as_str(),
    ] {
        assert!(
            !everything_text.contains(secret),
            "a read model holds {secret:?}"
        );
    }

    // Erasing the personal column in the log is all an erasure takes: the read models do not
    // change, the pages show the portfolio without the student's data.
    let before_erasure = snapshot(pool, &read_models::all()).await;
    sqlx::query("UPDATE events SET personal = NULL, data_subject = NULL WHERE data_subject = $1")
        .bind(s1.uid.as_uuid())
        .execute(pool)
        .await
        .unwrap();
    let erased = portfolio::portfolio_page(pool, p1, today())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(erased.personal.student, None);
    assert_eq!(erased.view, page.view);
    assert!(
        audit::portfolio_history(pool, p1)
            .await
            .unwrap()
            .iter()
            .all(|e| e.content.get("personal").is_none())
    );
    assert_eq!(snapshot(pool, &read_models::all()).await, before_erasure);
    w.db.drop().await;
}

// ---------------------------------------------------------------------------------------------
// Fold caches.
// ---------------------------------------------------------------------------------------------

/// Applies the first `n` events of the log to `projection` from its start, in batches of `batch`.
async fn apply_first(w: &World, projection: &dyn Projection, n: i64, batch: i64) {
    let hash = definition_hash(projection);
    let (mut at, mut applied) = (Checkpoint::START, 0);
    while applied < n {
        let events = next_batch(w, at, batch.min(n - applied)).await;
        at = checkpoint::apply_batch(&w.db.pool, projection, &hash, at, &events)
            .await
            .unwrap();
        applied += events.len() as i64;
    }
}

/// The projections keep the states they folded per stream and version (src/projections/
/// read_models/stream.rs, "Fold cache"). Instances whose caches hold every stream's final state are
/// reset and made to apply only the first part of the log (a restarted rebuild), then have a batch
/// rolled back and are taken over by other instances: each time they must build exactly the rows
/// of instances that never cached anything. A state used for a version other than the one it holds
/// would show up as a later state in a row of the prefix.
#[tokio::test]
async fn cached_folds_are_only_used_for_the_version_they_hold() {
    let w = world().await;
    let pool = &w.db.pool;
    for n in 0..3 {
        let (p, s) = open(&w, (n % 2) as usize, 900 + n).await;
        complete_and_apply(&w, (n % 2) as usize, p, &s).await;
    }
    // A rules change in the middle: the statistics judge every state by the rules in force.
    admin(
        &w,
        0,
        ProgramCommand::ChangeRules {
            rules: ProgramRules {
                required_activities: 2,
                ..ProgramRules::default()
            },
        },
    )
    .await;
    let (p, s) = open(&w, 0, 910).await;
    complete_and_apply(&w, 0, p, &s).await;

    let cached = read_models::all();
    for p in &cached {
        catch_up(&w, p.as_ref(), 5).await;
    }
    let full = snapshot(pool, &cached).await;
    let total = event_count(pool).await;
    for prefix in [total / 3, 2 * total / 3] {
        for p in &cached {
            checkpoint::reset(pool, p.as_ref()).await.unwrap();
            apply_first(&w, p.as_ref(), prefix, 4).await;
        }
        let replayed = snapshot(pool, &cached).await;
        assert_ne!(replayed, full, "a prefix of the log shows less");
        let fresh = read_models::all();
        for p in &fresh {
            checkpoint::reset(pool, p.as_ref()).await.unwrap();
            apply_first(&w, p.as_ref(), prefix, 4).await;
        }
        assert_eq!(
            replayed,
            snapshot(pool, &fresh).await,
            "cached instances after {prefix} events"
        );
    }

    // A rolled-back batch leaves states beyond the checkpoint in the caches.
    let all_events = next_batch(&w, Checkpoint::START, total).await;
    let mut tx = pool.begin().await.unwrap();
    for p in &cached {
        for event in &all_events[(2 * total / 3) as usize..] {
            p.apply(&mut tx, event).await.unwrap();
        }
    }
    tx.rollback().await.unwrap();
    // Other instances advance a little (a takeover), then the cached ones finish.
    let others = read_models::all();
    for (p, other) in cached.iter().zip(&others) {
        let stored = checkpoint::load(pool, other.name()).await.unwrap().unwrap();
        let events = next_batch(&w, stored.checkpoint, 3).await;
        checkpoint::apply_batch(
            pool,
            other.as_ref(),
            &definition_hash(other.as_ref()),
            stored.checkpoint,
            &events,
        )
        .await
        .unwrap();
        catch_up(&w, p.as_ref(), 7).await;
    }
    assert_eq!(snapshot(pool, &cached).await, full);
    w.db.drop().await;
}
