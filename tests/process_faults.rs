//! `cim serve` as a real process under faults of its own:
//! - killed with SIGKILL while concurrent clients have commands in flight: every command answered
//!   2xx is in the log, no command is stored in part, a retry of an unanswered command (same
//!   idempotency key) takes effect at most once, and the read models of the next process equal a
//!   rebuild from the log;
//! - stopped with SIGTERM while a slow upload is in flight: the upload completes and is kept, new
//!   connections are refused, the process exits 0 and its embedded cluster is shut down cleanly;
//! - a request that never finishes delays the stop only by the drain deadline
//!   (`CIM_SHUTDOWN_GRACE_SECONDS`), after which the workers and the cluster still stop cleanly.

mod support;

use cim::domain::ProgramId;
use cim::log;
use cim::store::EventStore;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::flow::{self, Api, Caller, NoAnswer};
use support::log_checks;
use support::process::{ServeProcess, wait_ready};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

const ANNA: &str = "coord-anna";
const BERT: &str = "coord-bert";

/// `cim serve` on `url` verifying the tests' tokens, without the export schedule.
fn serve(url: &str) -> ServeProcess {
    ServeProcess::builder()
        .database(url)
        .env("CIM_JWT_DEV_SECRET", support::auth::SECRET)
        .args(["--export-scheduler", "false"])
        .start()
}

/// The pilot programs, with Anna coordinating the first and Bert the second.
async fn programs(store: &EventStore) -> (ProgramId, ProgramId) {
    let programs = support::staffed_programs(store, &[ANNA, BERT]).await;
    (programs[0], programs[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_answered_command_and_stores_none_in_part() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), log::upcasters());
    let (a, b) = programs(&store).await;
    let first = serve(&db.url);
    wait_ready(&first.base).await;

    // Ten clients at once: eight students on their way to a certificate with their coordinators'
    // decisions in between, and two that keep making students who leave and are erased (one
    // request appending an event to each of their two portfolios, in one transaction).
    let api = Arc::new(Api::new(vec![first.base.clone()]));
    let mut clients = tokio::task::JoinSet::new();
    for n in 0..8u32 {
        let api = api.clone();
        let (program, staff) = if n % 2 == 0 { (a, ANNA) } else { (b, BERT) };
        clients.spawn(async move {
            let coordinator = Caller::coordinator(staff);
            flow::certify(&api, program, &coordinator, n)
                .await
                .map(drop)
        });
    }
    for k in 0..2u32 {
        let api = api.clone();
        clients.spawn(async move {
            // Student after student, until the process dies: an erasure is then likely in flight.
            for round in 0.. {
                flow::leave(&api, &[a, b], 100 + 2 * round + k).await?;
            }
            Ok(())
        });
    }

    // Killed once a good part of the work is confirmed, at a moment when several requests are on
    // their way.
    let deadline = Instant::now() + Duration::from_secs(60);
    while api.succeeded() < 80 || api.in_flight() < 3 {
        assert!(
            Instant::now() < deadline,
            "the load never had several requests in flight"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let in_flight_at_kill = api.in_flight();
    first.kill();
    let mut unanswered = Vec::new();
    while let Some(ended) = clients.join_next().await {
        if let Err(NoAnswer(sent)) = ended.unwrap() {
            unanswered.push(sent);
        }
    }
    let journal = api.journal();
    let answered: Vec<_> = journal.iter().filter(|s| s.answer.is_some()).collect();
    assert!(
        answered.iter().all(|s| s.succeeded()),
        "every step of the load is one the rules accept"
    );
    assert!(
        !unanswered.is_empty(),
        "{in_flight_at_kill} requests were in flight, none went unanswered"
    );

    // Every command answered 2xx is in the log, under its command id, at the version it answered.
    for sent in &answered {
        let status = sent.answer.as_ref().map(|a| a.status);
        log_checks::assert_stored_once(&db.pool, sent, &format!("answered {status:?}")).await;
        if let Some(version) = sent.answer.as_ref().and_then(|a| a.version) {
            let at: i32 = sqlx::query_scalar("SELECT version FROM events WHERE command_id = $1")
                .bind(sent.command_id)
                .fetch_one(&db.pool)
                .await
                .unwrap();
            assert_eq!(at, version, "POST {}: the version answered", sent.path);
        }
    }
    // Nothing stored in part: each unanswered command is in the log whole or not at all, and every
    // command in the log has all its events.
    let mut taken_effect = 0;
    for sent in &unanswered {
        let stored = log_checks::events_per_command(&db.pool, &sent.stored_as).await;
        let whole = stored.iter().all(|&n| n == 1);
        assert!(
            whole || stored.iter().all(|&n| n == 0),
            "POST {} is stored in part: {stored:?}",
            sent.path
        );
        taken_effect += usize::from(whole);
    }
    log_checks::assert_no_partial_command(&db.pool).await;

    // A new process on the same database. The clients send their unanswered commands again, twice,
    // unchanged: each takes effect exactly once, whether or not the first attempt had.
    let second = serve(&db.url);
    wait_ready(&second.base).await;
    let pool = &db.pool;
    let retries = unanswered.iter().map(|sent| {
        let (api, base) = (&api, &second.base);
        async move {
            for attempt in 0..2 {
                let again = api.resend(sent, base).await;
                assert!(
                    again.succeeded(),
                    "retry {attempt} of POST {} answered {:?}",
                    sent.path,
                    again.answer
                );
            }
            log_checks::assert_stored_once(pool, sent, "retried").await;
        }
    });
    futures::future::join_all(retries).await;
    log_checks::assert_no_partial_command(&db.pool).await;

    // The new process's read models catch up from the killed one's checkpoints; every event is
    // applied once, and the read models equal a rebuild from the log.
    log_checks::wait_caught_up(&db.pool, &second.base).await;
    let stopped = second.terminate();
    assert!(stopped.success(), "cim serve exited with {stopped}");
    log_checks::assert_applied_once(&db.pool).await;
    log_checks::assert_equal_to_rebuild(&store, &db.url).await;
    eprintln!(
        "killed with {in_flight_at_kill} requests in flight: {} commands confirmed, {} unanswered \
         ({} erasures; {taken_effect} had taken effect)",
        answered.len(),
        unanswered.len(),
        unanswered.iter().filter(|s| s.stored_as.len() > 1).count()
    );
    db.drop().await;
}

// ---------------------------------------------------------------------------------------------
// SIGTERM with the embedded cluster.
// ---------------------------------------------------------------------------------------------

fn embedded(data_dir: &Path, grace_seconds: Option<u64>) -> ServeProcess {
    let mut builder = ServeProcess::builder()
        .embedded(data_dir)
        .env("CIM_JWT_DEV_SECRET", support::auth::SECRET)
        .args(["--export-scheduler", "false"])
        .capture_logs();
    if let Some(seconds) = grace_seconds {
        builder = builder.env("CIM_SHUTDOWN_GRACE_SECONDS", seconds.to_string());
    }
    builder.start()
}

/// A program registered over HTTP and a student's portfolio in it: (portfolio id, student).
async fn portfolio(base: &str) -> (String, Caller) {
    let api = Api::new(vec![base.to_owned()]);
    let program = api
        .command(
            0,
            "/programs",
            &Caller::admin("admin-1"),
            serde_json::json!({"name": "Nursing", "code": "nursing"}),
            None,
            |id| vec![id],
        )
        .await
        .unwrap();
    assert_eq!(program.status, 201, "{}", program.body);
    let program = ProgramId::new(Uuid::parse_str(program.body["id"].as_str().unwrap()).unwrap());
    let uid = Uuid::now_v7().to_string();
    let session = flow::open(&api, 0, program, &uid, 1).await.unwrap();
    (session.portfolio, Caller::student(&uid))
}

/// An upload on a plain TCP connection, so the test decides when each part of the body leaves:
/// the request head and the first `first` bytes at once, the rest in [`SlowUpload::finish`] (or
/// never). The head asks `Expect: 100-continue`, and [`SlowUpload::start`] returns only once the
/// server has answered `100 Continue`, which it does when the handler starts reading the body: the
/// request is then in flight for certain, whatever the machine's speed.
struct SlowUpload {
    stream: tokio::net::TcpStream,
    rest: Vec<u8>,
}

impl SlowUpload {
    async fn start(
        base: &str,
        portfolio: &str,
        student: &Caller,
        file: &[u8],
        first: usize,
    ) -> Self {
        let addr = base.strip_prefix("http://").unwrap();
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /portfolios/{portfolio}/media HTTP/1.1\r\nHost: {addr}\r\n\
             Authorization: Bearer {}\r\nContent-Type: application/octet-stream\r\n\
             Content-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
            student.token,
            file.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut interim = Vec::new();
        while !interim.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            let read = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut byte))
                .await
                .expect("the server never asked for the body")
                .unwrap();
            assert_eq!(read, 1, "the connection closed before 100 Continue");
            interim.push(byte[0]);
        }
        let interim = String::from_utf8_lossy(&interim);
        assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
        stream.write_all(&file[..first]).await.unwrap();
        stream.flush().await.unwrap();
        SlowUpload {
            stream,
            rest: file[first..].to_vec(),
        }
    }

    /// Sends the rest in pieces, `pause` apart, and reads the answer: (status, body).
    async fn finish(mut self, pieces: usize, pause: Duration) -> (u16, serde_json::Value) {
        for piece in self.rest.chunks(self.rest.len().div_ceil(pieces)) {
            tokio::time::sleep(pause).await;
            self.stream.write_all(piece).await.unwrap();
        }
        self.answer().await.expect("the upload was answered")
    }

    /// Reads the whole answer; `None` when the connection ends without one.
    async fn answer(&mut self) -> Option<(u16, serde_json::Value)> {
        let mut raw = Vec::new();
        self.stream.read_to_end(&mut raw).await.ok()?;
        let text = String::from_utf8_lossy(&raw);
        let status = text.split(' ').nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n")?.1;
        Some((status, serde_json::from_str(body).unwrap_or_default()))
    }
}

/// The cluster of `data_dir` is stopped, and stopped cleanly: no `postmaster.pid`, and its control
/// file says so (a crashed or killed server says "in production").
fn assert_cluster_shut_down(data_dir: &Path) {
    let pgdata = data_dir.join("pgdata");
    assert!(
        !pgdata.join("postmaster.pid").exists(),
        "the cluster is still running"
    );
    let binaries = cim::db::embedded::find_binaries(None).unwrap();
    let initdb = std::fs::canonicalize(&binaries.initdb).unwrap();
    let controldata = initdb.with_file_name("pg_controldata");
    let output = std::process::Command::new(&controldata)
        .arg(&pgdata)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    let state = report
        .lines()
        .find(|l| l.starts_with("Database cluster state:"))
        .unwrap_or_else(|| panic!("{} printed no state: {report}", controldata.display()));
    assert!(state.ends_with("shut down"), "{state}");
}

#[tokio::test]
async fn sigterm_lets_an_upload_in_flight_finish_and_stops_the_embedded_cluster_cleanly() {
    let (_dir, data_dir) = support::embedded::data_dir("cim-sigterm-");
    let first = embedded(&data_dir, None);
    wait_ready(&first.base).await;
    let (portfolio, student) = portfolio(&first.base).await;

    // A recording whose upload takes about two seconds: the head and a first part now, SIGTERM
    // while the rest is on its way.
    let file = support::recordings::wav(170);
    let upload = SlowUpload::start(&first.base, &portfolio, &student, &file, 4096).await;
    first.signal("TERM");
    let finishing = tokio::spawn(upload.finish(8, Duration::from_millis(250)));

    // Once the signal is handled, the server takes no new connections, while the upload's
    // connection keeps going (its rest takes two seconds to arrive).
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    loop {
        assert!(
            !finishing.is_finished(),
            "the upload finished before new connections were refused"
        );
        let fresh = http
            .get(format!("{}/healthz", first.base))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        match fresh {
            // Refused, or (accepted by the kernel just before the listener closed) reset unserved.
            Err(e) if !e.is_timeout() => break,
            Err(e) => panic!("a new connection was neither served nor refused: {e}"),
            Ok(answer) => assert_eq!(answer.status(), 200, "a new connection was answered badly"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (status, uploaded) = finishing.await.unwrap();
    assert_eq!(status, 201, "{uploaded}");
    let mut first = first;
    let exit = first.wait(Duration::from_secs(30));
    assert!(exit.success(), "cim serve exited with {exit}");
    assert_cluster_shut_down(&data_dir);

    // The upload is kept: the next process on the same cluster serves it, byte for byte.
    let second = embedded(&data_dir, None);
    wait_ready(&second.base).await;
    let sha256 = uploaded["sha256"].as_str().unwrap();
    let download = reqwest::Client::new()
        .get(format!(
            "{}/portfolios/{portfolio}/media/{sha256}",
            second.base
        ))
        .bearer_auth(&student.token)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(download.bytes().await.unwrap().as_ref(), file.as_slice());
    let exit = second.terminate();
    assert!(exit.success(), "cim serve exited with {exit}");
    assert_cluster_shut_down(&data_dir);
}

#[tokio::test]
async fn a_request_that_never_finishes_delays_the_stop_only_by_the_drain_deadline() {
    let (_dir, data_dir) = support::embedded::data_dir("cim-sigterm-");
    let mut serve = embedded(&data_dir, Some(2));
    wait_ready(&serve.base).await;
    let (portfolio, student) = portfolio(&serve.base).await;

    // An upload whose client stops sending after the first part and never sends the rest.
    let file = support::recordings::wav(170);
    let mut stalled = SlowUpload::start(&serve.base, &portfolio, &student, &file, 4096).await;
    let signalled = Instant::now();
    serve.signal("TERM");
    let exit = serve.wait(Duration::from_secs(30));
    let took = signalled.elapsed();
    assert!(exit.success(), "cim serve exited with {exit}");
    assert!(
        took >= Duration::from_secs(2),
        "stopped after {took:?}, before the drain deadline"
    );
    assert!(
        serve.logs().contains("shutdown grace period"),
        "the dropped request is not logged:\n{}",
        serve.logs()
    );
    // The stalled request was cut off, and the workers and the cluster still stopped cleanly.
    assert!(stalled.answer().await.is_none());
    assert_cluster_shut_down(&data_dir);
}
