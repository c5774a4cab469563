//! Ladok as its published schema has it, against the fake Ladok (a real HTTPS server that speaks
//! only what the schema has) and a real PostgreSQL:
//!
//! - every body the client sends, and what the fake answers, validates with `xmllint --nonet
//!   --schema` against Ladok's own XSDs in `../shared/formats/ladok/`; a field the schema lacks is
//!   refused by the client before sending and by the fake when sent;
//! - exactly once without a field for our id: a merit whose answer was lost is found by its marker
//!   on the student's last page; a write another worker may still have in flight is left alone
//!   until it cannot be, then found; an attested merit that says something else is corrected with
//!   Ladok's optimistic lock;
//! - the identity check: a student record that is not the portfolio's student is never written to;
//! - `cim ladok check` answers for every operation and writes nothing.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::certificates::cohort;
use support::ladok::{run, worker};

use cim::app;
use cim::db::embedded::{EmbeddedConfig, EmbeddedPostgres};
use cim::db::{self, scratch};
use cim::domain::portfolio::CertificateApproved;
use cim::export::fake_ladok::{FakeLadok, Fault};
use cim::export::worker::events::{BatchEvent, DeliveryFailed, DeliveryStarted, stream_id};
use cim::export::worker::ladok::merit::{MeritContent, marker};
use cim::export::worker::ladok::schema::{self, Root};
use cim::export::worker::ladok::{Endpoint, Evidence, LadokClient, LadokError, Operation};
use cim::export::worker::{ExportLock, ExportWorker, Step, WorkerError};
use cim::export::{BatchId, ExportCertificate, ExportSettings};
use cim::store::{EventStore, ExpectedVersion};

const LADOK_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/formats/ladok");

/// Validates `xml` against the schema of `root` exactly as `shared/formats/ladok/README.md` says.
fn assert_valid(root: Root, xml: &str) {
    let dir = PathBuf::from(LADOK_DIR)
        .canonicalize()
        .expect("the shared Ladok schema folder ../shared/formats/ladok exists");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), xml).unwrap();
    let out = Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(dir.join(schema::schema_file(root)))
        .arg(file.path())
        .output()
        .expect("xmllint is installed (libxml2-utils)");
    assert!(
        out.status.success(),
        "{} does not validate:\n{xml}\n{}",
        root.ty.name,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh database with `n` approved certificates, an export folder and a fake Ladok.
struct Env {
    db: support::TestDb,
    store: EventStore,
    out: tempfile::TempDir,
    fake: FakeLadok,
    approved: Vec<CertificateApproved>,
}

async fn env(n: usize) -> Env {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), app::upcasters());
    let approved = cohort(&store, n).await;
    Env {
        db,
        store,
        out: tempfile::tempdir().unwrap(),
        fake: FakeLadok::start().await.unwrap(),
        approved,
    }
}

/// Every body the fake received validates against Ladok's XSD.
fn assert_all_valid(fake: &FakeLadok) {
    for r in fake.received() {
        assert_valid(r.root, &schema::to_xml(r.root, &r.body).unwrap());
    }
}

/// The fake's merits carrying `approval`'s marker (withdrawn ones too).
fn merits_of(fake: &FakeLadok, approval: &CertificateApproved) -> Vec<Value> {
    fake.merits()
        .into_iter()
        .filter(|m| {
            FakeLadok::certificate_of(&m.merit) == Some(approval.certificate_id.to_string())
        })
        .map(|m| m.merit)
        .collect()
}

/// The one batch the worker wrote (without Ladok), to append to as a dead worker would have.
async fn only_batch(store: &EventStore) -> BatchId {
    let id: uuid::Uuid = sqlx::query_scalar("SELECT batch_id FROM export_batches")
        .fetch_one(store.pool())
        .await
        .unwrap();
    BatchId::new(id)
}

async fn append(store: &EventStore, batch: BatchId, event: BatchEvent) {
    store
        .append(
            &stream_id(batch),
            ExpectedVersion::Any,
            &[event.to_new_event()],
            &support::certificates::metadata(),
        )
        .await
        .unwrap();
}

/// What a worker that died after sending the creation of `approval`'s merit left behind: the
/// write recorded as started (in flight for `in_flight_secs`), and the merit in Ladok (`ended`: the
/// worker also recorded that the request failed, as after a lost answer).
async fn dead_worker_created(
    store: &EventStore,
    fake: &FakeLadok,
    approval: &CertificateApproved,
    ended: bool,
    in_flight_secs: u64,
) -> String {
    let batch = only_batch(store).await;
    append(
        store,
        batch,
        BatchEvent::DeliveryStarted(DeliveryStarted {
            certificate_id: approval.certificate_id,
            operation: "create".to_owned(),
            ladok_merit_uid: None,
            in_flight_secs,
        }),
    )
    .await;
    if ended {
        append(
            store,
            batch,
            BatchEvent::DeliveryFailed(DeliveryFailed {
                certificate_id: approval.certificate_id,
                reason: "unavailable".to_owned(),
                felgrupp: None,
                retryable: true,
                settles_write: false,
            }),
        )
        .await;
    }
    let certificate = ExportCertificate::new(approval, None).unwrap();
    let body = MeritContent::new(&certificate, &ExportSettings::default()).create_body();
    fake.insert_merit(&approval.student_uid.to_string(), body)
}

#[tokio::test]
async fn every_request_and_answer_validates_against_ladoks_schema_and_unknown_fields_are_refused() {
    let Env {
        db,
        store,
        out,
        fake,
        approved,
    } = env(3).await;
    // Creations and attestations; then a withdrawal and a correction.
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(fake.config()))).await,
        (3, 0)
    );
    let revoked = &approved[0];
    support::certificates::revoke(&store, revoked).await;
    support::settle(&store).await;
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(fake.config()))).await,
        (1, 0)
    );

    // The batch manifests list what the registrar must still do by hand in Ladok.
    let mut steps: Vec<(String, String)> = Vec::new();
    for folder in cim::export::worker::batch_folders(out.path()).unwrap() {
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(folder.join("manifest.json")).unwrap()).unwrap();
        for entry in manifest["ladok_manual_steps"].as_array().unwrap() {
            let codes = entry["steps"].as_array().unwrap();
            for code in codes {
                let code = code.as_str().unwrap().to_owned();
                assert!(manifest["ladok_manual_step_texts"][&code].is_string());
                steps.push((entry["certificate_id"].as_str().unwrap().to_owned(), code));
            }
        }
    }
    for a in &approved {
        assert!(steps.contains(&(
            a.certificate_id.to_string(),
            "allow_in_degree_certificate".to_owned()
        )));
    }
    assert!(steps.contains(&(
        revoked.certificate_id.to_string(),
        "check_issued_degree_certificate".to_owned()
    )));

    let received = fake.received();
    let kinds: Vec<&str> = received.iter().map(|r| r.root.ty.name).collect();
    for kind in ["AnnanMerit", "AttesteraAndraMeriter", "Beslut"] {
        assert!(kinds.contains(&kind), "no {kind} sent: {kinds:?}");
    }
    assert_all_valid(&fake);
    // What the fake answers: a student, and a list of merits with its links.
    let client = LadokClient::new(fake.config()).unwrap();
    let uid = approved[1].student_uid.to_string();
    let merits: Vec<Value> = client
        .merits(&uid)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(merits.len(), 1);
    let list =
        json!({"link": [{"rel": "self", "uri": "/x", "method": "GET"}], "AnnanMerit": merits});
    assert_valid(
        schema::ANDRA_MERITER_ROOT,
        &schema::to_xml(schema::ANDRA_MERITER_ROOT, &list).unwrap(),
    );
    fake.add_student(&uid, "199001011239");
    let student = json!({"Uid": uid, "Avliden": false, "FelVidEtableringExternt": false,
        "Personnummer": client.student(&uid).await.unwrap().personnummer});
    assert_valid(
        schema::STUDENT_ROOT,
        &schema::to_xml(schema::STUDENT_ROOT, &student).unwrap(),
    );

    // What the schema lacks is refused: by our client before sending ...
    let mut bad = received
        .iter()
        .find(|r| r.root.ty.name == "AnnanMerit")
        .unwrap()
        .body
        .clone();
    bad["ExterntReferens"] = json!("ours");
    bad["StudentUID"] = json!(uid);
    let before = fake.requests().len();
    let err = client.create_merit(&uid, &bad).await.unwrap_err();
    assert!(matches!(err, LadokError::Schema(_)), "{err:?}");
    assert_eq!(fake.requests().len(), before, "nothing was sent");
    // ... and by Ladok (the fake) when it arrives, with a Ladok-shaped error.
    let raw = reqwest::Client::builder()
        .identity(
            reqwest::Identity::from_pkcs12_der(
                fake.client_pkcs12(),
                cim::export::fake_ladok::CLIENT_PASSWORD,
            )
            .unwrap(),
        )
        .add_root_certificate(reqwest::Certificate::from_pem(fake.ca_pem()).unwrap())
        .build()
        .unwrap();
    let answer = raw
        .post(
            fake.base_url()
                .join(&format!("resultat/annanmerit/student/{uid}/skapa"))
                .unwrap(),
        )
        .header("Accept", "application/vnd.ladok-resultat+json")
        .header("Content-Type", "application/vnd.ladok-resultat+json")
        .body(bad.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let error: Value = answer.json().await.unwrap();
    assert_eq!(error["Felgrupp"], "commons.fel.grupp.felaktigt_varde");
    assert!(error["FelUID"].is_string());
    db.drop().await;
}

#[tokio::test]
async fn a_lost_answer_is_found_by_its_marker_on_the_students_last_page() {
    let Env {
        db,
        store,
        out,
        fake,
        approved,
    } = env(2).await;
    worker(&store, out.path(), None).run_once().await.unwrap();
    // The student already has 35 other merits in Ladok; a dead worker's creation is a 36th.
    let student = approved[0].student_uid.to_string();
    for n in 0..35 {
        fake.insert_merit(
            &student,
            json!({"AnvandsITillgodoraknande": false, "AnvandsIUtfardatBevis": false,
                "Attesterad": true, "Benamning": format!("Annan merit {n}"), "MeritViaEmrex": false,
                "TillatenIBevis": false, "TillatenIGemensamExamen": false,
                "Ursprung": "Another university"}),
        );
    }
    let created = dead_worker_created(&store, &fake, &approved[0], true, 0).await;
    // Ladok serves at most 7 a page, whatever we ask for.
    fake.cap_page_size(7);
    let mut config = fake.config();
    config.page_size = 10;
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(config))).await,
        (2, 0)
    );
    let ours = merits_of(&fake, &approved[0]);
    assert_eq!(ours.len(), 1, "found, not created again");
    assert_eq!(ours[0]["Uid"], created);
    assert_eq!(ours[0]["Attesterad"], true);
    // Every page was read, in order, to the first empty one: 36 merits at 7 a page are six pages.
    let pages = fake
        .requests()
        .iter()
        .filter(|(m, p)| m == "GET" && *p == format!("/resultat/annanmerit/student/{student}"))
        .count();
    assert_eq!(pages, 7);
    assert_eq!(merits_of(&fake, &approved[1]).len(), 1);
    assert_all_valid(&fake);
    db.drop().await;
}

#[tokio::test]
async fn a_write_that_may_still_be_in_flight_is_left_alone_until_it_cannot_be() {
    let Env {
        db,
        store,
        out,
        fake,
        approved,
    } = env(2).await;
    worker(&store, out.path(), None).run_once().await.unwrap();
    // A worker died while its creation was on the wire: no outcome was ever recorded, and its
    // request may be in flight for 8 s.
    let started = std::time::Instant::now();
    dead_worker_created(&store, &fake, &approved[0], false, 8).await;
    let config = fake.config();
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(config.clone()))).await,
        (1, 0)
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the machine was too slow to tell"
    );
    let ours = merits_of(&fake, &approved[0]);
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0]["Attesterad"], false, "not touched while in flight");
    tokio::time::sleep(Duration::from_secs(8).saturating_sub(started.elapsed())).await;
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(config))).await,
        (1, 0)
    );
    let ours = merits_of(&fake, &approved[0]);
    assert_eq!(ours.len(), 1, "found, not created again");
    assert_eq!(ours[0]["Attesterad"], true);
    assert_all_valid(&fake);
    db.drop().await;
}

#[tokio::test]
async fn an_attested_merit_that_says_something_else_is_corrected_under_ladoks_lock() {
    let Env {
        db,
        store,
        out,
        fake,
        approved,
    } = env(1).await;
    let config = fake.config();
    // Student, merits (none), creation, then the attestation's answer is lost (Ladok attested it).
    fake.push_faults([
        Fault::Pass,
        Fault::Pass,
        Fault::Pass,
        Fault::LoseAnswer(config.timeout * 2),
    ]);
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(config.clone()))).await,
        (0, 1)
    );
    let merit = merits_of(&fake, &approved[0]).remove(0);
    assert_eq!(merit["Attesterad"], true);
    // Meanwhile someone renamed it in Ladok.
    let uid = merit["Uid"].as_str().unwrap().to_owned();
    fake.edit_merit(&uid, json!({"Benamning": "Något annat"}));
    let saved = merits_of(&fake, &approved[0])[0]["SenastSparad"].clone();
    tokio::time::sleep(config.in_flight_bound()).await;
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(config))).await,
        (1, 0)
    );
    let merit = merits_of(&fake, &approved[0]).remove(0);
    assert_eq!(merit["Benamning"], "Certifikat för internationella meriter");
    let correction = fake
        .received()
        .into_iter()
        .find(|r| r.root.ty.name == "AnnanMeritRattning")
        .expect("a correction was sent");
    assert_eq!(correction.body["SenasteSenastSparad"], saved);
    assert_eq!(fake.merits().len(), 1);
    assert_all_valid(&fake);
    db.drop().await;
}

#[tokio::test]
async fn a_student_record_that_is_not_the_portfolios_student_is_never_written_to() {
    let Env {
        db,
        store,
        out,
        fake,
        approved,
    } = env(3).await;
    // Ladok answers another person's record for the first student, and another identity number
    // for the second.
    fake.answer_student_as(
        &approved[0].student_uid.to_string(),
        &uuid::Uuid::new_v4().to_string(),
    );
    fake.add_student(&approved[1].student_uid.to_string(), "199001011239");
    let mut w = worker(&store, out.path(), Some(fake.config()));
    assert_eq!(run(&mut w).await, (1, 2));
    for a in &approved[..2] {
        assert!(
            merits_of(&fake, a).is_empty(),
            "nothing written for a mismatch"
        );
        assert!(
            !fake
                .received()
                .iter()
                .any(|r| r.body.to_string().contains(&marker(a.certificate_id))),
            "no body sent for it"
        );
    }
    let reasons: Vec<(String, bool)> = sqlx::query_as(
        "SELECT payload->>'reason', (payload->>'retryable')::bool FROM events \
         WHERE event_type = 'DeliveryFailed'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(reasons, vec![("identity_mismatch".to_owned(), false); 2]);
    // Never retried blindly: the next run asks Ladok nothing about them.
    let before = fake.requests().len();
    assert_eq!(run(&mut w).await, (0, 0));
    assert_eq!(fake.requests().len(), before);
    assert_eq!(merits_of(&fake, &approved[2]).len(), 1);
    assert_all_valid(&fake);
    db.drop().await;
}

/// `cim ladok check` with the fake's files, as the registrar's office runs it.
fn ladok_check(files: &support::ladok::LadokFiles, extra: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cim"));
    command
        .args(["ladok", "check", "--student", "199001011239"])
        .envs(files.env())
        .env_remove("DATABASE_URL");
    for (k, v) in extra {
        command.env(k, v);
    }
    command.output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cim_ladok_check_answers_for_every_operation_and_writes_nothing() {
    let fake = FakeLadok::start().await.unwrap();
    let files = std::sync::Arc::new(support::ladok::LadokFiles::write(&fake));
    // A merit to read.
    fake.insert_merit(
        &FakeLadok::student_uid("199001011239"),
        json!({"AnvandsITillgodoraknande": false, "AnvandsIUtfardatBevis": false,
            "Attesterad": true, "Benamning": "Annan merit", "MeritViaEmrex": false,
            "TillatenIBevis": false, "TillatenIGemensamExamen": false}),
    );
    // Off the runtime's threads: the fake answers on them meanwhile.
    let f = files.clone();
    let output = tokio::task::spawn_blocking(move || ladok_check(&f, &[]))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("9 of 9 operations answered, 0 refused"),
        "{stdout}"
    );
    assert!(stdout.contains("unverified default"));
    let writes: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|(m, _)| m == "POST" || m == "PUT" || m == "DELETE")
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    // A path Ladok does not have is named, and the command fails.
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("operations.json");
    std::fs::write(
        &table,
        r#"{"create_merit": {"method": "POST", "path": "/resultat/annanmerit/skapa",
            "media_type": "application/vnd.ladok-resultat+json"}}"#,
    )
    .unwrap();
    let table = table.to_str().unwrap().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        ladok_check(&files, &[("CIM_LADOK_OPERATIONS", table.as_str())])
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(!output.status.success());
    assert!(
        stdout.lines().any(|l| l.starts_with("REFUSED")
            && l.contains("create_merit")
            && l.contains("configured")),
        "{stdout}"
    );
}

/// Steps `worker` (holding `lock`) until its batch is complete, so that its next step delivers.
async fn until_complete(worker: &mut ExportWorker, lock: &mut ExportLock) {
    loop {
        match worker.step(lock).await.unwrap() {
            Step::Completed { .. } => return,
            Step::Idle => panic!("no batch to complete"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_lost_its_lock_sends_no_write() {
    let Env {
        db,
        store,
        out,
        fake,
        approved,
    } = env(2).await;
    let mut lock = ExportLock::try_acquire(&db.pool).await.unwrap().unwrap();
    let mut first = worker(&store, out.path(), Some(fake.config()));
    until_complete(&mut first, &mut lock).await;
    // The first student lookup hangs for a second (then answers 500 and is retried); meanwhile the
    // lock's session is ended, as when PostgreSQL drops the connection.
    fake.push_faults([Fault::Hang(Duration::from_millis(2500))]);
    let pool = db.pool.clone();
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .execute(&pool)
        .await
        .unwrap();
    });
    let stepped = first.step(&mut lock).await;
    killer.await.unwrap();
    assert!(matches!(stepped, Err(WorkerError::LockLost)), "{stepped:?}");
    // The read went out, the write did not, and the log holds no write as started.
    assert!(
        fake.received().is_empty(),
        "a write was sent without the lock"
    );
    let started: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'DeliveryStarted'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(started, 0);
    // The next worker delivers everything once.
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(fake.config()))).await,
        (2, 0)
    );
    for a in &approved {
        assert_eq!(merits_of(&fake, a).len(), 1);
    }
    assert_all_valid(&fake);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_crash_in_the_middle_of_a_delivery_leaves_one_merit_per_certificate() {
    support::install_master_key();
    let dir = tempfile::Builder::new()
        .prefix("cim-crash-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = EmbeddedConfig {
        data_dir: dir.path().join("data"),
        bin_dir: None,
    };
    let cluster = EmbeddedPostgres::start(config.clone()).await.unwrap();
    let url = cluster.connection_url("cim");
    scratch::create_database(&url, "cim").await.unwrap();
    let pool = db::connect(&url, 8).await.unwrap();
    db::migrate(&pool).await.unwrap();
    let store = EventStore::new(pool.clone(), app::upcasters());
    let approved = cohort(&store, 3).await;
    let out = tempfile::tempdir().unwrap();
    let fake = FakeLadok::start().await.unwrap();
    let mut ladok = fake.config();
    ladok.timeout = Duration::from_secs(3);
    // The first certificate: student, merits, creation, attestation. The second: student, merits,
    // then its creation is carried out by Ladok and its answer held while PostgreSQL crashes.
    fake.push_faults([
        Fault::Pass,
        Fault::Pass,
        Fault::Pass,
        Fault::Pass,
        Fault::Pass,
        Fault::Pass,
        Fault::LoseAnswer(Duration::from_secs(10)),
    ]);
    let mut first = worker(&store, out.path(), Some(ladok.clone()));
    let running = tokio::spawn(async move { first.run_once().await });
    support::eventually("the second creation reached Ladok", async || {
        fake.received()
            .iter()
            .filter(|r| r.root.ty.name == "AnnanMerit")
            .count()
            == 2
    })
    .await;
    support::process::crash_postgres(&config.data_dir).await;
    assert!(running.await.unwrap().is_err(), "the run cannot go on");
    pool.close().await;
    drop(cluster);

    let cluster = EmbeddedPostgres::start(config).await.unwrap();
    let pool = db::connect(&url, 8).await.unwrap();
    let store = EventStore::new(pool.clone(), app::upcasters());
    // The write in flight at the crash waits for its bound, then is found by its marker.
    run(&mut worker(&store, out.path(), Some(ladok.clone()))).await;
    tokio::time::sleep(ladok.in_flight_bound()).await;
    run(&mut worker(&store, out.path(), Some(ladok))).await;
    for a in &approved {
        let ours = merits_of(&fake, a);
        assert_eq!(ours.len(), 1, "{}: one merit", a.certificate_id);
        assert_eq!(ours[0]["Attesterad"], true);
    }
    let delivered: Vec<(uuid::Uuid, i64)> = sqlx::query_as(
        "SELECT (payload->>'certificate_id')::uuid, count(*) FROM events \
         WHERE event_type = 'CertificateDelivered' GROUP BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(delivered.len(), 3);
    assert!(delivered.iter().all(|(_, n)| *n == 1));
    assert_all_valid(&fake);
    pool.close().await;
    cluster.stop().await.unwrap();
}

#[tokio::test]
async fn a_merit_whose_read_answers_404_is_found_by_its_marker_not_created_again() {
    let Env {
        db,
        store,
        out,
        fake,
        approved,
    } = env(1).await;
    worker(&store, out.path(), None).run_once().await.unwrap();
    // A worker created the merit, recorded Ladok's UID, and died before attesting it.
    let uid = dead_worker_created(&store, &fake, &approved[0], true, 0).await;
    append(
        &store,
        only_batch(&store).await,
        BatchEvent::MeritCreated(cim::export::worker::events::MeritCreated {
            certificate_id: approved[0].certificate_id,
            ladok_merit_uid: uid.clone(),
        }),
    )
    .await;
    // The configured read path is wrong: every read by UID answers 404.
    let mut config = fake.config();
    config.operations.set(
        Operation::ReadMerit,
        Endpoint {
            method: "GET".into(),
            path: "/resultat/annanmerit/saknas/{merit_uid}".into(),
            media_type: "application/vnd.ladok-resultat+json".into(),
            evidence: Evidence::Configured,
        },
    );
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(config))).await,
        (1, 0)
    );
    let ours = merits_of(&fake, &approved[0]);
    assert_eq!(ours.len(), 1, "found by its marker, not created again");
    assert_eq!(
        (ours[0]["Uid"].as_str(), &ours[0]["Attesterad"]),
        (Some(uid.as_str()), &json!(true))
    );
    assert_all_valid(&fake);
    db.drop().await;
}

#[tokio::test]
async fn an_approval_revoked_before_its_merit_existed_is_not_created_on_redelivery() {
    let Env {
        db,
        store,
        out,
        fake,
        approved,
    } = env(2).await;
    // Ladok refuses the first merit by a rule; the other is delivered.
    fake.rule_error_for(
        &approved[0].certificate_id.to_string(),
        "commons.fel.grupp.domanregel",
    );
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(fake.config()))).await,
        (1, 1)
    );
    let first_batch = only_batch(&store).await;
    // Then the program revokes it: its revocation finds no merit to withdraw.
    support::certificates::revoke(&store, &approved[0]).await;
    support::settle(&store).await;
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(fake.config()))).await,
        (0, 1)
    );
    // The data in Ladok is fixed and the registrar asks for the first batch's failure again.
    fake.clear_rule_errors();
    append(
        &store,
        first_batch,
        BatchEvent::RedeliveryRequested(cim::export::worker::events::RedeliveryRequested {
            by: "registrar-1".to_owned(),
            certificate_ids: vec![approved[0].certificate_id],
        }),
    )
    .await;
    sqlx::query("UPDATE export_batches SET deliveries_settled_at = NULL WHERE batch_id = $1")
        .bind(first_batch.as_uuid())
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(fake.config()))).await,
        (0, 1)
    );
    assert!(
        merits_of(&fake, &approved[0]).is_empty(),
        "a revoked certificate got a merit"
    );
    let reason: String = sqlx::query_scalar(
        "SELECT payload->>'reason' FROM events WHERE event_type = 'DeliveryFailed' \
         ORDER BY position DESC LIMIT 1",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(reason, "revoked");
    db.drop().await;
}
