//! Sends what the outbox holds: claims due messages under a lease, finds each recipient's address
//! and language, renders the template and hands it to the mailer, then records the outcome.
//!
//! **The guarantee.** A message is recorded as sent only after the SMTP server accepted it. If the
//! process dies between that acceptance and the record, the lease runs out and the message is sent
//! again, with the same Message-ID: at least once, and a second copy only for a crash inside that
//! window (SMTP has no way to ask a server whether it already took a message; the stable
//! Message-ID lets a receiving system drop the copy). A crash before the server accepted sends it
//! once. Failures are retried with doubling delays and then kept as `failed`, never dropped.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;

use super::kind::{MessageKind, Recipient};
use super::mailer::{Mailer, Outgoing};
use super::outbox::{self, Claimed, Outcome};
use super::templates::{Language, render};
use crate::app::CommandHandler;

/// How the sender paces itself. The lease must be longer than one message takes to send (the SMTP
/// client gives up after 30 seconds).
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// How long a claimed message is left alone by other senders.
    pub lease: Duration,
    /// Attempts before a message is given up as `failed`.
    pub max_attempts: i32,
    /// The delay after the first failure; doubled after each further one, at most six hours.
    pub first_retry: Duration,
    /// How often the outbox is looked at when it was empty.
    pub poll: Duration,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(120),
            max_attempts: 8,
            first_retry: Duration::from_secs(60),
            poll: Duration::from_secs(2),
        }
    }
}

/// Where the messages that are not a person's go, and what every message shares.
#[derive(Debug, Clone)]
pub struct Addressing {
    /// The registrar's office's functional mailbox.
    pub registrar: Option<String>,
    /// The operators' mailbox.
    pub operations: Option<String>,
    /// For people who chose none, and for the functional mailboxes.
    pub default_language: Language,
    /// The web console's base URL, for a link in each message; none: no link.
    pub console_url: Option<String>,
}

#[derive(Debug)]
pub struct Sender {
    pub pool: PgPool,
    pub commands: CommandHandler,
    pub mailer: Arc<Mailer>,
    pub addressing: Addressing,
    pub config: SenderConfig,
}

/// Who to write to, in which language; or why nobody.
enum Resolved {
    To(String, Language),
    Nobody(&'static str),
    /// Cannot tell now (the log could not be read): try again later.
    Later(&'static str),
}

impl Sender {
    /// Sends every message due now, in claims of 20; returns how many were attempted.
    pub async fn send_due(&self) -> Result<usize, sqlx::Error> {
        let mut attempted = 0;
        loop {
            let claimed =
                outbox::claim_due(&self.pool, 20, self.config.lease.as_secs_f64()).await?;
            if claimed.is_empty() {
                return Ok(attempted);
            }
            let lease = self.config.lease.as_secs_f64();
            for message in &claimed {
                // The batch is sent one message after another: a slow server can make a message
                // wait past its lease, and another sender may have claimed it by then.
                if !outbox::confirm(&self.pool, message, lease).await? {
                    continue;
                }
                attempted += 1;
                let outcome = self.attempt(message).await?;
                outbox::record(&self.pool, message, &outcome).await?;
            }
        }
    }

    /// One attempt at one claimed message.
    pub async fn attempt(&self, message: &Claimed) -> Result<Outcome, sqlx::Error> {
        let Some(kind) = MessageKind::parse(&message.kind) else {
            return Ok(Outcome::Failed {
                error: "unknown_kind".into(),
            });
        };
        let recipient = Recipient::from_columns(&message.recipient_kind, &message.recipient);
        let (to, language) = match self.resolve(recipient.as_ref()).await? {
            Resolved::To(to, language) => (to, language),
            Resolved::Nobody(reason) => {
                return Ok(Outcome::Cancelled {
                    reason: reason.into(),
                });
            }
            Resolved::Later(reason) => {
                return Ok(self.failed_attempt(message, reason.into(), false));
            }
        };
        let link = self.link(recipient.as_ref());
        let (subject, body) = render(kind, language, &message.params, link.as_deref());
        let outgoing = Outgoing {
            kind: kind.as_str(),
            to,
            subject,
            body,
            message_id: format!("{}@{}", message.message_id, self.mailer.domain()),
            language: language.code(),
        };
        Ok(match self.mailer.send(&outgoing).await {
            Ok(()) => Outcome::Sent,
            Err(e) => self.failed_attempt(message, e.code, e.permanent),
        })
    }

    /// Retry later, or give up: after a permanent refusal, or when this was the last attempt.
    fn failed_attempt(&self, message: &Claimed, error: String, permanent: bool) -> Outcome {
        if permanent || message.attempts >= self.config.max_attempts {
            Outcome::Failed { error }
        } else {
            Outcome::Retry {
                delay_secs: self.retry_delay(message.attempts).as_secs_f64(),
                error,
            }
        }
    }

    fn retry_delay(&self, attempts: i32) -> Duration {
        let doublings = attempts.clamp(1, 20) as u32 - 1;
        self.config
            .first_retry
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(Duration::from_secs(6 * 3600))
    }

    async fn resolve(&self, recipient: Option<&Recipient>) -> Result<Resolved, sqlx::Error> {
        let fallback = self.addressing.default_language;
        match recipient {
            None => Ok(Resolved::Nobody("unknown_recipient")),
            Some(Recipient::Registrar) => Ok(mailbox(&self.addressing.registrar, fallback)),
            Some(Recipient::Operations) => Ok(mailbox(&self.addressing.operations, fallback)),
            Some(Recipient::Staff(subject)) => {
                let row = preferences(&self.pool, subject).await?;
                Ok(match row.and_then(|(email, lang)| Some((email?, lang))) {
                    Some((email, lang)) => Resolved::To(email, lang.unwrap_or(fallback)),
                    None => Resolved::Nobody("no_address"),
                })
            }
            Some(Recipient::Student(portfolio)) => {
                // The address is the portfolio's own, read through the command handler (whose
                // folds an erasure drops): an erased student has none, and is not written to.
                let Ok((state, _)) = self.commands.load_portfolio(*portfolio).await else {
                    return Ok(Resolved::Later("recipient_unreadable"));
                };
                let Some(opened) = state.opened() else {
                    return Ok(Resolved::Nobody("unknown_recipient"));
                };
                let Some(student) = &opened.student else {
                    return Ok(Resolved::Nobody("recipient_erased"));
                };
                let uid = opened.student_uid.as_uuid().to_string();
                let language = preferences(&self.pool, &uid).await?.and_then(|(_, l)| l);
                Ok(Resolved::To(
                    student.email.as_str().to_owned(),
                    language.unwrap_or(fallback),
                ))
            }
        }
    }

    fn link(&self, recipient: Option<&Recipient>) -> Option<String> {
        let base = self
            .addressing
            .console_url
            .as_deref()?
            .trim_end_matches('/');
        Some(match recipient {
            Some(Recipient::Student(p)) => format!("{base}/portfolios/{}", p.as_uuid()),
            Some(Recipient::Registrar) => format!("{base}/exports"),
            _ => base.to_owned(),
        })
    }

    /// Sends until `stop` turns true. A database error waits a poll interval and tries again.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                break;
            }
            if let Err(e) = self.send_due().await {
                tracing::warn!(error = %e, "outbox sender: will try again");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.poll) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

fn mailbox(address: &Option<String>, language: Language) -> Resolved {
    match address {
        Some(a) => Resolved::To(a.clone(), language),
        None => Resolved::Nobody("no_address"),
    }
}

/// A person's stored address and language.
pub async fn preferences(
    pool: &PgPool,
    subject: &str,
) -> Result<Option<(Option<String>, Option<Language>)>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT email, language FROM notification_preferences WHERE subject = $1",
        subject
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| (r.email, r.language.as_deref().and_then(Language::parse))))
}
