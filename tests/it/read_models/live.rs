//! Projected live by the runner while the commands are written concurrently, then every table
//! compared row for row with a rebuild from position 0, and every event applied exactly once.

use super::workload::{STUDENTS, Sim};
use super::*;
use cim::log;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_projection_under_concurrent_writers_equals_a_rebuild_from_the_start() {
    let w = world().await;
    let pool = w.db.pool.clone();
    let store = w.handler.store().clone();
    let models = read_models::all();

    // The real runner projects live while the workload writes, with small batches so that many
    // batch boundaries fall between concurrent appends.
    let config = RunnerConfig {
        batch_size: 37,
        poll_interval: Duration::from_millis(20),
        ..RunnerConfig::default()
    };
    let runner = ProjectionRunner::start_with(
        config,
        store.clone(),
        pool.clone(),
        &w.db.url,
        models.clone(),
    );

    let mut seed = StdRng::seed_from_u64(0x5EED_C1A0);
    let mut sims = Vec::new();
    for n in 0..STUDENTS {
        sims.push(Sim::open(&w, n, &mut seed).await);
    }

    // Rounds: every student still going makes one command, all students concurrently.
    for round in 0..60 {
        if round == 4 {
            // Program events between portfolio events: a rules change re-renders that program's
            // portfolios (a later deadline), a rename and a new coordinator are ignored by them.
            w.handler
                .program(
                    w.programs[1],
                    ProgramCommand::ChangeRules {
                        rules: ProgramRules {
                            final_deadline_offset_days: 21,
                            ..ProgramRules::default()
                        },
                    },
                    &ctx("admin-1", ActorRole::Admin),
                )
                .await
                .unwrap();
            w.handler
                .program(
                    w.programs[2],
                    ProgramCommand::RenameCatalogItem {
                        item: CatalogItemId::parse("tedx").unwrap(),
                        name: text("TEDx Karolinska"),
                    },
                    &ctx("admin-1", ActorRole::Admin),
                )
                .await
                .unwrap();
        }
        let progressed = futures::future::join_all(sims.iter_mut().map(|s| s.step(&w))).await;
        if !progressed.iter().any(|p| *p) {
            break;
        }
    }

    // One student asks for erasure while the runner is live: the rebuild below must equal the live
    // read models across it.
    let media_dir = tempfile::tempdir().unwrap();
    cim::app::erase(
        &w.handler,
        &cim::media::MediaStore::new(media_dir.path(), 1 << 20),
        &cim::app::ErasureRequest {
            student_uid: sims[0].person.uid,
            by: StaffId::parse("admin-1").unwrap(),
            reason: text("GDPR request 17"),
        },
        &ctx("admin-1", ActorRole::Admin),
    )
    .await
    .unwrap();

    // A student's own date change as logs written before coordinators set the date hold it: it must
    // still fold, live and in the rebuild.
    let legacy = &sims[1];
    let (before, version) = w.handler.load_portfolio(legacy.portfolio).await.unwrap();
    let (event_type, payload) = PortfolioEvent::from(ExpectedCompletionChanged {
        expected_completion: before.opened().unwrap().expected_completion + TimeDelta::days(7),
        previous: before.opened().unwrap().expected_completion,
    })
    .to_payload();
    store
        .append(
            &format!("portfolio-{}", legacy.portfolio),
            ExpectedVersion::Exact(version),
            &[log::encode(event_type, 1, payload, None)],
            &Metadata {
                actor_id: legacy.person.uid.to_string(),
                actor_role: ActorRole::Student,
                correlation_id: Uuid::now_v7(),
                causation_id: None,
                command_id: Uuid::now_v7(),
            },
        )
        .await
        .unwrap();

    // Every event type occurred.
    let types: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT event_type FROM events ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    for t in PortfolioEvent::EVENT_TYPES {
        assert!(
            types.iter().any(|x| x == t),
            "the workload never produced {t}"
        );
    }
    let total = event_count(&pool).await;
    assert!(total > 1000, "only {total} events");

    // Let the runner catch up with the whole log, then stop it. The readable head can lag behind
    // while transactions of other tests on the same server are open (the bound is cluster-wide),
    // so wait until every event is readable and applied, not just up to the first head seen.
    wait_until_applied(&pool, &store, &runner, &models, total).await;
    runner.shutdown().await;

    // Exactly once: the audit index holds every position of the log once (its primary key would
    // have refused a second application), and each projection counted every event once.
    let logged: Vec<i64> = sqlx::query_scalar("SELECT position FROM events ORDER BY position")
        .fetch_all(&pool)
        .await
        .unwrap();
    let indexed: Vec<i64> = sqlx::query_scalar("SELECT position FROM rm_audit ORDER BY position")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(indexed, logged, "an event was missed or applied twice");
    let (transaction_id, position): (i64, i64) = sqlx::query_as(
        "SELECT transaction_id::text::bigint, position FROM events
         ORDER BY transaction_id DESC, position DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let last = Checkpoint {
        transaction_id,
        position,
    };
    for p in &models {
        let stored = checkpoint::load(&pool, p.name()).await.unwrap().unwrap();
        assert_eq!(stored.events_applied, total, "{}", p.name());
        assert_eq!(stored.checkpoint, last, "{}", p.name());
    }

    let live = snapshot(&pool, &models).await;
    let people: Vec<Person> = sims.iter().map(|s| s.person.clone()).collect();
    assert_no_personal_data(
        &all_read_model_text(&pool).await,
        &people,
        false,
        "a read model",
    );
    // The rules change re-rendered program 1's portfolios: their deadline is 21 days before the
    // expected completion.
    let (completion, deadline): (NaiveDate, NaiveDate) = sqlx::query_as(
        "SELECT (view->>'expected_completion')::date, deadline FROM rm_portfolios
         WHERE program_id = $1 AND NOT deadline_extended LIMIT 1",
    )
    .bind(w.programs[1].as_uuid())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(completion - deadline, TimeDelta::days(21));

    // Rebuild every read model from position 0 through the offline rebuild (all five at once, as
    // independent projections may), and compare.
    let rebuilds = models.iter().map(|p| {
        let (w, store, pool) = (&w, &store, &pool);
        async move {
            rebuild_from_start(store, &w.db.url, p.as_ref(), 500).await;
            // The rebuild stops where the readable head was; carry on to the end of the log if
            // other tests' transactions held that back.
            catch_up(w, p.as_ref(), 500).await;
            let stored = checkpoint::load(pool, p.name()).await.unwrap().unwrap();
            assert_eq!(stored.events_applied, total, "{}", p.name());
        }
    });
    futures::future::join_all(rebuilds).await;
    let rebuilt = snapshot(&pool, &models).await;
    assert_eq!(live.len(), rebuilt.len());
    for ((table, live_rows), (_, rebuilt_rows)) in live.iter().zip(&rebuilt) {
        assert!(!live_rows.is_empty(), "{table} is empty");
        assert_eq!(
            live_rows.len(),
            rebuilt_rows.len(),
            "{table}: row counts differ"
        );
        for (a, b) in live_rows.iter().zip(rebuilt_rows) {
            assert_eq!(a, b, "{table}: live and rebuilt rows differ");
        }
    }
    w.db.drop().await;
}

// ---------------------------------------------------------------------------------------------
// Time travel.
// ---------------------------------------------------------------------------------------------
