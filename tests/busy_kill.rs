//! `cim serve` killed with SIGKILL while it is busy, not idle, with clients sending commands:
//! - in the middle of an export batch, while the export worker delivers many certificates to the
//!   (fake) Ladok, between Ladok's creation of a merit and our record of it: after a restart Ladok
//!   holds exactly one merit per certificate;
//! - in the middle of a projection rebuild of a large log: the next process resumes the rebuild.
//!
//! Both wait until the work is seen progressing (DeliveryStarted events; a projection's checkpoint
//! counting events while `rebuilding`) before the kill, and prove from the database that it was not
//! finished when the process died. After the restart: every command answered 2xx is in the log,
//! none is stored in part, and the read models equal a rebuild from the log.

mod support;

use cim::domain::ProgramId;
use cim::log;
use cim::store::{EventStore, ExpectedVersion, NewEvent};
use cim_fake_ladok::{FakeLadok, Fault};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::flow::{self, Api, Caller, NoAnswer};
use support::ladok::LadokFiles;
use support::log_checks;
use support::process::{ServeProcess, wait_ready};
use tokio::task::JoinSet;
use uuid::Uuid;

const ANNA: &str = "coord-anna";
const BERT: &str = "coord-bert";

/// Waits until `check` holds, for longer than [`support::eventually`]'s minute: a rebuild or an
/// export of hundreds of certificates on a loaded two-core machine may take a while, and a write
/// in flight at the kill is only looked for after its in-flight bound.
async fn within(limit: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn count(pool: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// Every command answered 2xx is in the log, once, and nothing is stored in part.
async fn assert_answered_commands_logged(pool: &sqlx::PgPool, api: &Api) {
    let journal = api.journal();
    let answered: Vec<_> = journal.iter().filter(|s| s.answer.is_some()).collect();
    assert!(
        !answered.is_empty(),
        "no command was answered before the kill"
    );
    for sent in &answered {
        assert!(
            sent.succeeded(),
            "POST {} answered {:?}",
            sent.path,
            sent.answer
        );
        log_checks::assert_stored_once(pool, sent, "answered 2xx").await;
    }
    log_checks::assert_no_partial_command(pool).await;
}

/// The clients' commands stop at the kill (the first one without an answer).
async fn join_clients(clients: &mut JoinSet<Result<(), NoAnswer>>) {
    while let Some(ended) = clients.join_next().await {
        let _ = ended.unwrap();
    }
}

/// How long the fake holds the answer of the creation the kill lands in: past the worker's timeout.
const HELD: Duration = Duration::from_secs(60);

/// The worker's Ladok timeout: long enough that the test sees the held write before the worker
/// gives up on it, on a loaded machine.
const LADOK_TIMEOUT_SECS: &str = "10";

/// Certificates whose merit Ladok holds while the log has not recorded it (no MeritCreated).
async fn unrecorded_merits(pool: &sqlx::PgPool, fake: &FakeLadok) -> Vec<String> {
    let recorded: Vec<String> = sqlx::query_scalar(
        "SELECT payload->>'certificate_id' FROM events WHERE event_type = 'MeritCreated'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    fake.merits()
        .iter()
        .filter_map(|m| FakeLadok::certificate_of(&m.merit))
        .filter(|id| !recorded.contains(id))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_the_middle_of_an_export_batch_leaves_one_merit_per_certificate() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), log::upcasters());
    let programs = support::staffed_programs(&store, &[ANNA, BERT]).await;
    // Enough certificates that delivering them takes seconds, not milliseconds.
    let cohort = support::certificates::cohort(&store, 150).await;
    let fake = FakeLadok::start().await.unwrap();
    // Four requests per certificate (student, merits, creation, attestation): the creation of the
    // eleventh is carried out and its answer held past the client's timeout, so the kill lands
    // between Ladok's write and our record of it, the moment that tests exactly-once.
    fake.push_faults(std::iter::repeat_n(Fault::Pass, 4 * 10 + 2).chain([Fault::LoseAnswer(HELD)]));
    let files = LadokFiles::write(&fake);
    let exports = tempfile::tempdir().unwrap();
    let serve = |fake_files: &LadokFiles| {
        ServeProcess::builder()
            .database(&db.url)
            .env("CIM_JWT_DEV_SECRET", support::auth::SECRET)
            .env("CIM_EXPORT_SCHEDULE", "* * * * * *")
            .env("CIM_EXPORT_DIR", exports.path())
            .ladok(fake_files)
            .env("CIM_LADOK_TIMEOUT_SECS", LADOK_TIMEOUT_SECS)
            .start()
    };
    let first = serve(&files);
    wait_ready(&first.base).await;

    // Students on their way to a certificate meanwhile (theirs join a later batch).
    let api = Arc::new(Api::new(vec![first.base.clone()]));
    let mut clients = JoinSet::new();
    for n in 0..4u32 {
        let api = api.clone();
        let (program, staff) = (programs[(n % 2) as usize], [ANNA, BERT][(n % 2) as usize]);
        clients.spawn(async move {
            flow::certify(&api, program, &Caller::coordinator(staff), n)
                .await
                .map(drop)
        });
    }

    // Killed once Ladok holds a merit the log does not know of yet (its answer held): the worker
    // is then ten certificates into the batch.
    let delivered = "SELECT count(*) FROM events WHERE event_type = 'CertificateDelivered'";
    within(
        Duration::from_secs(180),
        "a merit is written and not recorded",
        async || {
            // Still so half a second later: the held answer, not the moment between an answer
            // and its record in the flow of every certificate.
            let seen = unrecorded_merits(&db.pool, &fake).await;
            if seen.is_empty() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let still = unrecorded_merits(&db.pool, &fake).await;
            seen.iter().any(|id| still.contains(id))
        },
    )
    .await;
    first.kill();
    let in_doubt = unrecorded_merits(&db.pool, &fake).await;
    assert!(!in_doubt.is_empty(), "the kill did not land in the write");
    let delivered_at_kill = count(&db.pool, delivered).await;
    assert!(
        (delivered_at_kill as usize) < cohort.len(),
        "the batch was delivered whole before the kill ({delivered_at_kill} certificates)"
    );
    join_clients(&mut clients).await;
    assert_answered_commands_logged(&db.pool, &api).await;

    // The next process finishes the batch (and the students' later ones).
    let second = serve(&files);
    wait_ready(&second.base).await;
    let undelivered = "SELECT count(*) FROM events a WHERE a.event_type = 'CertificateApproved' \
         AND NOT EXISTS (SELECT 1 FROM events d WHERE d.event_type = 'CertificateDelivered' \
         AND d.payload->>'certificate_id' = a.payload->>'certificate_id')";
    within(
        Duration::from_secs(300),
        "every certificate is delivered",
        async || count(&db.pool, undelivered).await == 0,
    )
    .await;
    let certificates: Vec<String> = sqlx::query_scalar(
        "SELECT payload->>'certificate_id' FROM events WHERE event_type = 'CertificateApproved'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(certificates.len() >= cohort.len());
    // Exactly one merit per certificate in Ladok, and one CertificateDelivered in the log.
    let mut merits: HashMap<String, usize> = HashMap::new();
    for m in fake.merits() {
        let id = FakeLadok::certificate_of(&m.merit).expect("every merit carries our marker");
        *merits.entry(id).or_default() += 1;
    }
    for id in &certificates {
        assert_eq!(
            merits.get(id),
            Some(&1),
            "certificate {id}: merits in Ladok"
        );
    }
    assert_eq!(
        merits.len(),
        certificates.len(),
        "merits of unknown certificates"
    );
    assert_eq!(
        count(&db.pool, delivered).await as usize,
        certificates.len(),
        "one CertificateDelivered per certificate"
    );
    log_checks::wait_caught_up(&db.pool, &second.base).await;
    let stopped = second.terminate();
    assert!(stopped.success(), "cim serve exited with {stopped}");
    log_checks::assert_applied_once(&db.pool).await;
    log_checks::assert_equal_to_rebuild(&store, &db.url).await;
    eprintln!(
        "killed with {delivered_at_kill} of {} certificates delivered, {in_doubt:?} in Ladok only",
        cohort.len()
    );
    db.drop().await;
}

/// `n` events (in commands of 500) on streams no read model but the audit indexes: a large log
/// quickly, on top of the real one.
async fn bulk_log(store: &EventStore, n: usize) {
    for chunk in 0..n.div_ceil(500) {
        let events: Vec<NewEvent> = (0..500.min(n - chunk * 500))
            .map(|i| NewEvent {
                event_id: Uuid::now_v7(),
                event_type: "BulkNoted".to_owned(),
                schema_version: 1,
                payload: json!({ "i": i }),
                personal: None,
                data_subject: None,
            })
            .collect();
        store
            .append(
                &format!("bulk-{chunk}"),
                ExpectedVersion::NoStream,
                &events,
                &support::certificates::metadata(),
            )
            .await
            .unwrap();
    }
}

/// A coordinator adding catalog items to `program` until the process stops answering.
async fn add_items(api: Arc<Api>, program: ProgramId, staff: &'static str) -> Result<(), NoAnswer> {
    let caller = Caller::coordinator(staff);
    for n in 0.. {
        let item = format!("load-{staff}-{n}");
        let body = json!({ "item": item, "name": format!("Load {n}") });
        api.command(
            0,
            &format!("/programs/{program}/catalog"),
            &caller,
            body,
            None,
            |id| vec![id],
        )
        .await?;
    }
    Ok(())
}

/// The projections still rebuilding, with how many events each has applied.
async fn rebuilding(pool: &sqlx::PgPool) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT name, events_applied FROM projection_checkpoints WHERE status = 'rebuilding'",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// When the audit's read model was last reset (dropped and created empty).
async fn reset_at(pool: &sqlx::PgPool) -> chrono::DateTime<chrono::Utc> {
    sqlx::query_scalar("SELECT rebuilt_at FROM projection_checkpoints WHERE name = 'audit'")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_the_middle_of_a_rebuild_is_resumed_by_the_next_process() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), log::upcasters());
    let programs = support::staffed_programs(&store, &[ANNA, BERT]).await;
    support::certificates::cohort(&store, 20).await;
    bulk_log(&store, 60_000).await;
    support::settle(&store).await;
    let events = log_checks::event_count(&db.pool).await;

    // A first process on a database none of whose read models exist yet: it builds every one of
    // them from the whole log (as after a definition change), while clients send commands.
    let serve = || {
        ServeProcess::builder()
            .database(&db.url)
            .env("CIM_JWT_DEV_SECRET", support::auth::SECRET)
            .args(["--export-scheduler", "false"])
            .start()
    };
    let first = serve();
    let api = Arc::new(Api::new(vec![first.base.clone()]));
    let mut clients = JoinSet::new();
    clients.spawn(add_items(api.clone(), programs[0], ANNA));
    clients.spawn(add_items(api.clone(), programs[1], BERT));

    // Killed once the audit (which indexes every event) has committed a part of the log, and the
    // clients have had an answer (the rebuild alone can reach that part before the first command is
    // answered, when the machine is busy).
    within(
        Duration::from_secs(180),
        "the rebuild is under way and a command was answered",
        async || {
            let answered = api.journal().iter().any(|s| s.answer.is_some());
            answered
                && rebuilding(&db.pool)
                    .await
                    .iter()
                    .any(|(name, applied)| name == "audit" && *applied >= 2_000)
        },
    )
    .await;
    first.kill();
    let at_kill = rebuilding(&db.pool).await;
    let audit = at_kill.iter().find(|(name, _)| name == "audit");
    assert!(
        audit.is_some_and(|(_, applied)| *applied < events),
        "the audit was rebuilt whole before the kill: {at_kill:?} of {events} events"
    );
    let audit_reset_at = reset_at(&db.pool).await;
    join_clients(&mut clients).await;
    assert_answered_commands_logged(&db.pool, &api).await;

    // The next process resumes where the killed one stopped: it does not reset the read model
    // again (which would set `rebuilt_at` anew), and applies every event once.
    let second = serve();
    within(
        Duration::from_secs(300),
        "every projection is live",
        async || rebuilding(&db.pool).await.is_empty(),
    )
    .await;
    log_checks::wait_caught_up(&db.pool, &second.base).await;
    assert_eq!(
        reset_at(&db.pool).await,
        audit_reset_at,
        "the rebuild started over"
    );
    let stopped = second.terminate();
    assert!(stopped.success(), "cim serve exited with {stopped}");
    log_checks::assert_applied_once(&db.pool).await;
    log_checks::assert_equal_to_rebuild(&store, &db.url).await;
    eprintln!("killed with {at_kill:?} of {events} events applied");
    db.drop().await;
}
