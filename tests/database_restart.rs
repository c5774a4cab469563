//! A real PostgreSQL stopped and started again under a running API, projection runner and export
//! schedule while clients keep sending commands: every command answered 2xx is in the log afterwards,
//! the outage is answered 503 with `Retry-After` (never 500, never a hang), readiness tells the truth,
//! and everything recovers by itself, without a restart of the service.

mod support;

use chrono::Utc;
use cim::app::{self, CommandContext, CommandHandler};
use cim::db::embedded::{EmbeddedConfig, EmbeddedPostgres};
use cim::db::{self, scratch};
use cim::domain::values::NonEmptyText;
use cim::domain::{CatalogItemId, ProgramCommand, StaffId};
use cim::export::worker::WorkerConfig;
use cim::export::worker::schedule::{ExportScheduler, Schedule};
use cim::http::auth::Role;
use cim::http::{self, AppState};
use cim::projections::{ProjectionRunner, RunnerConfig, Scope, read_models};
use cim::store::{ActorRole, EventStore};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

async fn serve(state: AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, http::router(state)).await });
    format!("http://{addr}")
}

async fn readyz(base: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(format!("{base}/readyz")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn readyz_is_not_ready_until_migrations_are_applied() {
    let name = support::fresh_unmigrated_name().await;
    let url = scratch::with_database(support::server_url().await, &name).unwrap();
    let pool = db::connect(&url, 4).await.unwrap();
    let base = serve(AppState::new(pool.clone())).await;

    let (status, body) = readyz(&base).await;
    assert_eq!(status, 503);
    assert_eq!(body["checks"]["database"], "migrations pending");

    db::migrate(&pool).await.unwrap();
    let (status, body) = readyz(&base).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
    pool.close().await;
    scratch::drop_database(&url, &name).await.unwrap();
}

fn admin(command_id: Uuid) -> CommandContext {
    CommandContext {
        actor_id: "admin-1".into(),
        role: ActorRole::Admin,
        correlation_id: Uuid::now_v7(),
        command_id,
        now: Utc::now(),
    }
}

/// Retries a command while the database is coming back (the same command id, so at most once).
async fn add_item(
    handler: &CommandHandler,
    program: cim::domain::ProgramId,
    item: &str,
) -> cim::store::AppendOutcome {
    let command_id = Uuid::now_v7();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let command = ProgramCommand::AddCatalogItem {
            item: CatalogItemId::parse(item).unwrap(),
            name: NonEmptyText::parse(&format!("Activity {item}"), "name", 200).unwrap(),
        };
        match handler.program(program, command, &admin(command_id)).await {
            Ok(handled) => return handled.outcome.unwrap(),
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the command never succeeded after the restart: {e}"),
        }
    }
}

/// One client's command: a catalog item added over HTTP, with its own request id (which becomes the
/// correlation id of the events it causes) and idempotency key.
#[derive(Debug, Clone)]
struct Sent {
    request_id: Uuid,
    item: String,
    status: Option<u16>,
}

/// Sends it; a 409 (the three clients' commands raced on the program's stream twice in a row) is
/// sent again with the same key, as the API asks clients to.
async fn add_over_http(http: &reqwest::Client, url: &str, token: &str, sent: &mut Sent) {
    for _ in 0..20 {
        let answer = http
            .post(url)
            .bearer_auth(token)
            .header("Idempotency-Key", &sent.item)
            .header("X-Request-Id", sent.request_id.to_string())
            .json(&serde_json::json!({"item": sent.item, "name": format!("Load {}", sent.item)}))
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        sent.status = answer.ok().map(|a| a.status().as_u16());
        if sent.status != Some(409) {
            return;
        }
    }
}

/// Clients that add catalog items one after the other until `stop` is set; returns every command sent.
fn start_clients(
    url: String,
    token: String,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<Sent>>> {
    (0..3)
        .map(|client| {
            let (url, token, stop) = (url.clone(), token.clone(), stop.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut sent = Vec::new();
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let mut one = Sent {
                        request_id: Uuid::now_v7(),
                        item: format!("load-{client}-{n}"),
                        status: None,
                    };
                    add_over_http(&http, &url, &token, &mut one).await;
                    sent.push(one);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                sent
            })
        })
        .collect()
}

async fn completed_batches(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM export_batches WHERE completed_at IS NOT NULL")
        .fetch_one(pool)
        .await
        .unwrap_or(-1)
}

async fn wait_for_batches(pool: &sqlx::PgPool, at_least: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while completed_batches(pool).await < at_least {
        assert!(
            Instant::now() < deadline,
            "the export schedule never wrote batch {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_survives_a_database_restart_and_readiness_follows_it() {
    let dir = tempfile::Builder::new()
        .prefix("cim-restart-")
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
    let handler = CommandHandler::new(store.clone());
    let seeded = app::seed_pilot_programs(&handler, "admin-1", Utc::now())
        .await
        .unwrap();
    let runner_config = RunnerConfig {
        readiness_grace: Duration::from_millis(500),
        ..RunnerConfig::default()
    };
    let runner = ProjectionRunner::start_with(
        runner_config,
        store.clone(),
        pool.clone(),
        &url,
        read_models::all(),
    );
    let state = AppState::with_projections(pool.clone(), runner.clone())
        .with_verifier(support::auth::dev_verifier());
    let base = serve(state).await;
    // The nightly export, here every second, on the same store.
    let exports = tempfile::tempdir().unwrap();
    let every_second = Schedule {
        cron: "* * * * * *".to_owned(),
        timezone: chrono_tz::Europe::Stockholm,
    };
    let scheduler = ExportScheduler::start(
        store.clone(),
        WorkerConfig::new(exports.path()),
        &every_second,
    )
    .await
    .unwrap();
    support::certificates::cohort(&store, 2).await;
    wait_for_batches(&pool, 1).await;

    // Clients keep sending commands from now until after the database is back.
    handler
        .program(
            seeded[0].id,
            ProgramCommand::AssignCoordinator {
                staff: StaffId::parse("coord-x").unwrap(),
            },
            &admin(Uuid::now_v7()),
        )
        .await
        .unwrap();
    let coordinator = support::auth::token(Role::Coordinator, "coord-x", &[seeded[0].id]);
    let catalog = format!("{base}/programs/{}/catalog", seeded[0].id);
    let stop = Arc::new(AtomicBool::new(false));
    let clients = start_clients(catalog.clone(), coordinator.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;

    let before = add_item(&handler, seeded[0].id, "before-restart").await;
    runner
        .wait_for(Scope::All, before.checkpoint, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(readyz(&base).await.0, 200);

    // The database goes away: readiness must say so (not hang, not claim ready), and the API answers
    // 503 with Retry-After, not 500.
    cluster.stop().await.unwrap();
    let admin_token = support::auth::token(Role::Admin, "admin-1", &[]);
    let program = format!("{base}/programs/{}", seeded[0].id);
    let http = reqwest::Client::new();
    let away = http
        .get(&program)
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(away.status(), 503);
    assert_eq!(away.headers()["retry-after"], "2");
    let problem: serde_json::Value = away.json().await.unwrap();
    assert_eq!(problem["code"], "database_unavailable", "{problem}");
    let command = http
        .post(format!("{program}/catalog"))
        .bearer_auth(&coordinator)
        .json(&serde_json::json!({"item": "during-outage", "name": "During the outage"}))
        .send()
        .await
        .unwrap();
    assert_eq!(command.status(), 503);
    assert!(command.headers().contains_key("retry-after"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = readyz(&base).await;
        if status == 503 {
            assert_ne!(body["status"], "ready");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz kept answering {status} with the database down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(runner.readiness().is_err() || readyz(&base).await.0 == 503);

    // It comes back on the same data: the runner reconnects by itself and catches up.
    let cluster = EmbeddedPostgres::start(config).await.unwrap();
    let after = add_item(&handler, seeded[1].id, "after-restart").await;
    runner
        .wait_for(Scope::All, after.checkpoint, Duration::from_secs(60))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while readyz(&base).await.0 != 200 {
        assert!(
            Instant::now() < deadline,
            "/readyz never became ready again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(runner.readiness().is_ok());
    let back = http
        .get(&program)
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 200);

    // The schedule carries on by itself: certificates approved after the outage are exported.
    let batches = completed_batches(&pool).await;
    support::certificates::cohort(&store, 2).await;
    wait_for_batches(&pool, batches + 1).await;

    // Every command a client sent during all this: each one answered 2xx is in the log (found by its
    // request id), nothing was answered with another 5xx than 503, and the unanswered ones, retried
    // with their idempotency key, are each stored exactly once.
    stop.store(true, Ordering::Relaxed);
    let mut sent: Vec<Sent> = Vec::new();
    for client in clients {
        sent.extend(client.await.unwrap());
    }
    let refused_during_outage = sent.iter().filter(|s| s.status == Some(503)).count();
    assert!(
        refused_during_outage > 0,
        "no client command fell into the outage"
    );
    for one in &sent {
        if let Some(status) = one.status {
            assert!(
                (200..300).contains(&status) || status == 503,
                "{} answered {status}",
                one.item
            );
        }
    }
    let logged: std::collections::HashSet<Uuid> =
        sqlx::query_scalar("SELECT correlation_id FROM events")
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    for one in sent.iter().filter(|s| s.status.is_some_and(|c| c < 300)) {
        assert!(
            logged.contains(&one.request_id),
            "{} was answered 2xx but is not in the log",
            one.item
        );
    }
    let http = reqwest::Client::new();
    for one in sent
        .iter_mut()
        .filter(|s| s.status.is_none_or(|c| c >= 300))
    {
        add_over_http(&http, &catalog, &coordinator, one).await;
        assert!(one.status.is_some_and(|c| c < 300), "retry of {one:?}");
    }
    let items: Vec<String> = sqlx::query_scalar(
        "SELECT payload->>'item' FROM events WHERE event_type = 'CatalogItemAdded' \
         AND payload->>'item' LIKE 'load-%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let distinct: std::collections::HashSet<&String> = items.iter().collect();
    assert_eq!(
        (items.len(), distinct.len()),
        (sent.len(), sent.len()),
        "every client command stored exactly once"
    );
    let last = store.head().await.unwrap();
    runner
        .wait_for(Scope::All, last, Duration::from_secs(60))
        .await
        .unwrap();

    // Nothing accepted before the outage is lost, and every command reached the read models.
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_audit")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(events, audited);

    scheduler.shutdown().await;
    runner.shutdown().await;
    pool.close().await;
    cluster.stop().await.unwrap();
}
