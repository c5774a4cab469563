//! The handler's fold cache: the state it hands out is the log's, on every instance; a command
//! decided on a fold that is behind the log (another instance moved the stream on) is the command
//! the log would decide; and an erased student's personal data does not stay in memory.

use super::*;
use cim::app::ErasureRequest;
use cim::media::MediaStore;

/// Another `cim serve` on the same database: a handler with a cache of its own.
fn other_instance(w: &World) -> CommandHandler {
    CommandHandler::new(EventStore::new(w.db.pool.clone(), log::upcasters()))
}

#[tokio::test]
async fn cached_folds_are_the_folds_of_the_log_on_every_instance() {
    let w = world().await;
    let (p, s) = open(&w).await;
    let other = other_instance(&w);
    // The other instance folds the portfolio now, then both move it on, in turns.
    other.load_portfolio(p).await.unwrap();
    let activity = ActivityId::new(Uuid::now_v7());
    as_student(&w, p, s, log(activity, "language-cafe", 3))
        .await
        .unwrap();
    let withdraw = PortfolioCommand::WithdrawActivity {
        activity_id: activity,
    };
    other
        .portfolio(p, withdraw, &ctx(&s.to_string(), ActorRole::Student))
        .await
        .unwrap();
    as_student(
        &w,
        p,
        s,
        log(ActivityId::new(Uuid::now_v7()), "language-cafe", 2),
    )
    .await
    .unwrap();

    // Each cache holds an older fold of its own; each answers with the state a fresh fold gives.
    let fresh = other_instance(&w).load_portfolio(p).await.unwrap();
    assert_eq!(w.handler.load_portfolio(p).await.unwrap(), fresh);
    assert_eq!(other.load_portfolio(p).await.unwrap(), fresh);
    w.db.drop().await;
}

#[tokio::test]
async fn a_fold_behind_the_log_decides_what_the_log_would() {
    let w = world().await;
    let (p, s) = open(&w).await;
    let other = other_instance(&w);
    // A new command (id) each time.
    let student = || ctx(&s.to_string(), ActorRole::Student);
    let withdraw = |activity_id| PortfolioCommand::WithdrawActivity { activity_id };
    let activities: Vec<ActivityId> = (0..4).map(|_| ActivityId::new(Uuid::now_v7())).collect();
    // This instance folds the portfolio with the first activity; the other instance then logs the
    // second, so this instance's fold is behind the log.
    as_student(&w, p, s, log(activities[0], "language-cafe", 3))
        .await
        .unwrap();
    other
        .portfolio(p, log(activities[1], "student-ambassador", 2), &student())
        .await
        .unwrap();

    // The fold behind would refuse this (it knows no second activity): decided again on the log.
    let handled = w
        .handler
        .portfolio(p, withdraw(activities[1]), &student())
        .await
        .unwrap();
    assert_eq!(handled.events.len(), 1);

    // The fold behind would accept this too: its append finds the stream moved on, and the retry
    // decides on the log, after the third activity.
    other
        .portfolio(p, log(activities[2], "tedx", 1), &student())
        .await
        .unwrap();
    let handled = w
        .handler
        .portfolio(p, withdraw(activities[0]), &student())
        .await
        .unwrap();
    assert_eq!(handled.events.len(), 1);

    // The client names the version the other instance answered with, which this one has not seen:
    // not a stale `If-Match`.
    let seen = other
        .portfolio(p, log(activities[3], "mentor-study-buddy", 1), &student())
        .await
        .unwrap()
        .version;
    let handled = w
        .handler
        .portfolio_if(p, withdraw(activities[2]), &student(), Some(seen))
        .await
        .unwrap();
    assert_eq!(handled.version, seen + 1);
    // A stale one is still refused, on the log's version.
    let stale = w
        .handler
        .portfolio_if(p, withdraw(activities[3]), &student(), Some(seen))
        .await
        .unwrap_err();
    assert!(
        matches!(stale, CommandError::VersionMismatch { expected, current } if expected == seen && current == seen + 1),
        "{stale:?}"
    );

    // Every decision was the log's: the answer, the cache and a fresh fold agree, and the log holds
    // each withdrawal once.
    let fresh = other_instance(&w).load_portfolio(p).await.unwrap();
    assert_eq!(w.handler.load_portfolio(p).await.unwrap(), fresh);
    assert_eq!(handled.state, fresh.0);
    let withdrawals = w
        .handler
        .store()
        .read_stream(&p.stream_id(), 0)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.event_type == "ActivityWithdrawn")
        .count();
    assert_eq!(withdrawals, 3);
    w.db.drop().await;
}

#[tokio::test]
async fn a_refusal_of_what_commits_with_the_events_is_decided_again_on_the_log() {
    let w = world().await;
    // The first student holds 19121212-1212.
    open(&w).await;
    let student = StudentUid::new(Uuid::now_v7());
    let portfolio = PortfolioId::of(student, w.program);
    let as_second = || ctx(&student.to_string(), ActorRole::Student);
    let opening = |number: &str| PortfolioCommand::OpenPortfolio {
        portfolio_id: portfolio,
        student_uid: student,
        identity_number: IdentityNumber::parse(number, today()).unwrap(),
        name: PersonName::parse("Elva", "Elvasson").unwrap(),
        email: Email::parse("elva@student.example.se").unwrap(),
        expected_completion: today() + TimeDelta::days(365),
        identity_check: None,
    };
    // This instance holds the second student's portfolio as not opened; the other opens it.
    let (held, _) = w.handler.load_portfolio(portfolio).await.unwrap();
    assert!(held.opened().is_none());
    other_instance(&w)
        .open_portfolio(w.program, opening("19800101-0019"), &as_second())
        .await
        .unwrap();

    // Opened again here with the first student's number: on the fold held, the number's claim
    // would refuse it; the log says the portfolio exists, and where.
    let again = w
        .handler
        .open_portfolio(w.program, opening("19121212-1212"), &as_second())
        .await
        .unwrap_err();
    assert!(
        matches!(again, CommandError::PortfolioExists { portfolio_id } if portfolio_id == portfolio),
        "{again:?}"
    );
    w.db.drop().await;
}

#[tokio::test]
async fn an_erasure_leaves_no_personal_data_in_any_instance_s_folds() {
    let w = world().await;
    let (p, s) = open(&w).await;
    let other = other_instance(&w);
    let (before, _) = other.load_portfolio(p).await.unwrap();
    assert!(before.opened().unwrap().student.is_some());
    w.handler.load_portfolio(p).await.unwrap();
    assert!(w.handler.holds_portfolio_fold(p));

    let media = tempfile::tempdir().unwrap();
    let request = ErasureRequest {
        student_uid: s,
        by: StaffId::parse("admin-1").unwrap(),
        reason: text("GDPR request 2026-41"),
    };
    app::erase(
        &w.handler,
        &MediaStore::new(media.path(), 1 << 20),
        &request,
        &ctx("admin-1", ActorRole::Admin),
    )
    .await
    .unwrap();

    // The instance that erased dropped its fold at once.
    assert!(!w.handler.holds_portfolio_fold(p));
    // The other still held one with the student's details: its next load reads the erasure and
    // folds the stream again from the log, which no longer has them.
    let (after, _) = other.load_portfolio(p).await.unwrap();
    assert_eq!(after.opened().unwrap().student, None);
    w.db.drop().await;
}
