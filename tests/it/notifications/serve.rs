//! `cim serve` as configured by its environment: with `CIM_SMTP_URL` and the mailboxes set, a
//! coordinator's return reaches the student's mailbox, in the default language, from the
//! configured sender.

use super::reflected;
use serde_json::json;
use uuid::Uuid;

use crate::support;
use crate::support::flow::{Api, Caller};
use crate::support::process::{ServeProcess, wait_ready};
use crate::support::smtp::SmtpSink;
use cim::log;
use cim::store::EventStore;

#[tokio::test]
async fn cim_serve_sends_what_its_environment_configures() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), log::upcasters());
    let programs = support::staffed_programs(&store, &["coord-anna"]).await;
    let sink = SmtpSink::start().await;
    let serve = ServeProcess::builder()
        .database(&db.url)
        .env("CIM_JWT_DEV_SECRET", support::auth::SECRET)
        .env("CIM_EXPORT_SCHEDULER", "false")
        .env("CIM_SMTP_URL", sink.url())
        .env("CIM_MAIL_FROM", "CIM <cim@uni.example>")
        .env("CIM_NOTIFY_LANGUAGE", "sv")
        .start();
    wait_ready(&serve.base).await;
    let api = Api::new(vec![serve.base.clone()]);
    let uid = Uuid::now_v7().to_string();
    let (mut p, id) = reflected(&api, programs[0], &uid, 5).await;
    let feedback = json!({"feedback": "Please describe one conversation in more detail."});
    p.step(
        &format!("/activities/{id}/reflection/return"),
        &Caller::coordinator("coord-anna"),
        feedback,
    )
    .await
    .unwrap();

    support::eventually("the student's message arrives", async || {
        !sink.received().is_empty()
    })
    .await;
    let received = sink.received();
    assert_eq!(received.len(), 1);
    let m = &received[0];
    assert_eq!(m.to, ["tolvan@student.example.se"]);
    assert_eq!(m.from, "cim@uni.example");
    assert_eq!(m.header("Content-Language").as_deref(), Some("sv"));
    assert!(m.body().contains("skickat tillbaka"), "{}", m.body());
    // The feedback itself stays in the portfolio.
    assert!(!m.body().contains("conversation"), "{}", m.body());
    assert!(m.header("Message-ID").unwrap().ends_with("@uni.example>"));
    serve.terminate();
    db.drop().await;
}
