//! A real PostgreSQL restart under a running projection runner, and readiness that tells the truth:
//! not ready while the database is away or unmigrated, ready again afterwards, nothing lost.

mod support;

use chrono::Utc;
use cim::app::{self, CommandContext, CommandHandler};
use cim::db::embedded::{EmbeddedConfig, EmbeddedPostgres};
use cim::db::{self, scratch};
use cim::domain::values::NonEmptyText;
use cim::domain::{CatalogItemId, ProgramCommand};
use cim::http::auth::Role;
use cim::http::{self, AppState};
use cim::projections::{ProjectionRunner, RunnerConfig, Scope, read_models};
use cim::store::{ActorRole, EventStore};
use std::os::unix::fs::PermissionsExt;
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
    let coordinator = support::auth::token(Role::Coordinator, "coord-x", &[seeded[0].id]);
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

    // Nothing accepted before the outage is lost, and both commands reached the read models.
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_audit")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(events, audited);

    runner.shutdown().await;
    pool.close().await;
    cluster.stop().await.unwrap();
}
