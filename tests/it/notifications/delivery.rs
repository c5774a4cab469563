//! Sending: what a crash between the SMTP server's acceptance and our record costs (one more copy,
//! with the same Message-ID, and nothing beyond), what a crash before costs (nothing), retries with
//! backoff, a permanent refusal kept as failed and sent again on an administrator's request, and
//! two instances sending each message once.

use std::time::Duration;

use serde_json::json;

use super::{REGISTRAR, config, outbox};
use crate::support;
use crate::support::auth::token;
use crate::support::smtp::SmtpSink;
use cim::app::CommandHandler;
use cim::http::auth::Role;
use cim::log;
use cim::notify::outbox::{claim_due, insert};
use cim::notify::sender::Sender;
use cim::notify::{Decision, MessageKind, Notifier, Recipient};
use cim::store::EventStore;
use sqlx::PgPool;

fn sender(pool: &PgPool, sink: &SmtpSink, lease: Duration) -> Sender {
    let c = config(sink, lease);
    Sender {
        pool: pool.clone(),
        commands: CommandHandler::new(EventStore::new(pool.clone(), log::upcasters())),
        mailer: c.mailer.unwrap(),
        addressing: c.addressing,
        config: c.sender,
    }
}

/// `n` messages for the registrar, as the consumer would store them.
async fn decide(pool: &PgPool, n: usize) {
    let decisions: Vec<Decision> = (0..n)
        .map(|i| {
            Decision::scheduled(
                &format!("test:{i}"),
                MessageKind::BatchReady,
                Recipient::Registrar,
                json!({ "batch_id": format!("batch-{i}"), "files": 4 }),
            )
        })
        .collect();
    let mut conn = pool.acquire().await.unwrap();
    insert(&mut conn, &decisions, None).await.unwrap();
    // Deciding again stores nothing.
    assert_eq!(insert(&mut conn, &decisions, None).await.unwrap(), 0);
}

#[tokio::test]
async fn a_crash_after_the_server_accepted_sends_one_more_copy_with_the_same_message_id() {
    let db = support::fresh().await;
    let sink = SmtpSink::start().await;
    decide(&db.pool, 2).await;
    let lease = Duration::from_millis(500);
    let s = sender(&db.pool, &sink, lease);

    // Message 1: sent, then the process "dies" before recording it.
    // Message 2: claimed, then the process dies before sending it.
    let claimed = claim_due(&db.pool, 2, lease.as_secs_f64()).await.unwrap();
    assert_eq!(claimed.len(), 2);
    s.attempt(&claimed[0]).await.unwrap();
    assert_eq!(sink.received().len(), 1);
    drop(claimed);
    // While the lease holds, no other sender takes them.
    assert!(claim_due(&db.pool, 2, 1.0).await.unwrap().is_empty());

    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    s.send_due().await.unwrap();
    let received = sink.received();
    assert_eq!(received.len(), 3, "message 1 twice, message 2 once");
    let ids: Vec<_> = received
        .iter()
        .map(|m| m.header("Message-ID").unwrap())
        .collect();
    assert_eq!(
        ids[0], ids[1],
        "the copy carries the first attempt's Message-ID"
    );
    assert_ne!(ids[1], ids[2]);
    assert!(
        outbox(&db.pool)
            .await
            .iter()
            .all(|(_, state)| state == "sent")
    );
    // And nothing more, ever.
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    s.send_due().await.unwrap();
    assert_eq!(sink.received().len(), 3);
    db.drop().await;
}

#[tokio::test]
async fn failures_are_retried_with_backoff_then_kept_and_sent_again_on_request() {
    let server = support::server::TestServer::start().await;
    let pool = server.db.pool.clone();
    let sink = SmtpSink::start().await;
    decide(&pool, 2).await;
    let mut s = sender(&pool, &sink, Duration::from_secs(60));
    // Long enough that no retry falls due within the first pass, on a slow machine too.
    s.config.first_retry = Duration::from_secs(1);

    // Three temporary refusals: both messages' first attempts and the first message's second.
    sink.refuse_next(3, "451 4.3.0 try again later");
    s.send_due().await.unwrap();
    let row: (String, i32, Option<String>) =
        sqlx::query_as("SELECT state, attempts, last_error FROM outbox ORDER BY id LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(row, ("pending".into(), 1, Some("smtp_451".into())));
    support::eventually("the retried message is sent", async || {
        s.send_due().await.unwrap();
        outbox(&pool).await.iter().all(|(_, state)| state == "sent")
    })
    .await;
    let attempts: Vec<i32> = sqlx::query_scalar("SELECT attempts FROM outbox ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(attempts, [3, 2]);

    // A permanent refusal is not retried: it is kept as failed, for an administrator to see.
    sqlx::query("UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = now() WHERE id = (SELECT min(id) FROM outbox)")
        .execute(&pool)
        .await
        .unwrap();
    sink.refuse_next(1, "550 5.1.1 mailbox unavailable");
    s.send_due().await.unwrap();
    let http = reqwest::Client::new();
    let admin = token(Role::Admin, "admin-1");
    let failed: serde_json::Value = http
        .get(format!("{}/notifications/outbox?state=failed", server.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let failed = failed.as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["last_error"], "smtp_550");
    assert_eq!(failed[0]["recipient_kind"], "registrar");
    assert!(
        !failed[0].to_string().contains(REGISTRAR),
        "no address in the listing"
    );
    // Not for anyone else, and a bad state is a clear 400.
    let coordinator = token(Role::Coordinator, "coord-anna");
    let refused = http
        .get(format!("{}/notifications/outbox", server.base))
        .bearer_auth(&coordinator)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let bad = http
        .get(format!("{}/notifications/outbox?state=lost", server.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let id = failed[0]["id"].as_i64().unwrap();
    let retried = http
        .post(format!("{}/notifications/outbox/{id}/retry", server.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), 202);
    s.send_due().await.unwrap();
    assert!(outbox(&pool).await.iter().all(|(_, state)| state == "sent"));
    let again = http
        .post(format!("{}/notifications/outbox/{id}/retry", server.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    server.stop().await;
}

#[tokio::test]
async fn two_instances_send_each_message_once_also_when_the_server_is_slow() {
    let db = support::fresh().await;
    let sink = SmtpSink::start().await;
    // Each message takes 100 ms and a claim of 20 takes two seconds, four times the lease: the
    // messages at the end of one sender's claim are claimed by the other before their turn comes.
    sink.slow(Duration::from_millis(100));
    let started = |pool: PgPool| {
        let sink = sink.clone();
        let url = db.url.clone();
        async move {
            let commands = CommandHandler::new(EventStore::new(pool, log::upcasters()));
            let mut c = config(&sink, Duration::from_millis(500));
            c.sender.poll = Duration::from_millis(10);
            Notifier::start(commands, &url, c).await.unwrap()
        }
    };
    let one = started(db.pool.clone()).await;
    let two = started(db.pool.clone()).await;
    decide(&db.pool, 40).await;
    support::eventually("every message is sent", async || {
        outbox(&db.pool)
            .await
            .iter()
            .all(|(_, state)| state == "sent")
    })
    .await;
    one.shutdown().await;
    two.shutdown().await;
    let received = sink.received();
    let mut ids: Vec<_> = received.iter().map(|m| m.header("Message-ID")).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40);
    assert_eq!(received.len(), 40, "no message was sent twice");
    db.drop().await;
}
