//! Where messages go: an SMTP server (lettre, TLS as the URL says), a folder of `.eml` files for
//! development, or nowhere but a log line that names the message, never its recipient.

use std::path::PathBuf;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncTransport, Tokio1Executor};

/// One message ready to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
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
    /// else a folder, else the log.
    pub fn from_config(
        smtp_url: Option<&str>,
        directory: Option<PathBuf>,
        from: &str,
    ) -> Result<Self, String> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("CIM_MAIL_FROM is not an address: {e}"))?;
        if let Some(url) = smtp_url {
            let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .map_err(|e| format!("CIM_SMTP_URL is not usable: {e}"))?
                .build();
            return Ok(Mailer::Smtp { transport, from });
        }
        if let Some(dir) = directory {
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create the mail folder: {e}"))?;
            return Ok(Mailer::Directory { dir, from });
        }
        Ok(Mailer::Log { from })
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
                tracing::info!(message_id = %message.message_id, "message sent to the log sink");
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
