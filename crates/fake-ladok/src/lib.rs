//! A fake Ladok for tests and `cim-demo`: a real HTTPS server on a random local port that requires a
//! client certificate issued by its own CA (mutual TLS, as Ladok does), checks Ladok's media types,
//! keeps students and other merits in memory, and can be told to misbehave.
//!
//! It is the other side of a network protocol, not a mock of our code: the worker talks to it through
//! the same reqwest client, TLS stack and configuration as to the real Ladok. On start it issues a
//! throw-away CA, a server certificate for `127.0.0.1`/`localhost` and a client certificate (as a
//! PKCS#12 file with a passphrase); [`FakeLadok::config`] is a [`LadokConfig`] that trusts the CA and
//! presents the client certificate.
//!
//! It speaks only what Ladok's schemas have (`routes.rs`): every body it receives is checked against
//! the schema tables of `ladok::schema` (an unknown element, a missing required one or a value of the
//! wrong kind is refused with a `LadokException`-shaped 400), merits are kept per student (the
//! student is in the path: `AnnanMerit` has no student field), created unattested, attested by
//! `AttesteraAndraMeriter`, corrected by `AnnanMeritRattning` (checked against `SenastSparad`) and
//! withdrawn by a `Beslut`. Lists are paged and ordered by `Uid`, and carry a `link` array.
//!
//! Students: every Ladok UID is known (without an identity number unless one was registered with
//! [`FakeLadok::add_student`]), and every valid-looking identity number is known, with a UID derived
//! from it ([`FakeLadok::student_uid`]). [`FakeLadok::answer_student_as`] makes a lookup answer
//! another student's record (the wrong-record case). Misbehaviour: [`Fault`]s queued with
//! [`FakeLadok::push_faults`] answer the next requests (500, a hang past the client's timeout, a 200
//! HTML login page, a write carried out whose answer is lost), and [`FakeLadok::rule_error_for`]
//! makes the creation of one certificate's merit fail with a `Felgrupp`.
//!
//! Outages: [`FakeLadok::set_outage`] takes Ladok down as a whole, for every request until it is told
//! otherwise, and [`FakeLadok::outage_after`] after a number of requests (a Ladok that goes down in the
//! middle of a run). [`Outage::Unavailable`] answers 503 with Ladok's error body;
//! [`Outage::Unreachable`] answers nothing at all: new connections are closed before the TLS
//! handshake, and open ones end at their next request without an answer.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use openssl::ssl::{Ssl, SslAcceptor, SslMethod, SslVerifyMode};
use openssl::x509::store::X509StoreBuilder;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_openssl::SslStream;
use uuid::Uuid;

use cim::export::worker::ladok::LadokConfig;

mod routes;
mod tls;

use tls::{Role, issue, new_key, pkcs12};

/// One misbehaviour, answering one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 500 with a Ladok error body.
    ServerError,
    /// No answer for longer than any sane client timeout (the request is then answered 500).
    Hang(Duration),
    /// 200 with `text/html`: what an expired session gets from Ladok's login redirect.
    HtmlLoginPage,
    /// No misbehaviour: answered as usual (to aim a later fault at a later request).
    Pass,
    /// The request is carried out, then its answer is held this long (past the client's timeout:
    /// the answer is lost, as when a worker dies between Ladok's answer and its own commit).
    LoseAnswer(Duration),
}

/// Ladok down as a whole, for every request, until [`FakeLadok::set_outage`] says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// Every request is answered `503 Service Unavailable` with Ladok's error body (in
    /// maintenance, or overloaded): the server is there, the service is not.
    Unavailable,
    /// Nothing answers: new connections are closed before the TLS handshake, and requests on
    /// connections already open end without an answer (the connection is closed instead).
    Unreachable,
}

/// The fake could not start.
#[derive(Debug, thiserror::Error)]
pub enum FakeLadokError {
    #[error("issuing the fake's certificates failed: {0}")]
    Tls(#[from] openssl::error::ErrorStack),
    #[error("the fake cannot listen: {0}")]
    Io(#[from] std::io::Error),
}

/// One merit as the fake keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMerit {
    /// The student it was created for (from the request path).
    pub student_uid: String,
    /// The `AnnanMerit` as Ladok would answer it.
    pub merit: Value,
    /// Withdrawn (makulerad): no longer listed nor readable.
    pub withdrawn: bool,
}

/// A body the fake accepted, with the schema type it was checked as (for tests that validate it
/// with `xmllint` against Ladok's XSD).
#[derive(Debug, Clone)]
pub struct ReceivedBody {
    pub root: cim::export::worker::ladok::schema::Root,
    pub body: Value,
}

#[derive(Debug, Default)]
struct FakeState {
    faults: VecDeque<Fault>,
    /// Certificate id (in the merit's marker) → Felgrupp to refuse its creation with.
    rule_errors: HashMap<String, String>,
    merits: Vec<StoredMerit>,
    /// Registered students: Ladok UID → identity number.
    students: HashMap<String, String>,
    /// Ladok UID → the UID whose record a lookup answers instead.
    impostors: HashMap<String, String>,
    /// Ladok UIDs Ladok has no student for (every other UID is a student, with a number if added).
    strangers: std::collections::HashSet<String>,
    /// Every body that passed the schema check.
    received: Vec<ReceivedBody>,
    /// The most merits a list page serves.
    page_cap: Option<usize>,
    /// (method, path) of every request that got past TLS, for tests that count calls.
    requests: Vec<(String, String)>,
    outage: Option<Outage>,
    /// An outage that begins after this many more requests.
    outage_after: Option<(usize, Outage)>,
    /// Set while [`Outage::Unreachable`] lasts; shared with the listener and every connection,
    /// which go dead while it is set.
    unreachable: Arc<AtomicBool>,
}

impl FakeState {
    fn begin(&mut self, outage: Option<Outage>) {
        self.outage = outage;
        self.unreachable
            .store(outage == Some(Outage::Unreachable), Ordering::SeqCst);
    }
}

/// A running fake Ladok. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeLadok {
    addr: SocketAddr,
    ca_pem: Vec<u8>,
    client_pkcs12: Vec<u8>,
    foreign_pkcs12: Vec<u8>,
    state: Arc<Mutex<FakeState>>,
    rejected_handshakes: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

/// The passphrase of the fake's client PKCS#12 files.
pub const CLIENT_PASSWORD: &str = "fake-ladok";

impl FakeLadok {
    /// Issues fresh certificates and starts serving on `127.0.0.1:0`.
    pub async fn start() -> Result<Self, FakeLadokError> {
        let ca_key = new_key()?;
        let ca = issue("Fake Ladok CA", &ca_key, None, Role::Ca)?;
        let server_key = new_key()?;
        let server = issue("127.0.0.1", &server_key, Some((&ca, &ca_key)), Role::Server)?;
        let client_key = new_key()?;
        let client = issue(
            "cim export worker",
            &client_key,
            Some((&ca, &ca_key)),
            Role::Client,
        )?;
        let client_pkcs12 = pkcs12(&client, &client_key)?;
        // A client certificate Ladok did not issue: self-signed, so the fake must refuse it.
        let foreign_key = new_key()?;
        let foreign = issue("someone else", &foreign_key, None, Role::Client)?;
        let foreign_pkcs12 = pkcs12(&foreign, &foreign_key)?;

        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
        acceptor.set_private_key(&server_key)?;
        acceptor.set_certificate(&server)?;
        let mut roots = X509StoreBuilder::new()?;
        roots.add_cert(ca.clone())?;
        acceptor.set_verify_cert_store(roots.build())?;
        acceptor.add_client_ca(&ca)?;
        // Mutual TLS: no handshake completes without a client certificate that chains to our CA.
        acceptor.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
        let acceptor = acceptor.build();

        let tcp = TcpListener::bind("127.0.0.1:0").await?;
        let addr = tcp.local_addr()?;
        let unreachable = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(FakeState {
            unreachable: unreachable.clone(),
            ..FakeState::default()
        }));
        let rejected_handshakes = Arc::new(AtomicUsize::new(0));
        let listener = TlsListener {
            tcp,
            acceptor,
            rejected: rejected_handshakes.clone(),
            unreachable,
        };
        let app = axum::Router::new()
            .fallback(routes::handle)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            ca_pem: ca.to_pem()?,
            client_pkcs12,
            foreign_pkcs12,
            state,
            rejected_handshakes,
            task,
        })
    }

    pub fn base_url(&self) -> url::Url {
        url::Url::parse(&format!("https://{}/", self.addr)).expect("a socket address makes a URL")
    }

    /// The CA that issued the server's certificate (PEM): the client's extra trusted root.
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }

    /// The client certificate and key as PKCS#12 (passphrase [`CLIENT_PASSWORD`]).
    pub fn client_pkcs12(&self) -> &[u8] {
        &self.client_pkcs12
    }

    /// A client configuration for this fake: its CA trusted, its client certificate presented, short
    /// timeouts and retry pauses (tests should not wait for production backoff).
    pub fn config(&self) -> LadokConfig {
        let mut config = LadokConfig::new(
            self.base_url(),
            self.client_pkcs12.clone(),
            CLIENT_PASSWORD.to_owned(),
        );
        config.extra_root_pem = Some(self.ca_pem.clone());
        config.timeout = Duration::from_secs(2);
        config.retry.base_delay = Duration::from_millis(20);
        config.retry.max_delay = Duration::from_millis(200);
        config
    }

    /// [`config`](Self::config) with a client certificate that the fake's CA did not issue.
    pub fn config_with_foreign_certificate(&self) -> LadokConfig {
        let mut config = self.config();
        config.pkcs12_der = self.foreign_pkcs12.clone();
        config
    }

    /// The Ladok UID the fake gives the student with this 12-digit identity number.
    pub fn student_uid(identity_number: &str) -> String {
        Uuid::new_v5(&Uuid::NAMESPACE_OID, identity_number.as_bytes()).to_string()
    }

    /// The next requests are answered with these faults, one each, in order.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.lock().faults.extend(faults);
    }

    /// Registers a student: lookups of `uid` answer this identity number, and the number's lookup
    /// answers `uid`.
    pub fn add_student(&self, uid: &str, identity_number: &str) {
        self.lock()
            .students
            .insert(uid.to_owned(), identity_number.to_owned());
    }

    /// Ladok has no student with `uid`: its lookup answers 404.
    pub fn forget_student(&self, uid: &str) {
        self.lock().strangers.insert(uid.to_owned());
    }

    /// A lookup of `uid` answers the record of `other_uid` instead (Ladok's record of another
    /// person).
    pub fn answer_student_as(&self, uid: &str, other_uid: &str) {
        self.lock()
            .impostors
            .insert(uid.to_owned(), other_uid.to_owned());
    }

    /// Lists serve at most `n` merits a page, whatever the client asks for (a Ladok with a cap of
    /// its own).
    pub fn cap_page_size(&self, n: usize) {
        self.lock().page_cap = Some(n);
    }

    /// Forgets every rule error set with [`rule_error_for`](Self::rule_error_for).
    pub fn clear_rule_errors(&self) {
        self.lock().rule_errors.clear();
    }

    /// Every body the fake accepted, in order.
    pub fn received(&self) -> Vec<ReceivedBody> {
        self.lock().received.clone()
    }

    /// Stores a merit as if created in Ladok by someone else (e.g. by hand), attested or not; its
    /// `Uid` and `SenastSparad` are given by the fake. Returns the UID.
    pub fn insert_merit(&self, student_uid: &str, mut merit: Value) -> String {
        let uid = Uuid::new_v4().to_string();
        merit["Uid"] = Value::String(uid.clone());
        merit["SenastSparad"] = Value::String(routes::now());
        self.lock().merits.push(StoredMerit {
            student_uid: student_uid.to_owned(),
            merit,
            withdrawn: false,
        });
        uid
    }

    /// Changes a stored merit's fields (an administrator editing it in Ladok).
    pub fn edit_merit(&self, merit_uid: &str, fields: Value) {
        let mut s = self.lock();
        if let Some(stored) = s.merits.iter_mut().find(|m| m.merit["Uid"] == merit_uid)
            && let (Some(target), Some(fields)) = (stored.merit.as_object_mut(), fields.as_object())
        {
            for (k, v) in fields {
                target.insert(k.clone(), v.clone());
            }
            target.insert("SenastSparad".to_owned(), Value::String(routes::now()));
        }
    }

    /// The certificate id in a merit's marker, if it carries one.
    pub fn certificate_of(merit: &Value) -> Option<String> {
        use cim::export::worker::ladok::merit::{MARKER_FIELD, MARKER_PREFIX};
        let origin = merit.get(MARKER_FIELD)?.as_str()?;
        let at = origin.find(MARKER_PREFIX)? + MARKER_PREFIX.len();
        Some(origin[at..].chars().take(36).collect())
    }

    /// Creating the merit whose marker names `certificate_id` fails with this `Felgrupp`.
    pub fn rule_error_for(&self, certificate_id: &str, felgrupp: &str) {
        self.lock()
            .rule_errors
            .insert(certificate_id.to_owned(), felgrupp.to_owned());
    }

    /// Takes Ladok down as a whole (`Some`) for every request from now on, or brings it back
    /// (`None`). Merits stored before the outage are kept.
    pub fn set_outage(&self, outage: Option<Outage>) {
        let mut s = self.lock();
        s.outage_after = None;
        s.begin(outage);
    }

    /// The next `requests` requests are answered as usual, then `outage` begins and lasts until
    /// [`set_outage`](Self::set_outage) ends it.
    pub fn outage_after(&self, requests: usize, outage: Outage) {
        self.lock().outage_after = Some((requests, outage));
    }

    /// Every merit stored (withdrawn ones too), as last written.
    pub fn merits(&self) -> Vec<StoredMerit> {
        self.lock().merits.clone()
    }

    /// The merits not withdrawn, as Ladok would list them.
    pub fn standing_merits(&self) -> Vec<StoredMerit> {
        self.lock()
            .merits
            .iter()
            .filter(|m| !m.withdrawn)
            .cloned()
            .collect()
    }

    /// (method, path) of every request that completed the TLS handshake.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.lock().requests.clone()
    }

    /// Handshakes refused (no client certificate, or one our CA did not issue).
    pub fn rejected_handshakes(&self) -> usize {
        self.rejected_handshakes.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FakeLadok {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// TCP accept plus the TLS handshake; connections that fail the handshake are counted and dropped.
/// While Ladok is unreachable, connections are closed at once, before the handshake.
struct TlsListener {
    tcp: TcpListener,
    acceptor: SslAcceptor,
    rejected: Arc<AtomicUsize>,
    unreachable: Arc<AtomicBool>,
}

impl axum::serve::Listener for TlsListener {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            if self.unreachable.load(Ordering::SeqCst) {
                drop(tcp);
                continue;
            }
            let Ok(mut stream) =
                Ssl::new(self.acceptor.context()).and_then(|ssl| SslStream::new(ssl, tcp))
            else {
                continue;
            };
            let handshake = Pin::new(&mut stream).accept();
            match tokio::time::timeout(Duration::from_secs(5), handshake).await {
                Ok(Ok(())) => {
                    let connection = Connection {
                        tls: stream,
                        unreachable: self.unreachable.clone(),
                    };
                    return (connection, addr);
                }
                _ => {
                    self.rejected.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// One client connection. While Ladok is unreachable it is dead: a read sees the end of the
/// stream and a write fails, so the server closes it without answering (what a client sees of a
/// server that went away under an open connection).
struct Connection {
    tls: SslStream<TcpStream>,
    unreachable: Arc<AtomicBool>,
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.unreachable.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.tls).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.unreachable.load(Ordering::SeqCst) {
            return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        }
        Pin::new(&mut this.tls).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tls).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tls).poll_shutdown(cx)
    }
}
