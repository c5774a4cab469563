//! Commands through the handler into a real PostgreSQL: the whole path of one student, a race between
//! a coordinator and the student, and retried commands.

use crate::support;

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
    let handler = CommandHandler::new(EventStore::new(db.pool.clone(), app::upcasters()));
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

#[tokio::test]
async fn a_student_goes_from_enrolment_to_an_approved_certificate() {
    let w = world().await;
    let (p, s) = open(&w).await;
    let activities: Vec<ActivityId> = (0..3).map(|_| ActivityId::new(Uuid::now_v7())).collect();
    let items = [
        "language-cafe",
        "student-ambassador",
        "course-in-global-health",
    ];
    for (i, (a, item)) in activities.iter().zip(items).enumerate() {
        as_student(&w, p, s, log(*a, item, 30 - i as i64 * 5))
            .await
            .unwrap();
    }

    // Each reflection format once, the written one first too short.
    let short = as_student(
        &w,
        p,
        s,
        PortfolioCommand::SubmitReflection {
            activity_id: activities[0],
            content: ReflectionContent::Written {
                text: texts::english(642),
            },
        },
    )
    .await
    .unwrap_err();
    let CommandError::Domain(refusal) = short else {
        panic!("expected a domain refusal, got {short:?}")
    };
    assert_eq!(refusal.code(), "reflection_word_count_out_of_band");
    assert!(refusal.to_string().contains("642"), "{refusal}");

    let contents = [
        ReflectionContent::Written {
            text: texts::english(1000),
        },
        ReflectionContent::Oral {
            media: Some(MediaRef::new(&"ab".repeat(32), "audio/mpeg", 4096).unwrap()),
            link: None,
            duration_s: 150,
            duration_measured: false,
        },
        ReflectionContent::Instagram {
            links: vec![
                "https://www.instagram.com/p/Cabc123/".into(),
                "https://www.instagram.com/p/Cdef456/".into(),
                "https://instagram.com/reel/Cghi789/".into(),
            ],
            text: texts::english(500),
        },
    ];
    for (a, content) in activities.iter().zip(contents) {
        as_student(
            &w,
            p,
            s,
            PortfolioCommand::SubmitReflection {
                activity_id: *a,
                content,
            },
        )
        .await
        .unwrap();
    }

    // The coordinator returns one with feedback; the student resubmits; all three are approved.
    as_coordinator(
        &w,
        p,
        PortfolioCommand::ReturnReflection {
            activity_id: activities[1],
            by: staff(),
            feedback: text("Please say more about what you will take with you."),
        },
    )
    .await
    .unwrap();
    as_student(
        &w,
        p,
        s,
        PortfolioCommand::ResubmitReflection {
            activity_id: activities[1],
            content: ReflectionContent::Oral {
                media: Some(MediaRef::new(&"ab".repeat(32), "audio/mpeg", 4096).unwrap()),
                link: None,
                duration_s: 170,
                duration_measured: false,
            },
        },
    )
    .await
    .unwrap();
    for a in &activities {
        as_coordinator(
            &w,
            p,
            PortfolioCommand::ApproveReflection {
                activity_id: *a,
                by: staff(),
            },
        )
        .await
        .unwrap();
    }

    // The final reflection must be English.
    let swedish = as_student(
        &w,
        p,
        s,
        PortfolioCommand::SubmitFinalReflection {
            content: FinalContent::Written {
                text: texts::swedish(3000),
            },
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            swedish,
            CommandError::Domain(DomainError::FinalReflectionNotEnglish { .. })
        ),
        "{swedish:?}"
    );
    as_student(
        &w,
        p,
        s,
        PortfolioCommand::SubmitFinalReflection {
            content: FinalContent::Written {
                text: texts::english(3000),
            },
        },
    )
    .await
    .unwrap();
    as_coordinator(
        &w,
        p,
        PortfolioCommand::ApproveFinalReflection { by: staff() },
    )
    .await
    .unwrap();

    as_student(&w, p, s, PortfolioCommand::Apply).await.unwrap();
    let certificate = CertificateId::new(Uuid::now_v7());
    let events = as_coordinator(
        &w,
        p,
        PortfolioCommand::ApproveApplication {
            certificate_id: certificate,
            by: staff(),
        },
    )
    .await
    .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event_type() == "CertificateApproved"),
        "{events:?}"
    );

    let (state, version) = w.handler.load_portfolio(p).await.unwrap();
    let portfolio = state.opened().unwrap();
    assert_eq!(portfolio.phase, Phase::Certified);
    assert_eq!(
        portfolio.certificate.as_ref().unwrap().certificate_id,
        certificate
    );
    // Every attempt is kept: the returned oral reflection has two.
    assert_eq!(portfolio.activity(activities[1]).unwrap().attempts.len(), 2);

    // The log holds exactly what happened, personal data in its own column tied to the student.
    let stored = w
        .handler
        .store()
        .read_stream(&p.stream_id(), 0)
        .await
        .unwrap();
    assert_eq!(stored.len() as i32, version);
    let opened = &stored[0];
    assert_eq!(opened.data_subject, Some(*s.as_uuid()));
    assert!(
        opened
            .personal
            .as_ref()
            .unwrap()
            .to_string()
            .contains("191212121212")
    );
    assert!(
        !opened.payload.to_string().contains("191212121212"),
        "personal data leaked into the payload"
    );
    // The opening words of every reflection text submitted above.
    let reflection_words = texts::english(12);
    assert!(
        stored
            .iter()
            .all(|e| !e.payload.to_string().contains(&reflection_words))
    );
    w.db.drop().await;
}

#[tokio::test]
async fn a_coordinator_and_the_student_racing_on_one_portfolio_both_land_in_order() {
    let w = world().await;
    let (p, s) = open(&w).await;
    let a = ActivityId::new(Uuid::now_v7());
    as_student(&w, p, s, log(a, "language-cafe", 10))
        .await
        .unwrap();
    as_student(
        &w,
        p,
        s,
        PortfolioCommand::SubmitReflection {
            activity_id: a,
            content: ReflectionContent::Written {
                text: texts::english(1000),
            },
        },
    )
    .await
    .unwrap();

    // Both decide against the same version; the loser reloads and decides again once.
    let b = ActivityId::new(Uuid::now_v7());
    let student = as_student(&w, p, s, log(b, "student-ambassador", 3));
    let coordinator = as_coordinator(
        &w,
        p,
        PortfolioCommand::ApproveReflection {
            activity_id: a,
            by: staff(),
        },
    );
    let (r1, r2) = tokio::join!(student, coordinator);
    r1.unwrap();
    r2.unwrap();

    let (state, version) = w.handler.load_portfolio(p).await.unwrap();
    let portfolio = state.opened().unwrap();
    // Open, the date's confirmation, two activities, a reflection and its approval.
    assert_eq!(version, 6);
    assert!(portfolio.activity(b).is_some());
    assert_eq!(
        portfolio.activity(a).unwrap().status(),
        cim::domain::portfolio::ReflectionStatus::Approved
    );
    w.db.drop().await;
}

#[tokio::test]
async fn a_retried_command_is_applied_once_and_answers_like_the_first_time() {
    let w = world().await;
    let (p, s) = open(&w).await;
    let a = ActivityId::new(Uuid::now_v7());
    let retry_ctx = ctx(&s.to_string(), ActorRole::Student);

    let first = w
        .handler
        .portfolio(p, log(a, "language-cafe", 10), &retry_ctx)
        .await
        .unwrap();
    // The same command id again: the rules would now refuse it (the activity id is taken), but the
    // retry must get the first outcome instead.
    let second = w
        .handler
        .portfolio(p, log(a, "language-cafe", 10), &retry_ctx)
        .await
        .unwrap();
    assert_eq!(
        second.outcome.unwrap().checkpoint,
        first.outcome.unwrap().checkpoint
    );
    assert!(second.outcome.unwrap().duplicate);
    assert_eq!(second.version, first.version);

    // Concurrent retries of one new command.
    let b = ActivityId::new(Uuid::now_v7());
    let ctx_b = ctx(&s.to_string(), ActorRole::Student);
    let attempts = (0..6).map(|_| {
        w.handler
            .portfolio(p, log(b, "student-ambassador", 5), &ctx_b)
    });
    let results = futures::future::join_all(attempts).await;
    let fresh = results
        .iter()
        .filter(|r| !r.as_ref().unwrap().outcome.unwrap().duplicate)
        .count();
    assert_eq!(fresh, 1);
    let stored = w
        .handler
        .store()
        .read_stream(&p.stream_id(), 0)
        .await
        .unwrap();
    assert_eq!(
        stored.len(),
        4,
        "open + the date's confirmation + two activities, each once"
    );

    // Seeding again changes nothing.
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&w.db.pool)
        .await
        .unwrap();
    app::seed_pilot_programs(&w.handler, "admin-1", Utc::now())
        .await
        .unwrap();
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&w.db.pool)
        .await
        .unwrap();
    assert_eq!(before, after);
    w.db.drop().await;
}

#[tokio::test]
async fn a_command_for_a_portfolio_that_does_not_exist_is_refused() {
    let w = world().await;
    let missing = PortfolioId::new(Uuid::now_v7());
    let err = as_student(
        &w,
        missing,
        StudentUid::new(Uuid::now_v7()),
        PortfolioCommand::Apply,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, CommandError::Domain(DomainError::PortfolioNotOpened)),
        "{err:?}"
    );
    w.db.drop().await;
}

#[tokio::test]
async fn a_command_decided_on_an_old_version_is_refused_however_late_the_change_landed() {
    let w = world().await;
    let (p, s) = open(&w).await;
    let student = ctx(&s.to_string(), ActorRole::Student);
    let (_, read) = w.handler.load_portfolio(p).await.unwrap();

    // Another change lands after the client read version `read`.
    as_student(
        &w,
        p,
        s,
        log(ActivityId::new(Uuid::now_v7()), "language-cafe", 9),
    )
    .await
    .unwrap();
    let stale = w
        .handler
        .portfolio_if(
            p,
            log(ActivityId::new(Uuid::now_v7()), "student-ambassador", 8),
            &student,
            Some(read),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            stale,
            CommandError::VersionMismatch { expected, current } if expected == read && current == read + 1
        ),
        "{stale:?}"
    );
    let (_, now_at) = w.handler.load_portfolio(p).await.unwrap();
    assert_eq!(now_at, read + 1, "the refused command wrote nothing");

    // Decided on the current version it lands; its retry is answered with its outcome even after
    // the stream moved on again.
    let fresh = ctx(&s.to_string(), ActorRole::Student);
    let command = log(ActivityId::new(Uuid::now_v7()), "student-ambassador", 8);
    let first = w
        .handler
        .portfolio_if(p, command.clone(), &fresh, Some(now_at))
        .await
        .unwrap();
    as_student(
        &w,
        p,
        s,
        log(
            ActivityId::new(Uuid::now_v7()),
            "course-in-global-health",
            7,
        ),
    )
    .await
    .unwrap();
    let retried = w
        .handler
        .portfolio_if(p, command, &fresh, Some(now_at))
        .await
        .unwrap();
    assert!(retried.outcome.unwrap().duplicate);
    assert_eq!(
        retried.outcome.unwrap().checkpoint,
        first.outcome.unwrap().checkpoint
    );

    // Many clients that all read the same version race: exactly one wins, every other one is told
    // the resource changed, even those whose append lost at the store and were retried.
    let (_, at) = w.handler.load_portfolio(p).await.unwrap();
    let contexts: Vec<CommandContext> = (0..8)
        .map(|_| ctx(&s.to_string(), ActorRole::Student))
        .collect();
    let racers = contexts.iter().enumerate().map(|(i, c)| {
        w.handler.portfolio_if(
            p,
            PortfolioCommand::ProposeExpectedCompletion {
                expected_completion: today() + TimeDelta::days(400 + i as i64),
                reason: text("Placement moved."),
            },
            c,
            Some(at),
        )
    });
    let results = futures::future::join_all(racers).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    let mismatched = results
        .iter()
        .filter(|r| matches!(r, Err(CommandError::VersionMismatch { .. })))
        .count();
    assert_eq!((won, mismatched), (1, 7), "{results:?}");
    let (_, after) = w.handler.load_portfolio(p).await.unwrap();
    assert_eq!(after, at + 1);
    w.db.drop().await;
}
