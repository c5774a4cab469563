//! Notifications: who is told what, when, exactly once (`docs/notifications.md`).
//!
//! Messages are decided in two places and stored in one outbox (`outbox.rs`), keyed so that the
//! same message is never stored twice:
//! - [`consumer`] reads the log (checkpointed like a projection, one instance at a time) and asks
//!   [`decide`] which messages each event causes: the student's returned or approved work, their
//!   application's rejection, the certificate approved, recorded in Ladok or revoked, an
//!   extension; the registrar's new batch, Ladok's refusals and held certificates;
//! - [`schedule`] decides, once a day, the students' [`reminders`] and the coordinators'
//!   [`digest`], and every few minutes the operators' [`watch`].
//!
//! [`sender`] sends what the outbox holds through the [`mailer`] (SMTP, a folder, or the log),
//! rendering [`templates`] in the recipient's language; addresses are looked up only then, so the
//! outbox holds nothing personal and an erasure cancels what waits for the erased student.

pub mod consumer;
pub mod decide;
pub mod digest;
pub mod kind;
pub mod mailer;
pub mod outbox;
pub mod preferences;
pub mod reminders;
pub mod schedule;
pub mod sender;
pub mod templates;
pub mod watch;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch as signal;
use tokio::task::JoinHandle;

use crate::app::CommandHandler;
use crate::export::worker::schedule::Schedule;
pub use kind::{Decision, MessageKind, Recipient};
pub use mailer::Mailer;
pub use reminders::ReminderSettings;
pub use sender::{Addressing, SenderConfig};
pub use templates::Language;

/// Everything the notifications of a `cim serve` process need.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// Where messages go; `None`: nowhere configured, so messages are decided and kept pending
    /// (the outbox backlog shows them) until a mailer is configured.
    pub mailer: Option<Arc<Mailer>>,
    pub addressing: Addressing,
    pub sender: SenderConfig,
    pub reminders: ReminderSettings,
    pub daily: Schedule,
    /// When a part counts as stuck for the operators' watch (the thresholds `/readyz` uses).
    pub watch: crate::ops::Thresholds,
    /// How often the log consumer looks for new events.
    pub poll: Duration,
    /// Whether this process runs the daily and watch schedules (tests drive the jobs directly).
    pub schedules: bool,
}

/// The running notifications; [`Notifier::shutdown`] stops them.
#[derive(Debug)]
pub struct Notifier {
    stop: signal::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    scheduler: Option<schedule::NotifyScheduler>,
}

impl Notifier {
    /// Starts the log consumer, the sender and (when configured) the schedules.
    pub async fn start(
        commands: CommandHandler,
        database_url: &str,
        config: NotifyConfig,
    ) -> anyhow::Result<Self> {
        let store = commands.store().clone();
        let pool = store.pool().clone();
        let (stop, stopped) = signal::channel(false);
        let consumer = tokio::spawn(consumer::run(
            store,
            database_url.to_owned(),
            config.poll,
            stopped.clone(),
        ));
        let mut tasks = vec![consumer];
        match &config.mailer {
            Some(mailer) => {
                let sender = sender::Sender {
                    pool: pool.clone(),
                    commands,
                    mailer: mailer.clone(),
                    addressing: config.addressing.clone(),
                    config: config.sender.clone(),
                };
                tasks.push(tokio::spawn(sender.run(stopped)));
            }
            None => tracing::warn!(
                "no mailer configured (CIM_SMTP_URL, CIM_MAIL_DIR or CIM_MAIL_LOG): messages are decided and kept in the outbox, none is sent"
            ),
        }
        let scheduler = if config.schedules {
            Some(
                schedule::NotifyScheduler::start(
                    pool,
                    config.reminders.clone(),
                    &config.daily,
                    config.watch.clone(),
                )
                .await?,
            )
        } else {
            None
        };
        Ok(Self {
            stop,
            tasks,
            scheduler,
        })
    }

    /// Stops deciding and sending; a message being sent finishes first.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Some(scheduler) = self.scheduler {
            scheduler.shutdown().await;
        }
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
