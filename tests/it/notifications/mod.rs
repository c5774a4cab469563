//! Notifications (`src/notify/`, `docs/notifications.md`) against a real SMTP server the tests
//! start (`support::smtp`): a student's whole path produces exactly the expected messages to the
//! expected people in their language; a crash between sending and recording sends a second copy
//! with the same Message-ID and nothing more; a restart resumes; two instances send each message
//! once; failures are retried and then kept; reminders and digests fire on their day, once.

mod delivery;
mod path;
mod schedule;
mod serve;

use std::sync::Arc;
use std::time::Duration;

use cim::app::CommandHandler;
use cim::export::worker::schedule::Schedule;
use cim::log;
use cim::notify::{
    Addressing, Language, Mailer, Notifier, NotifyConfig, ReminderSettings, SenderConfig,
};
use cim::store::EventStore;
use sqlx::PgPool;

use crate::support::flow::{Api, Caller, Session, activity, open};
use crate::support::smtp::{Received, SmtpSink};
use crate::support::texts;
use cim::domain::ProgramId;
use serde_json::json;

pub const REGISTRAR: &str = "registrar@uni.example";
pub const OPERATIONS: &str = "ops@uni.example";

/// A notifier's configuration that sends to `sink`, quickly: short polls, a lease of `lease`, and
/// retries after 200 ms; no schedules (the tests run the jobs themselves, with their own dates).
pub fn config(sink: &SmtpSink, lease: Duration) -> NotifyConfig {
    NotifyConfig {
        mailer: Mailer::from_config(Some(&sink.url()), None, false, "CIM <no-reply@uni.example>")
            .unwrap()
            .map(Arc::new),
        addressing: Addressing {
            registrar: Some(REGISTRAR.into()),
            operations: Some(OPERATIONS.into()),
            default_language: Language::Swedish,
            console_url: Some("https://cim.uni.example".into()),
        },
        sender: SenderConfig {
            lease,
            max_attempts: 3,
            first_retry: Duration::from_millis(200),
            poll: Duration::from_millis(100),
        },
        reminders: ReminderSettings::default(),
        daily: Schedule::default(),
        watch: cim::ops::Thresholds::default(),
        poll: Duration::from_millis(100),
        schedules: false,
    }
}

pub async fn start(pool: &PgPool, url: &str, sink: &SmtpSink) -> Notifier {
    let commands = CommandHandler::new(EventStore::new(pool.clone(), log::upcasters()));
    Notifier::start(commands, url, config(sink, Duration::from_secs(60)))
        .await
        .unwrap()
}

/// The outbox's rows as `(kind, state)`, oldest first.
pub async fn outbox(pool: &PgPool) -> Vec<(String, String)> {
    sqlx::query_as("SELECT kind, state FROM outbox ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// A new portfolio in `program` for the student `uid` (the `n`-th of the test) with one activity
/// and its written reflection submitted; returns the portfolio's session and the activity's id.
pub async fn reflected<'a>(
    api: &'a Api,
    program: ProgramId,
    uid: &str,
    n: u32,
) -> (Session<'a>, String) {
    let student = Caller::student(uid);
    let mut p = open(api, 0, program, uid, n).await.unwrap();
    let logged = p
        .step("/activities", &student, activity("tedx", 3))
        .await
        .unwrap();
    let id = logged.body["view"]["activities"][0]["activity_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let text = json!({"format": "written", "text": texts::english(1000)});
    p.step(&format!("/activities/{id}/reflection"), &student, text)
        .await
        .unwrap();
    (p, id)
}

/// Waits until nothing in the outbox is pending and the consumer has read the whole log.
pub async fn drained(pool: &PgPool) {
    crate::support::eventually("the outbox is drained", async || {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE state = 'pending'")
                .fetch_one(pool)
                .await
                .unwrap();
        let behind: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM events e, outbox_checkpoint c
                            WHERE (e.transaction_id, e.position) >
                                  (c.transaction_id::text::xid8, c.position)
                              AND c.name = 'outbox')
                    OR NOT EXISTS (SELECT 1 FROM outbox_checkpoint)",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        pending == 0 && !behind
    })
    .await;
}

/// The kind of a received message, read back from its Message-ID in the outbox.
pub async fn kind_of(pool: &PgPool, message: &Received) -> String {
    let id = message.header("Message-ID").expect("a Message-ID");
    let uuid = id
        .trim_matches(|c| c == '<' || c == '>')
        .split('@')
        .next()
        .unwrap()
        .to_owned();
    sqlx::query_scalar("SELECT kind FROM outbox WHERE message_id = $1")
        .bind(uuid)
        .fetch_one(pool)
        .await
        .unwrap()
}
