//! What operations watch: `/metrics` and `/readyz` report every moving part from the database (the
//! export worker's runs, the certificates waiting for Ladok, the outbox, the projections), and
//! `/readyz` names the part that is behind without taking the process out of rotation.

use crate::support;

use support::certificates::cohort;
use support::server::{TestServer, serve};

use cim::export::worker::WorkerConfig;
use cim::export::worker::schedule::run_export;
use cim::http::AppState;
use cim::log;
use cim::projections::{self, ProjectionRunner};
use cim::store::EventStore;
use reqwest::StatusCode;
use serde_json::Value;

/// `/metrics` as (sample without its value → value), for the samples of our families.
async fn metrics(base: &str) -> Vec<(String, f64)> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (sample, value) = l.rsplit_once(' ')?;
            Some((sample.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The value of `sample` (name and labels exactly as rendered), if reported.
fn value(samples: &[(String, f64)], sample: &str) -> Option<f64> {
    samples.iter().find(|(s, _)| s == sample).map(|(_, v)| *v)
}

async fn readyz(base: &str) -> (StatusCode, Value) {
    let response = reqwest::get(format!("{base}/readyz")).await.unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn metrics_and_readiness_follow_the_export_runs_the_ladok_backlog_and_the_outbox() {
    let server = TestServer::start().await;
    let base = server.base.clone();
    let pool = server.db.pool.clone();
    let store = EventStore::new(pool.clone(), log::upcasters());
    cohort(&store, 2).await;
    support::log_checks::wait_caught_up(&pool, &base).await;

    // Nothing run yet: no last success (not a 0, which an alert would read as 1970), nothing failed.
    let m = metrics(&base).await;
    assert_eq!(value(&m, "cim_health_readings_ok"), Some(1.0));
    assert_eq!(value(&m, "cim_export_last_success_timestamp_seconds"), None);
    assert_eq!(value(&m, "cim_export_consecutive_failures"), Some(0.0));
    assert_eq!(
        value(&m, "cim_export_runs_total{outcome=\"failed\"}"),
        Some(0.0)
    );
    // Both approved certificates wait for Ladok (delivery is off here), since their approval.
    assert_eq!(
        value(
            &m,
            "cim_ladok_waiting_certificates{ladok_status=\"pending\"}"
        ),
        Some(2.0)
    );
    assert!(value(&m, "cim_ladok_oldest_waiting_seconds").unwrap() > 0.0);
    let head: i64 = sqlx::query_scalar("SELECT max(position) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        value(&m, "cim_projection_position{projection=\"registrar\"}"),
        Some(head as f64)
    );
    assert_eq!(
        value(&m, "cim_projection_lag_seconds{projection=\"registrar\"}"),
        Some(0.0)
    );
    let (status, body) = readyz(&base).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["export_worker"], "ok", "{body}");
    assert_eq!(body["degraded"], serde_json::json!([]), "{body}");

    // Two runs fail (the export folder is a file): counted, and /readyz says so, still ready.
    let not_a_dir = server.export_dir.path().join("a-file");
    std::fs::write(&not_a_dir, b"").unwrap();
    for _ in 0..2 {
        assert!(
            run_export(&store, &WorkerConfig::new(&not_a_dir))
                .await
                .is_err()
        );
    }
    let m = metrics(&base).await;
    assert_eq!(value(&m, "cim_export_consecutive_failures"), Some(2.0));
    assert_eq!(
        value(&m, "cim_export_runs_total{outcome=\"failed\"}"),
        Some(2.0)
    );
    assert!(value(&m, "cim_export_last_run_timestamp_seconds").is_some());
    assert_eq!(value(&m, "cim_export_last_success_timestamp_seconds"), None);
    let (status, body) = readyz(&base).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a failing export keeps the API in rotation: {body}"
    );
    assert_eq!(body["status"], "ready");
    assert_eq!(
        body["checks"]["export_worker"],
        "never succeeded; 2 failed runs in a row (last: io)"
    );
    assert_eq!(body["degraded"], serde_json::json!(["export_worker"]));

    // A successful run clears the failures and is the last success.
    let before = chrono::Utc::now().timestamp() as f64 - 1.0;
    run_export(&store, &WorkerConfig::new(server.export_dir.path()))
        .await
        .unwrap();
    let m = metrics(&base).await;
    assert_eq!(value(&m, "cim_export_consecutive_failures"), Some(0.0));
    assert!(value(&m, "cim_export_last_success_timestamp_seconds").unwrap() >= before);
    assert_eq!(
        value(&m, "cim_export_runs_total{outcome=\"succeeded\"}"),
        Some(1.0)
    );
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT outcome, error_code FROM export_runs ORDER BY finished_at")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![
            ("failed".to_owned(), Some("io".to_owned())),
            ("failed".to_owned(), Some("io".to_owned())),
            ("succeeded".to_owned(), None),
        ]
    );
    let (_, body) = readyz(&base).await;
    assert_eq!(body["checks"]["export_worker"], "ok", "{body}");

    // The outbox, filled by hand as the notifications' sender would leave it: one message pending
    // for two hours after a failed attempt, one given up.
    sqlx::query(
        "INSERT INTO outbox (dedup_key, kind, recipient_kind, recipient, message_id, state,
                             attempts, created_at)
         VALUES ('ops-test-1', 'batch_ready', 'registrar', '', '<1@test>', 'pending', 1,
                 now() - interval '2 hours'),
                ('ops-test-2', 'batch_ready', 'registrar', '', '<2@test>', 'failed', 5, now())",
    )
    .execute(&pool)
    .await
    .unwrap();
    let m = metrics(&base).await;
    assert_eq!(
        value(&m, "cim_outbox_messages{state=\"pending\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "cim_outbox_messages{state=\"failed\"}"),
        Some(1.0)
    );
    assert_eq!(value(&m, "cim_outbox_messages{state=\"sent\"}"), Some(0.0));
    assert_eq!(value(&m, "cim_outbox_retrying_messages"), Some(1.0));
    assert!(value(&m, "cim_outbox_oldest_pending_seconds").unwrap() >= 7200.0);
    let (status, body) = readyz(&base).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["checks"]["outbox"],
        "1 messages pending (1 retrying), the oldest for 2 h; 1 messages failed in the last day"
    );
    assert_eq!(body["degraded"], serde_json::json!(["outbox"]));
    server.stop().await;
}

#[tokio::test]
async fn readyz_names_the_projection_that_lags_and_stays_ready() {
    let db = support::fresh().await;
    let store = EventStore::new(db.pool.clone(), log::upcasters());
    // The read models are built, then nobody advances them.
    let runner =
        ProjectionRunner::start(store.clone(), db.pool.clone(), &db.url, projections::all());
    support::eventually("the read models are built", async || {
        let live: i64 =
            sqlx::query_scalar("SELECT count(*) FROM projection_checkpoints WHERE status = 'live'")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        live == projections::all().len() as i64
    })
    .await;
    runner.shutdown().await;
    let base = serve(AppState::new(db.pool.clone())).await;
    let (status, body) = readyz(&base).await;
    assert_eq!(
        (status, &body["checks"]["projection_lag"]),
        (StatusCode::OK, &"ok".into())
    );

    // One approval, recorded ten minutes ago as far as the log says, that no read model applied.
    cohort(&store, 1).await;
    sqlx::query("UPDATE events SET recorded_at = now() - interval '10 minutes'")
        .execute(&db.pool)
        .await
        .unwrap();
    let (status, body) = readyz(&base).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "lag is reported, not a reason to leave rotation: {body}"
    );
    let lag = body["checks"]["projection_lag"].as_str().unwrap();
    assert!(
        lag.contains("registrar is 1 events behind, the oldest recorded 10 min ago"),
        "{lag}"
    );
    assert!(
        body["degraded"]
            .as_array()
            .unwrap()
            .contains(&"projection_lag".into()),
        "{body}"
    );
    let m = metrics(&base).await;
    assert_eq!(
        value(&m, "cim_projection_lag_events{projection=\"registrar\"}"),
        Some(1.0)
    );
    assert!(value(&m, "cim_projection_lag_seconds{projection=\"registrar\"}").unwrap() >= 600.0);
    assert_eq!(
        value(&m, "cim_projection_rebuilding{projection=\"registrar\"}"),
        Some(0.0)
    );
    db.drop().await;
}
