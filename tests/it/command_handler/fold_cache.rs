//! The handler's fold cache: the state it hands out is the log's, on every instance, and an erased
//! student's personal data does not stay in memory.

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
