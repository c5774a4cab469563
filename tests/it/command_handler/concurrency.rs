//! Races, retries, a missing portfolio and decisions made on an old version.

use super::*;

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
