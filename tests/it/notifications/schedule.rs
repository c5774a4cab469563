//! The schedules: a student's final-reflection reminder fires on its day and not twice, and the
//! next milestone fires on its own day; a quiet portfolio is reminded once; a coordinator's digest
//! counts what waits, once a day, and not for one who turned digests off; a stuck part is
//! announced to the operators once per spell.

use super::reflected;
use chrono::{Duration as Days, Utc};
use serde_json::json;
use uuid::Uuid;

use super::{config, outbox};
use crate::support;
use crate::support::auth::staff_token_with_email;
use crate::support::flow::{Api, Caller};
use crate::support::server::{COORDINATORS, TestServer};
use crate::support::smtp::SmtpSink;
use cim::app::CommandHandler;
use cim::http::auth::Role;
use cim::log;
use cim::notify::reminders::ReminderSettings;
use cim::notify::schedule::{DailyOutcome, daily};
use cim::notify::sender::Sender;
use cim::notify::watch;
use cim::ops::Thresholds;
use cim::projections::Scope;
use cim::store::EventStore;

fn new_rows(outcome: DailyOutcome) -> u64 {
    match outcome {
        DailyOutcome::Decided { new, .. } => new,
        DailyOutcome::Busy => panic!("nobody else runs the job"),
    }
}

#[tokio::test]
async fn reminders_and_digests_fire_on_their_day_once() {
    let server = TestServer::start().await;
    let pool = server.db.pool.clone();
    let api = Api::new(vec![server.base.clone()]);
    let uid = Uuid::now_v7().to_string();
    let coordinator = Caller {
        subject: COORDINATORS[0].to_owned(),
        token: staff_token_with_email(Role::Coordinator, COORDINATORS[0], "anna@uni.example"),
    };
    // The coordinator's token (with their address) is seen by the service with this step.
    let (mut p, _) = reflected(&api, server.programs[0], &uid, 11).await;
    p.step("/expected-completion/confirm", &coordinator, json!({}))
        .await
        .unwrap();
    let store = EventStore::new(pool.clone(), log::upcasters());
    support::settle(&store).await;
    let head = store.head().await.unwrap();
    server
        .runner
        .wait_for(Scope::All, head, std::time::Duration::from_secs(30))
        .await
        .unwrap();

    let deadline: chrono::NaiveDate = sqlx::query_scalar("SELECT deadline FROM rm_portfolios")
        .fetch_one(&pool)
        .await
        .unwrap();
    let settings = ReminderSettings::default();
    let now = Utc::now();
    // 43 days before the deadline: only the quiet-portfolio reminder (nothing happened for
    // months by then) and the coordinator's digest.
    let on = |days_before: i64| deadline - Days::days(days_before);
    assert_eq!(
        new_rows(daily(&pool, &settings, on(43), now).await.unwrap()),
        2
    );
    let kinds = |rows: Vec<(String, String)>| rows.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(
        kinds(outbox(&pool).await),
        ["inactive", "coordinator_digest"]
    );
    // The 6-week day: the reminder (and that day's digest); again that day: nothing new.
    assert_eq!(
        new_rows(daily(&pool, &settings, on(42), now).await.unwrap()),
        2
    );
    assert_eq!(
        new_rows(daily(&pool, &settings, on(42), now).await.unwrap()),
        0
    );
    // The next day brings the next day's digest, and no reminder again.
    assert_eq!(
        new_rows(daily(&pool, &settings, on(41), now).await.unwrap()),
        1
    );
    // The 2-week day: its own reminder (and that day's digest).
    assert_eq!(
        new_rows(daily(&pool, &settings, on(14), now).await.unwrap()),
        2
    );
    let due: Vec<String> = sqlx::query_scalar(
        "SELECT dedup_key FROM outbox WHERE kind = 'final_reflection_due' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(due.len(), 2);
    assert!(due[0].contains(":6:") && due[1].contains(":2:"), "{due:?}");

    // The digest counts, and says nothing about who.
    let sink = SmtpSink::start().await;
    let c = config(&sink, std::time::Duration::from_secs(60));
    let sender = Sender {
        pool: pool.clone(),
        commands: CommandHandler::new(store.clone()),
        mailer: c.mailer.unwrap(),
        addressing: c.addressing,
        config: c.sender,
    };
    sender.send_due().await.unwrap();
    let digests: Vec<_> = sink
        .received()
        .into_iter()
        .filter(|m| m.to == ["anna@uni.example"])
        .collect();
    assert_eq!(digests.len(), 4, "one digest per day it ran");
    let body = digests[0].body();
    assert!(body.contains("1 väntar på granskning"), "{body}");
    assert!(
        !body.contains("Tolvan") && !body.contains("tolvan@"),
        "{body}"
    );

    // A coordinator who turns digests off gets none.
    let off = reqwest::Client::new()
        .put(format!("{}/me/notifications", server.base))
        .bearer_auth(&coordinator.token)
        .json(&json!({"digests": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 200);
    let before = outbox(&pool).await.len();
    daily(&pool, &settings, on(13), now).await.unwrap();
    let after: Vec<(String, String)> = outbox(&pool).await.split_off(before);
    assert!(
        after.iter().all(|(k, _)| k != "coordinator_digest"),
        "{after:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_stuck_part_is_announced_to_the_operators_once_a_day() {
    let db = support::fresh().await;
    let pool = db.pool.clone();
    // The outbox gave up on a message: a concern of the outbox part.
    sqlx::query(
        "INSERT INTO outbox (dedup_key, kind, recipient_kind, recipient, state, message_id, created_at)
         VALUES ('x', 'batch_ready', 'registrar', '', 'failed', 'm', now() - interval '1 hour')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let thresholds = Thresholds::default();
    // Midday in Stockholm, so that five minutes later is the same day there.
    let now = Utc::now()
        .date_naive()
        .and_hms_opt(11, 0, 0)
        .unwrap()
        .and_utc();
    assert_eq!(
        new_rows(watch::run(&pool, &thresholds, now).await.unwrap()),
        1
    );
    let later = now + Days::minutes(5);
    assert_eq!(
        new_rows(watch::run(&pool, &thresholds, later).await.unwrap()),
        0
    );
    let announced: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT kind, recipient_kind, params->>'part' FROM outbox WHERE kind = 'service_stuck'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        announced,
        [("service_stuck".into(), "operations".into(), "outbox".into())]
    );
    // The next day, while it lasts, once more.
    let tomorrow = now + Days::days(1);
    assert_eq!(
        new_rows(watch::run(&pool, &thresholds, tomorrow).await.unwrap()),
        1
    );
    db.drop().await;
}
