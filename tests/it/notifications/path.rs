//! A student's whole path, over HTTP, with a returned reflection, to a certificate recorded in
//! Ladok: exactly the expected messages reach the expected people, each once, in their language,
//! and nothing of the student reaches anyone else. A notifier stopped in the middle and started
//! again resumes where it stood.

use super::reflected;
use serde_json::json;
use std::collections::BTreeMap;
use uuid::Uuid;

use super::{REGISTRAR, config, drained, kind_of, outbox, start};
use crate::support::auth::staff_token_with_email;
use crate::support::flow::{Api, Caller, activity, open};
use crate::support::server::{COORDINATORS, TestServer};
use crate::support::smtp::SmtpSink;
use crate::support::texts;
use cim::export::worker::WorkerConfig;
use cim::export::worker::schedule::run_export;
use cim::http::auth::Role;
use cim::log;
use cim::notify::sender::Sender;
use cim::notify::{Decision, MessageKind, Recipient};
use cim::store::EventStore;
use cim_fake_ladok::FakeLadok;

const STUDENT_EMAIL: &str = "tolvan@student.example.se";

async fn put_preferences(base: &str, token: &str, body: serde_json::Value) -> reqwest::Response {
    reqwest::Client::new()
        .put(format!("{base}/me/notifications"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_students_path_sends_exactly_the_expected_messages_in_each_persons_language() {
    let server = TestServer::start().await;
    let pool = server.db.pool.clone();
    let sink = SmtpSink::start().await;
    let notifier = start(&pool, &server.db.url, &sink).await;
    let api = Api::new(vec![server.base.clone()]);
    let uid = Uuid::now_v7().to_string();
    let student = Caller::student(&uid);
    // The coordinator's address comes from their token; the student chooses English.
    let coordinator = Caller {
        subject: COORDINATORS[0].to_owned(),
        token: staff_token_with_email(Role::Coordinator, COORDINATORS[0], "anna@uni.example"),
    };
    let answer = put_preferences(&server.base, &student.token, json!({"language": "en"})).await;
    assert_eq!(answer.status(), 200);

    let mut p = open(&api, 0, server.programs[0], &uid, 7).await.unwrap();
    p.step("/expected-completion/confirm", &coordinator, json!({}))
        .await
        .unwrap();
    let mut activities = Vec::new();
    for item in ["language-cafe", "tedx", "course-in-global-health"] {
        let a = p
            .step("/activities", &student, activity(item, 20))
            .await
            .unwrap();
        let logged = a.body["view"]["activities"].as_array().unwrap();
        activities.push(
            logged.last().unwrap()["activity_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    for a in &activities {
        let text = json!({"format": "written", "text": texts::english(1000)});
        p.step(&format!("/activities/{a}/reflection"), &student, text)
            .await
            .unwrap();
    }
    // The first is returned with feedback and submitted again.
    let first = &activities[0];
    p.step(
        &format!("/activities/{first}/reflection/return"),
        &coordinator,
        json!({"feedback": "Say more about what you learned from the other participants."}),
    )
    .await
    .unwrap();
    let again = json!({"format": "written", "text": texts::english(1020)});
    p.step(
        &format!("/activities/{first}/reflection/resubmit"),
        &student,
        again,
    )
    .await
    .unwrap();
    for a in &activities {
        p.step(
            &format!("/activities/{a}/reflection/approve"),
            &coordinator,
            json!({}),
        )
        .await
        .unwrap();
    }
    let final_text = json!({"format": "written", "text": texts::english(3000)});
    p.step("/final-reflection", &student, final_text)
        .await
        .unwrap();
    p.step("/final-reflection/approve", &coordinator, json!({}))
        .await
        .unwrap();
    p.step("/application", &student, json!({})).await.unwrap();
    p.step("/application/approve", &coordinator, json!({}))
        .await
        .unwrap();

    // Halfway: the notifier stops, and a new one resumes after the export run.
    drained(&pool).await;
    let before_restart = sink.received().len();
    notifier.shutdown().await;

    let fake = FakeLadok::start().await.unwrap();
    fake.add_student(&uid, &crate::support::flow::identity_number(7));
    let out = tempfile::tempdir().unwrap();
    let mut worker = WorkerConfig::new(out.path());
    worker.ladok = Some(fake.config());
    let store = EventStore::new(pool.clone(), log::upcasters());
    crate::support::settle(&store).await;
    run_export(&store, &worker).await.unwrap();
    assert_eq!(
        sink.received().len(),
        before_restart,
        "nothing sent while stopped"
    );
    let notifier = start(&pool, &server.db.url, &sink).await;
    drained(&pool).await;

    let received = sink.received();
    let mut by_recipient: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in &received {
        assert_eq!(m.to.len(), 1);
        by_recipient
            .entry(m.to[0].clone())
            .or_default()
            .push(kind_of(&pool, m).await);
        // Nothing personal goes to anyone but the student.
        if m.to[0] != STUDENT_EMAIL {
            for personal in [
                "Tolvan",
                STUDENT_EMAIL,
                &crate::support::flow::identity_number(7),
            ] {
                assert!(
                    !m.data.contains(personal),
                    "{personal} in a message to {}",
                    m.to[0]
                );
            }
        }
    }
    let mut student_kinds = by_recipient.remove(STUDENT_EMAIL).unwrap();
    student_kinds.sort();
    assert_eq!(
        student_kinds,
        [
            "certificate_approved",
            "certificate_recorded",
            "final_reflection_approved",
            "reflection_approved",
            "reflection_approved",
            "reflection_approved",
            "reflection_returned",
        ]
    );
    assert_eq!(by_recipient.remove(REGISTRAR).unwrap(), ["batch_ready"]);
    assert!(
        by_recipient.is_empty(),
        "unexpected recipients: {by_recipient:?}"
    );

    // The student's messages are in English (their choice), the registrar's in Swedish (the
    // default), each with a link into the console and its own Message-ID.
    for m in &received {
        let language = m.header("Content-Language").unwrap();
        if m.to[0] == STUDENT_EMAIL {
            assert_eq!(language, "en");
            assert!(
                m.body().contains("https://cim.uni.example/portfolios/"),
                "{}",
                m.data
            );
        } else {
            assert_eq!(language, "sv");
        }
    }
    let returned = received
        .iter()
        .find(|m| m.header("Subject").unwrap().contains("returned"))
        .unwrap();
    assert!(returned.body().contains("attempt 1"), "{}", returned.data);
    let mut ids: Vec<_> = received.iter().map(|m| m.header("Message-ID")).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), received.len());
    // Every decided message was sent, once.
    assert!(outbox(&pool).await.iter().all(|(_, state)| state == "sent"));
    assert_eq!(outbox(&pool).await.len(), received.len());

    notifier.shutdown().await;
    server.stop().await;
}

#[tokio::test]
async fn settings_are_checked_and_an_erased_student_is_not_written_to() {
    let server = TestServer::start().await;
    let pool = server.db.pool.clone();
    let api = Api::new(vec![server.base.clone()]);
    let uid = Uuid::now_v7().to_string();
    let student = Caller::student(&uid);

    let bad = put_preferences(&server.base, &student.token, json!({"language": "de"})).await;
    assert_eq!(bad.status(), 422);
    let problem: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(problem["code"], "language_unknown", "{problem}");
    let own = json!({"language": "en", "email": "elsewhere@example.org"});
    let refused = put_preferences(&server.base, &student.token, own).await;
    assert_eq!(refused.status(), 422);
    assert_eq!(
        put_preferences(&server.base, &student.token, json!({"language": "en"}))
            .await
            .status(),
        200
    );

    // A message waits for the student (no notifier runs), then they are erased.
    let coordinator = Caller::coordinator(COORDINATORS[0]);
    let (mut p, id) = reflected(&api, server.programs[0], &uid, 3).await;
    p.step(
        &format!("/activities/{id}/reflection/approve"),
        &coordinator,
        json!({}),
    )
    .await
    .unwrap();
    let store = EventStore::new(pool.clone(), log::upcasters());
    crate::support::settle(&store).await;
    // No notifier ran: decide from the start of the log, as a consumer that had been running all
    // along would have.
    sqlx::query(
        "INSERT INTO outbox_checkpoint (name, transaction_id, position) VALUES ('outbox', 0, 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    cim::notify::consumer::step(&store, cim::store::Checkpoint::START, 1000)
        .await
        .unwrap();
    assert_eq!(
        outbox(&pool).await,
        [("reflection_approved".into(), "pending".into())]
    );

    let admin = Caller::admin("admin-1");
    let erased = reqwest::Client::new()
        .post(format!("{}/students/{uid}/erasure", server.base))
        .bearer_auth(&admin.token)
        .json(&json!({"reason": "case 2026-118"}))
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), 200);
    assert_eq!(
        outbox(&pool).await,
        [("reflection_approved".into(), "cancelled".into())]
    );
    let kept: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notification_preferences WHERE subject = $1")
            .bind(&uid)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(kept, 0, "the student's settings go with the erasure");

    // A message decided after the erasure finds no address: cancelled, never sent.
    let portfolio = cim::domain::PortfolioId::new(Uuid::parse_str(&p.portfolio).unwrap());
    let later = Decision::scheduled(
        "after-erasure",
        MessageKind::Inactive,
        Recipient::Student(portfolio),
        json!({"portfolio_id": p.portfolio, "days": 30, "deadline": "2027-05-03"}),
    );
    let mut conn = pool.acquire().await.unwrap();
    cim::notify::outbox::insert(&mut conn, &[later], None)
        .await
        .unwrap();
    drop(conn);
    let sink = SmtpSink::start().await;
    let c = config(&sink, std::time::Duration::from_secs(60));
    let sender = Sender {
        pool: pool.clone(),
        commands: cim::app::CommandHandler::new(store.clone()),
        mailer: c.mailer.unwrap(),
        addressing: c.addressing,
        config: c.sender,
    };
    sender.send_due().await.unwrap();
    assert!(sink.received().is_empty());
    let last: (String, Option<String>) =
        sqlx::query_as("SELECT state, last_error FROM outbox ORDER BY id DESC LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(last, ("cancelled".into(), Some("recipient_erased".into())));
    server.stop().await;
}
