//! The registrar read model follows the export worker: certificates taken by a batch show as
//! exported, Ladok's outcome shows as delivered or failed (with the error group, never Ladok's free
//! text), a re-delivery request after a rule error goes back to pending and then delivered, a
//! revocation after delivery goes back to pending and then out as a correction; and the
//! projection applied live equals a rebuild from the start.

use crate::support;

use cim::log;
use support::certificates::{approval, date, metadata, record};
use support::log_checks::rebuild_from_start;

use cim::domain::PortfolioEvent;
use cim::domain::batch::{BatchEvent, RedeliveryRequested};
use cim::domain::ids::{CertificateId, StaffId};
use cim::domain::portfolio::CertificateRevoked;
use cim::export::worker::schedule::run_export;
use cim::export::worker::{RunOutcome, WorkerConfig};
use cim::projections::read_models::RegistrarProjection;
use cim::projections::read_models::registrar::{self, CertificateRecord};
use cim::projections::{Projection, checkpoint, definition_hash};
use cim::store::{Checkpoint, EventStore, ExpectedVersion};
use cim_fake_ladok::FakeLadok;
use sqlx::PgPool;
use uuid::Uuid;

async fn event_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Applies the rest of the log to the projection live, through the runner's batch transaction, a few
/// events at a time.
async fn catch_up(store: &EventStore, projection: &dyn Projection) {
    support::settle(store).await;
    let pool = store.pool();
    let hash = definition_hash(projection);
    let mut at = match checkpoint::load(pool, projection.name()).await.unwrap() {
        Some(stored) => stored.checkpoint,
        None => {
            checkpoint::reset(pool, projection).await.unwrap();
            Checkpoint::START
        }
    };
    loop {
        let events = store.read_after_omitting_personal(at, 3).await.unwrap();
        if events.is_empty() {
            return;
        }
        at = checkpoint::apply_batch(pool, projection, &hash, at, &events)
            .await
            .unwrap();
    }
}

async fn rows(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT row_to_json(t)::text FROM rm_certificates t ORDER BY 1")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn row(pool: &PgPool, id: CertificateId) -> CertificateRecord {
    registrar::certificate(pool, id).await.unwrap().unwrap()
}

async fn run(store: &EventStore, config: &WorkerConfig) -> (usize, usize) {
    support::settle(store).await;
    match run_export(store, config).await.unwrap() {
        RunOutcome::Ran {
            delivered, failed, ..
        } => (delivered, failed),
        RunOutcome::Busy => panic!("the only worker got the lock"),
    }
}

#[tokio::test]
async fn the_registrar_view_shows_export_and_ladok_outcomes_and_rebuild_equals_live() {
    let db = support::fresh().await;
    let pool = db.pool.clone();
    let store = EventStore::new(pool.clone(), log::upcasters());
    let projection = RegistrarProjection::new();
    assert_eq!(projection.version(), 3);
    let out = tempfile::tempdir().unwrap();
    let fake = FakeLadok::start().await.unwrap();
    let mut config = WorkerConfig::new(out.path());
    config.ladok = Some(fake.config());

    let mut approved = Vec::new();
    for n in 0..4 {
        let a = approval(n as usize);
        record(
            &store,
            a.portfolio_id,
            PortfolioEvent::CertificateApproved(a.clone()),
        )
        .await;
        approved.push(a);
    }
    let bad = approved[2].certificate_id;
    fake.rule_error_for(&bad.to_string(), "commons.fel.grupp.domanregel");

    catch_up(&store, &projection).await;
    for a in &approved {
        let r = row(&pool, a.certificate_id).await;
        assert_eq!(
            (r.export_status.as_str(), r.ladok_status.as_str()),
            ("pending", "pending")
        );
        assert_eq!(r.last_batch_id, None);
    }

    assert_eq!(run(&store, &config).await, (3, 1));
    catch_up(&store, &projection).await;
    let batch: Uuid = sqlx::query_scalar("SELECT batch_id FROM export_batches")
        .fetch_one(&pool)
        .await
        .unwrap();
    for a in &approved {
        let r = row(&pool, a.certificate_id).await;
        assert_eq!(r.export_status, "exported");
        assert_eq!(r.last_batch_id, Some(batch));
        if a.certificate_id == bad {
            assert_eq!(r.ladok_status, "failed");
            assert_eq!(
                r.delivery_error.as_deref(),
                Some("rule_error:commons.fel.grupp.domanregel")
            );
        } else {
            assert_eq!(r.ladok_status, "delivered");
            assert_eq!(r.delivery_error, None);
        }
        assert!(r.updated_at >= r.approved_at);
    }

    // A revocation after delivery: back to pending, then exported (and delivered) as a correction
    // by a second batch.
    let revoked = &approved[0];
    record(
        &store,
        revoked.portfolio_id,
        PortfolioEvent::CertificateRevoked(CertificateRevoked {
            certificate_id: revoked.certificate_id,
            by: StaffId::parse("coordinator-2@ki.se").unwrap(),
            revoked_on: date(2026, 3, 1),
            personal: None,
        }),
    )
    .await;
    catch_up(&store, &projection).await;
    let r = row(&pool, revoked.certificate_id).await;
    assert_eq!(
        (r.export_status.as_str(), r.ladok_status.as_str()),
        ("pending", "pending")
    );
    assert_eq!(r.last_batch_id, Some(batch));

    assert_eq!(run(&store, &config).await, (1, 0));
    catch_up(&store, &projection).await;
    let second: Uuid =
        sqlx::query_scalar("SELECT batch_id FROM export_batches WHERE batch_id <> $1")
            .bind(batch)
            .fetch_one(&pool)
            .await
            .unwrap();
    let r = row(&pool, revoked.certificate_id).await;
    assert_eq!(r.export_status, "exported");
    assert_eq!(r.ladok_status, "delivered");
    assert_eq!(r.last_batch_id, Some(second));
    // The others are untouched by the second batch.
    let r = row(&pool, bad).await;
    assert_eq!(
        (r.ladok_status.as_str(), r.last_batch_id),
        ("failed", Some(batch))
    );

    // The registrar asks for the rule error to be delivered again (as `POST
    // /exports/batches/{id}/redeliver` records it): pending, then delivered by a Ladok that accepts it.
    let stream = cim::domain::BatchId::new(batch).stream_id();
    let request = BatchEvent::RedeliveryRequested(RedeliveryRequested {
        by: "registrar-1".to_owned(),
        certificate_ids: vec![bad],
    });
    store
        .append(
            &stream,
            ExpectedVersion::Any,
            &[cim::log::encode_batch(&request)],
            &metadata(),
        )
        .await
        .unwrap();
    sqlx::query("UPDATE export_batches SET deliveries_settled_at = NULL WHERE batch_id = $1")
        .bind(batch)
        .execute(&pool)
        .await
        .unwrap();
    catch_up(&store, &projection).await;
    let r = row(&pool, bad).await;
    assert_eq!(r.ladok_status, "pending");
    assert_eq!(
        r.delivery_error.as_deref(),
        Some("rule_error:commons.fel.grupp.domanregel")
    );
    let accepting = FakeLadok::start().await.unwrap();
    let mut fixed = config.clone();
    fixed.ladok = Some(accepting.config());
    assert_eq!(run(&store, &fixed).await, (1, 0));
    catch_up(&store, &projection).await;
    let r = row(&pool, bad).await;
    assert_eq!(
        (r.ladok_status.as_str(), r.delivery_error),
        ("delivered", None)
    );

    // Nothing personal in the view.
    let live = rows(&pool).await;
    let text = live.join("\n");
    for a in &approved {
        let holder = a.personal.as_ref().unwrap();
        assert!(!text.contains(holder.identity_number.as_str()));
    }
    for a in &approved {
        let name = &a.personal.as_ref().unwrap().name;
        assert!(
            !text.contains(name.family_name()),
            "a name in the registrar view"
        );
    }

    // Rebuild from the start equals live.
    let total = event_count(&pool).await;
    rebuild_from_start(&store, &db.url, &projection, 2).await;
    catch_up(&store, &projection).await;
    let stored = checkpoint::load(&pool, projection.name())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.events_applied, total);
    assert_eq!(rows(&pool).await, live);
    db.drop().await;
}
