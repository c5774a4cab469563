//! Two `cim serve` processes on one database, both with the export schedule on, delivering to one
//! (fake) Ladok and writing to one shared export directory, with requests spread over both:
//! commands succeed on either, also when consecutive steps of one student go to different
//! processes; every projection applies every event once; every certificate is in exactly one batch
//! and delivered to Ladok exactly once. Then one process is killed outright, and the other does
//! all the work: it takes over the projections and the export schedule.

use crate::support;

use cim::domain::ProgramId;
use cim::log;
use cim::store::EventStore;
use cim_fake_ladok::FakeLadok;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use support::eventually;
use support::flow::{self, Api, Caller};
use support::ladok::LadokFiles;
use support::log_checks;
use support::process::{ServeProcess, wait_ready};
use uuid::Uuid;

const ANNA: &str = "coord-anna";

/// One of the two processes: export every two seconds into `export_dir`, delivering to `ladok`.
fn serve(url: &str, export_dir: &Path, ladok: &LadokFiles) -> ServeProcess {
    ServeProcess::builder()
        .database(url)
        .env("CIM_JWT_DEV_SECRET", support::auth::SECRET)
        .env("CIM_EXPORT_SCHEDULE", "*/2 * * * * *")
        .env("CIM_EXPORT_DIR", export_dir)
        .ladok(ladok)
        .start()
}

/// `count` students certified concurrently through `api`, each starting at another process.
async fn certify_all(api: &Arc<Api>, program: ProgramId, from: u32, count: u32) -> Vec<String> {
    let coordinator = Caller::coordinator(ANNA);
    let paths = (from..from + count).map(|n| {
        let (api, coordinator) = (api.clone(), coordinator.clone());
        async move { flow::certify(&api, program, &coordinator, n).await }
    });
    futures::future::join_all(paths)
        .await
        .into_iter()
        .map(|done| done.expect("every command was answered"))
        .collect()
}

/// Waits until `count` certificates are merits in Ladok, their deliveries are recorded, and every
/// batch is settled: from then on the scheduled runs find nothing to do and append nothing.
async fn delivered(pool: &sqlx::PgPool, fake: &FakeLadok, count: usize) {
    eventually("every certificate is delivered and recorded", async || {
        let (recorded, unsettled): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM events WHERE event_type = 'CertificateDelivered'),
                    (SELECT count(*) FROM export_batches WHERE deliveries_settled_at IS NULL)",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        fake.merits().len() >= count && recorded >= count as i64 && unsettled == 0
    })
    .await;
}

/// Certificate ids of every `CertificateApproved` in the log.
async fn approved(pool: &sqlx::PgPool) -> BTreeSet<String> {
    sqlx::query_scalar(
        "SELECT payload->>'certificate_id' FROM events WHERE event_type = 'CertificateApproved'",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

/// How many batches list each certificate (from their `BatchCreated` events).
async fn batches_per_certificate(pool: &sqlx::PgPool) -> HashMap<String, usize> {
    let listed: Vec<String> = sqlx::query_scalar(
        "SELECT item->>'certificate_id'
         FROM events, jsonb_array_elements(payload->'certificates') AS item
         WHERE event_type = 'BatchCreated'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = HashMap::new();
    for certificate in listed {
        *out.entry(certificate).or_default() += 1;
    }
    out
}

/// Every approved certificate is in exactly one batch and is one merit in Ladok, and every batch
/// folder in the shared directory is complete.
async fn assert_delivered_once(pool: &sqlx::PgPool, fake: &FakeLadok, export_dir: &Path) {
    let certificates = approved(pool).await;
    let batches = batches_per_certificate(pool).await;
    for certificate in &certificates {
        assert_eq!(batches.get(certificate), Some(&1), "{certificate}: batches");
    }
    assert_eq!(
        batches.len(),
        certificates.len(),
        "batches of unknown certificates"
    );
    let references: Vec<String> = fake
        .merits()
        .iter()
        .map(|m| FakeLadok::certificate_of(&m.merit).unwrap())
        .collect();
    let unique: BTreeSet<String> = references.iter().cloned().collect();
    assert_eq!(
        references.len(),
        unique.len(),
        "a certificate delivered twice"
    );
    assert_eq!(
        unique, certificates,
        "Ladok's merits are not the approved certificates"
    );
    let recorded: Vec<String> = sqlx::query_scalar(
        "SELECT payload->>'certificate_id' FROM events WHERE event_type = 'CertificateDelivered'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        recorded.len(),
        certificates.len(),
        "deliveries recorded once each"
    );
    assert_eq!(recorded.into_iter().collect::<BTreeSet<_>>(), certificates);
    let rows: Vec<Uuid> = sqlx::query_scalar("SELECT batch_id FROM export_batches")
        .fetch_all(pool)
        .await
        .unwrap();
    for batch in rows {
        let folder = export_dir.join(batch.to_string());
        assert!(
            folder.join("manifest.json").exists(),
            "batch {batch} is not complete in the shared export directory"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_the_work_and_one_carries_on_alone_when_the_other_is_killed() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), log::upcasters());
    let program = support::staffed_programs(&store, &[ANNA]).await[0];
    let fake = FakeLadok::start().await.unwrap();
    let ladok = LadokFiles::write(&fake);
    let exports = tempfile::tempdir().unwrap();

    // The first process owns every projection once it has projected the history; the second
    // starts after it and waits for the projections' locks.
    let first = serve(&db.url, exports.path(), &ladok);
    wait_ready(&first.base).await;
    log_checks::wait_caught_up(&db.pool, &first.base).await;
    let second = serve(&db.url, exports.path(), &ladok);
    wait_ready(&second.base).await;

    // Six students at once; each one's consecutive steps alternate between the processes.
    let api = Arc::new(Api::new(vec![first.base.clone(), second.base.clone()]));
    let certified = certify_all(&api, program, 0, 6).await;
    let journal = api.journal();
    let per_portfolio = journal
        .iter()
        .fold(HashMap::<&str, Vec<&str>>::new(), |mut m, s| {
            if let Some(rest) = s.path.strip_prefix("/portfolios/") {
                m.entry(&rest[..36]).or_default().push(&s.base);
            }
            m
        });
    assert_eq!(per_portfolio.len(), 6);
    for bases in per_portfolio.values() {
        assert!(
            bases.windows(2).all(|w| w[0] != w[1]),
            "consecutive steps went to the same process"
        );
    }
    assert!(journal.iter().all(|s| s.succeeded()));

    delivered(&db.pool, &fake, certified.len()).await;
    log_checks::wait_caught_up(&db.pool, &first.base).await;
    log_checks::assert_applied_once(&db.pool).await;
    log_checks::assert_no_partial_command(&db.pool).await;
    assert_delivered_once(&db.pool, &fake, exports.path()).await;

    // The owner of the projections dies without releasing anything. The survivor takes over the
    // projections and the export schedule: what is sent to it now is projected and delivered once.
    first.kill();
    let survivor = Arc::new(Api::new(vec![second.base.clone()]));
    let later = certify_all(&survivor, program, 6, 3).await;
    delivered(&db.pool, &fake, certified.len() + later.len()).await;
    log_checks::wait_caught_up(&db.pool, &second.base).await;
    log_checks::assert_applied_once(&db.pool).await;
    log_checks::assert_no_partial_command(&db.pool).await;
    assert_delivered_once(&db.pool, &fake, exports.path()).await;
    let exit = second.terminate();
    assert!(exit.success(), "cim serve exited with {exit}");
    db.drop().await;
}
