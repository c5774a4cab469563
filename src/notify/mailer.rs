//! Where messages go: an SMTP server (lettre, TLS as the URL says), a folder of `.eml` files for
//! development, or, when asked for, nowhere but a log line that names the message's kind and id,
//! never its recipient.

use std::path::PathBuf;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncTransport, Tokio1Executor};

/// One message ready to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The message's kind, for the log sink (never the recipient).
    pub kind: &'static str,
    pub to: String,
    pub subject: String,
    pub body: String,
    /// Without angle brackets: `{uuid}@{domain}`.
    pub message_id: String,
    /// `sv` or `en`, for the Content-Language header.
    pub language: &'static str,
}

/// Why a send failed, as a code that may be stored and shown (never the server's text, which may
/// quote the address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    pub code: String,
    /// The SMTP server refused for good (a 5xx): retrying cannot help.
    pub permanent: bool,
}

pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    Directory {
        dir: PathBuf,
        from: Mailbox,
    },
    Log {
        from: Mailbox,
    },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mailer::Smtp { .. } => "Mailer::Smtp",
            Mailer::Directory { .. } => "Mailer::Directory",
            Mailer::Log { .. } => "Mailer::Log",
        })
    }
}

impl Mailer {
    /// From the configuration: an SMTP URL (`smtp://host:587?tls=required`,
    /// `smtps://user:password@host:465`, `smtp://127.0.0.1:2525` without TLS for a local relay),
    /// else a folder, else the log when asked for. `None`: nowhere to send, and then nothing is
    /// recorded as sent (a sink is never chosen by default, or messages would be lost in a log).
    pub fn from_config(
        smtp_url: Option<&str>,
        directory: Option<PathBuf>,
        log: bool,
        from: &str,
    ) -> Result<Option<Self>, String> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("CIM_MAIL_FROM is not an address: {e}"))?;
        if let Some(url) = smtp_url {
            // Well within the sender's lease (two minutes), so a stalled server cannot keep a
            // message claimed past it.
            let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .map_err(|e| format!("CIM_SMTP_URL is not usable: {e}"))?
                .timeout(Some(std::time::Duration::from_secs(30)))
                .build();
            return Ok(Some(Mailer::Smtp { transport, from }));
        }
        if let Some(dir) = directory {
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create the mail folder: {e}"))?;
            return Ok(Some(Mailer::Directory { dir, from }));
        }
        Ok(log.then_some(Mailer::Log { from }))
    }

    /// The domain of the sender's address: the right-hand side of our Message-IDs.
    pub fn domain(&self) -> String {
        let (Mailer::Smtp { from, .. } | Mailer::Directory { from, .. } | Mailer::Log { from }) =
            self;
        from.email.domain().to_owned()
    }

    pub async fn send(&self, message: &Outgoing) -> Result<(), SendError> {
        match self {
            Mailer::Log { .. } => {
                tracing::info!(
                    kind = message.kind,
                    message_id = %message.message_id,
                    "message sent to the log sink"
                );
                Ok(())
            }
            Mailer::Directory { dir, from } => {
                let formatted = build(from, message)?.formatted();
                let path = dir.join(format!("{}.eml", message.message_id));
                tokio::fs::write(&path, formatted)
                    .await
                    .map_err(|_| SendError {
                        code: "mail_folder_unwritable".into(),
                        permanent: false,
                    })
            }
            Mailer::Smtp { transport, from } => {
                let built = build(from, message)?;
                transport.send(built).await.map(|_| ()).map_err(|e| {
                    let code = match e.status() {
                        Some(code) => format!("smtp_{code}"),
                        None if e.is_timeout() => "smtp_timeout".into(),
                        None => "smtp_connection".into(),
                    };
                    SendError {
                        code,
                        permanent: e.is_permanent(),
                    }
                })
            }
        }
    }
}

fn build(from: &Mailbox, message: &Outgoing) -> Result<Message, SendError> {
    let invalid = |code: &str| SendError {
        code: code.into(),
        permanent: true,
    };
    let to: Mailbox = message
        .to
        .parse()
        .map_err(|_| invalid("recipient_address_invalid"))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(message.subject.clone())
        .message_id(Some(format!("<{}>", message.message_id)))
        .header(ContentType::TEXT_PLAIN)
        .header(ContentLanguage(message.language))
        .body(message.body.clone())
        .map_err(|_| invalid("message_unbuildable"))
}

/// `Content-Language`, so a mail client knows which language it shows.
#[derive(Debug, Clone)]
struct ContentLanguage(&'static str);

impl lettre::message::header::Header for ContentLanguage {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("Content-Language")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        match s {
            "sv" => Ok(ContentLanguage("sv")),
            "en" => Ok(ContentLanguage("en")),
            _ => Err("unknown language".into()),
        }
    }

    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), self.0.to_owned())
    }
}
