//! The notification settings of `cim serve` (`docs/notifications.md`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::export::worker::schedule::Schedule;
use crate::notify::schedule::DEFAULT_DAILY;
use crate::notify::{Addressing, Language, Mailer, NotifyConfig, ReminderSettings, SenderConfig};

#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// Decide and send notifications in this process (true/false).
    #[arg(long, env = "CIM_NOTIFICATIONS", default_value_t = true, action = clap::ArgAction::Set)]
    pub notifications: bool,
    /// The SMTP server: `smtp://host:587?tls=required` (STARTTLS), `smtps://user:password@host:465`
    /// (TLS from the start), `smtp://127.0.0.1:25` (a local relay, no TLS). Unset: `CIM_MAIL_DIR`,
    /// else `CIM_MAIL_LOG`, else messages wait in the outbox.
    #[arg(long, env = "CIM_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Development: write each message as an `.eml` file into this folder instead of sending it.
    #[arg(long, env = "CIM_MAIL_DIR")]
    pub mail_dir: Option<PathBuf>,
    /// Development: with neither of the above, record messages as sent after logging their kind
    /// and id. Without any of the three, messages are kept pending in the outbox.
    #[arg(long, env = "CIM_MAIL_LOG", default_value_t = false, action = clap::ArgAction::Set)]
    pub mail_log: bool,
    /// The sender of every message.
    #[arg(
        long,
        env = "CIM_MAIL_FROM",
        default_value = "CIM <no-reply@cim.invalid>"
    )]
    pub mail_from: String,
    /// The registrar's office's mailbox (new batches, Ladok refusals, held certificates).
    #[arg(long, env = "CIM_NOTIFY_REGISTRAR")]
    pub notify_registrar: Option<String>,
    /// The operators' mailbox (a stuck export worker, projection or outbox).
    #[arg(long, env = "CIM_NOTIFY_OPERATIONS")]
    pub notify_operations: Option<String>,
    /// The language of messages to people who chose none, and to the mailboxes: sv or en.
    #[arg(long, env = "CIM_NOTIFY_LANGUAGE", default_value = "sv")]
    pub notify_language: String,
    /// The web console's address, for a link in each message.
    #[arg(long, env = "CIM_CONSOLE_URL")]
    pub console_url: Option<String>,
    /// JSON file of reminder settings per program (`docs/notifications.md`); unset: the defaults.
    #[arg(long, env = "CIM_REMINDERS_FILE")]
    pub reminders_file: Option<PathBuf>,
    /// When the daily reminders and digests are decided (cron with seconds, in
    /// `CIM_EXPORT_TIMEZONE`).
    #[arg(long, env = "CIM_NOTIFY_SCHEDULE", default_value = DEFAULT_DAILY)]
    pub notify_schedule: String,
}

impl NotifyArgs {
    /// The configuration, checked: a bad address, language, file or cron expression stops the
    /// start.
    pub fn config(&self, timezone: chrono_tz::Tz) -> anyhow::Result<NotifyConfig> {
        let mailer = Mailer::from_config(
            self.smtp_url.as_deref(),
            self.mail_dir.clone(),
            self.mail_log,
            &self.mail_from,
        )
        .map_err(anyhow::Error::msg)?;
        let default_language = Language::parse(&self.notify_language)
            .context("CIM_NOTIFY_LANGUAGE must be sv or en")?;
        let reminders = match &self.reminders_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                serde_json::from_str::<ReminderSettings>(&text)
                    .with_context(|| format!("{} is not valid reminder settings", path.display()))?
            }
            None => ReminderSettings::default(),
        };
        let daily = Schedule {
            cron: self.notify_schedule.clone(),
            timezone,
        };
        daily
            .validate()
            .context("CIM_NOTIFY_SCHEDULE is not a valid cron expression")?;
        Ok(NotifyConfig {
            mailer: mailer.map(Arc::new),
            addressing: Addressing {
                registrar: self.notify_registrar.clone(),
                operations: self.notify_operations.clone(),
                default_language,
                console_url: self.console_url.clone(),
            },
            sender: SenderConfig::default(),
            reminders,
            daily,
            watch: crate::ops::Thresholds::default(),
            poll: Duration::from_secs(1),
            schedules: true,
        })
    }
}
