//! A real SMTP server for the tests: it speaks enough of RFC 5321 for lettre (EHLO, MAIL, RCPT,
//! DATA, RSET, NOOP, QUIT) over TCP on a port of its own, keeps every message it accepts, and can
//! be told to answer the next DATA commands with a temporary (451) or permanent (550) refusal.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent (headers and body), with dot-stuffing undone.
    pub data: String,
}

impl Received {
    /// A header's value (the first), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = &mut value {
                if line.starts_with([' ', '\t']) {
                    v.push_str(line);
                    continue;
                }
                break;
            }
            if let Some((n, v)) = line.split_once(':')
                && n.eq_ignore_ascii_case(name)
            {
                value = Some(v.trim().to_owned());
            }
        }
        value
    }

    /// The body as text: quoted-printable (what lettre uses for text beyond ASCII) decoded.
    pub fn body(&self) -> String {
        let raw = self
            .data
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        let qp = self
            .header("Content-Transfer-Encoding")
            .is_some_and(|e| e.eq_ignore_ascii_case("quoted-printable"));
        if qp { quoted_printable(&raw) } else { raw }
    }
}

#[derive(Debug, Default)]
struct Inner {
    received: Vec<Received>,
    /// Refusals for the next DATA commands, in order: e.g. "451 4.3.0 try later".
    refusals: Vec<String>,
    /// How long the server takes to answer the end of a message's data (a slow server).
    delay: std::time::Duration,
}

#[derive(Debug, Clone)]
pub struct SmtpSink {
    pub port: u16,
    inner: Arc<Mutex<Inner>>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let inner: Arc<Mutex<Inner>> = Arc::default();
        let shared = inner.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, shared.clone()));
            }
        });
        Self { port, inner }
    }

    /// `smtp://127.0.0.1:{port}`: plain SMTP on the loopback, as `CIM_SMTP_URL` takes it.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// From now on, each message is answered only after `delay`, as a busy server does.
    pub fn slow(&self, delay: std::time::Duration) {
        self.inner.lock().unwrap().delay = delay;
    }

    /// The next `n` messages are refused with `reply` (e.g. `451 4.3.0 busy`).
    pub fn refuse_next(&self, n: usize, reply: &str) {
        let mut inner = self.inner.lock().unwrap();
        inner
            .refusals
            .extend(std::iter::repeat_n(reply.to_owned(), n));
    }
}

async fn session(stream: TcpStream, inner: Arc<Mutex<Inner>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let _ = write.write_all(b"220 sink.test ESMTP ready\r\n").await;
    let (mut from, mut to) = (String::new(), Vec::new());
    while let Ok(Some(line)) = lines.next_line().await {
        let upper = line.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            "250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8".into()
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            "250 OK".into()
        } else if upper.starts_with("MAIL FROM:") {
            from = address(&line[10..]);
            to.clear();
            "250 OK".into()
        } else if upper.starts_with("RCPT TO:") {
            to.push(address(&line[8..]));
            "250 OK".into()
        } else if upper.starts_with("RSET") {
            from.clear();
            to.clear();
            "250 OK".into()
        } else if upper.starts_with("DATA") {
            let _ = write.write_all(b"354 end with .\r\n").await;
            let mut data = String::new();
            while let Ok(Some(l)) = lines.next_line().await {
                if l == "." {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                data.push_str("\r\n");
            }
            let delay = inner.lock().unwrap().delay;
            tokio::time::sleep(delay).await;
            let mut guard = inner.lock().unwrap();
            if guard.refusals.is_empty() {
                guard.received.push(Received {
                    from: from.clone(),
                    to: to.clone(),
                    data,
                });
                "250 2.0.0 queued".into()
            } else {
                guard.refusals.remove(0)
            }
        } else if upper.starts_with("QUIT") {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else {
            "502 not implemented".into()
        };
        if write
            .write_all(format!("{reply}\r\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

/// `<a@b> SIZE=…` → `a@b`.
fn address(arg: &str) -> String {
    let arg = arg.trim();
    let inside = arg
        .strip_prefix('<')
        .and_then(|a| a.split_once('>'))
        .map_or(arg, |(a, _)| a);
    inside.to_owned()
}

/// RFC 2045 quoted-printable: `=XX` is a byte, `=` at a line's end joins it with the next.
fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
