//! A real PostgreSQL stopped and started again under a running `cim serve` (API, projection runner
//! and export schedule) while clients keep sending commands: every command answered 2xx is in the
//! log afterwards, the outage is answered 503 with `Retry-After` (never 500, never a hang), readiness
//! tells the truth, and everything recovers by itself, without a restart of the service.

mod support;

use chrono::Utc;
use cim::app::{self, CommandContext, CommandHandler};
use cim::db::embedded::EmbeddedPostgres;
use cim::db::{self, scratch};
use cim::domain::{ProgramCommand, ProgramId, StaffId};
use cim::http::auth::Role;
use cim::http::{self, AppState};
use cim::log;
use cim::projections::read_models;
use cim::store::{ActorRole, EventStore};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use support::embedded::own_cluster;
use support::eventually;
use support::log_checks;
use support::process::{ServeProcess, wait_ready};
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

/// One client's command: a catalog item added over HTTP, with its own request id (which becomes the
/// correlation id of the events it causes) and idempotency key.
#[derive(Debug, Clone)]
struct Sent {
    request_id: Uuid,
    item: String,
    /// The last answer's status; `None` when no answer came within the client's timeout.
    status: Option<u16>,
}

/// How long a client waits for an answer before it counts the request as hung. The server's own
/// bound during an outage is the pool's acquire timeout (5 s); this is far above it, so only a
/// real hang reaches it, also on a slow machine.
const HANG: Duration = Duration::from_secs(30);

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
            .timeout(HANG)
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

/// Adds a catalog item over HTTP as `coordinator`, sending it again (same key) until it is answered
/// 2xx.
async fn add_item(base: &str, coordinator: &str, program: ProgramId, item: &str) {
    let http = reqwest::Client::new();
    let url = format!("{base}/programs/{program}/catalog");
    let mut sent = Sent {
        request_id: Uuid::now_v7(),
        item: item.to_owned(),
        status: None,
    };
    eventually(&format!("{item} is stored"), async || {
        add_over_http(&http, &url, coordinator, &mut sent).await;
        sent.status.is_some_and(|s| (200..300).contains(&s))
    })
    .await;
}

/// Waits until every projection has applied the event that added catalog item `item`. (The clients
/// keep writing meanwhile, so "caught up with the head of the log" may never hold at the instant
/// it is looked at.)
async fn wait_applied(pool: &sqlx::PgPool, item: &str) {
    let projections = read_models::all().len() as i64;
    eventually(&format!("every projection applied {item}"), async || {
        let counts: Result<(i64, i64, i64), _> = sqlx::query_as(
            "WITH added AS (
                 SELECT transaction_id, position FROM events
                 WHERE event_type = 'CatalogItemAdded' AND payload->>'item' = $1
             )
             SELECT (SELECT count(*) FROM added),
                    (SELECT count(*) FROM projection_checkpoints WHERE status = 'live'),
                    (SELECT count(*) FROM projection_checkpoints c, added a
                     WHERE (c.transaction_id::text::xid8, c.position) < (a.transaction_id, a.position))",
        )
        .bind(item)
        .fetch_one(pool)
        .await;
        counts.is_ok_and(|(added, live, behind)| added == 1 && live == projections && behind == 0)
    })
    .await;
}

async fn completed_batches(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM export_batches WHERE completed_at IS NOT NULL")
        .fetch_one(pool)
        .await
        .unwrap_or(-1)
}

async fn wait_for_batches(pool: &sqlx::PgPool, at_least: i64) {
    eventually(
        &format!("the export schedule wrote batch {at_least}"),
        async || completed_batches(pool).await >= at_least,
    )
    .await;
}

/// `cim serve` (the binary, as deployed) on a real cluster that is stopped for several seconds and
/// started again while three clients keep sending commands. Nothing in the service is restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cim_serve_rides_out_a_database_restart_under_load_and_recovers_by_itself() {
    let (_dir, config, cluster, url, pool) = own_cluster("cim-restart-").await;

    let store = EventStore::new(pool.clone(), log::upcasters());
    let handler = CommandHandler::new(store.clone());
    let seeded = app::seed_pilot_programs(&handler, "admin-1", Utc::now())
        .await
        .unwrap();
    let (program, other) = (seeded[0].id, seeded[1].id);
    for id in [program, other] {
        handler
            .program(
                id,
                ProgramCommand::AssignCoordinator {
                    staff: StaffId::parse("coord-x").unwrap(),
                },
                &admin(Uuid::now_v7()),
            )
            .await
            .unwrap();
    }

    // The service with its projection runner and the nightly export, here every second.
    let exports = tempfile::tempdir().unwrap();
    let serve = ServeProcess::builder()
        .database(&url)
        .env("CIM_JWT_DEV_SECRET", support::auth::SECRET)
        .env("CIM_EXPORT_SCHEDULE", "* * * * * *")
        .env("CIM_EXPORT_DIR", exports.path())
        .capture_logs()
        .start();
    let base = serve.base.clone();
    wait_ready(&base).await;
    support::certificates::cohort(&store, 2).await;
    wait_for_batches(&pool, 1).await;

    // Clients keep sending commands from now until after the database is back.
    let coordinator = support::auth::token(Role::Coordinator, "coord-x");
    let catalog = format!("{base}/programs/{program}/catalog");
    let stop = Arc::new(AtomicBool::new(false));
    let clients = start_clients(catalog.clone(), coordinator.clone(), stop.clone());
    add_item(&base, &coordinator, program, "before-restart").await;
    wait_applied(&pool, "before-restart").await;
    assert_eq!(readyz(&base).await.0, 200);

    // The database crashes (`pg_ctl stop -m immediate`: no checkpoint, every session cut, crash
    // recovery at the next start) while commands, projections and the export schedule run: the
    // API answers 503 with Retry-After, not 500 and not a hang. (The test's own pool goes too;
    // the service keeps its own and must cope.)
    pool.close().await;
    support::process::crash_postgres(&config.data_dir).await;
    drop(cluster);
    let admin_token = support::auth::token(Role::Admin, "admin-1");
    let program_url = format!("{base}/programs/{program}");
    let http = reqwest::Client::new();
    let away = http
        .get(&program_url)
        .bearer_auth(&admin_token)
        .timeout(HANG)
        .send()
        .await
        .unwrap();
    assert_eq!(away.status(), 503);
    assert_eq!(away.headers()["retry-after"], "2");
    let problem: serde_json::Value = away.json().await.unwrap();
    assert_eq!(problem["code"], "database_unavailable", "{problem}");
    let command = http
        .post(format!("{program_url}/catalog"))
        .bearer_auth(&coordinator)
        .json(&serde_json::json!({"item": "during-outage", "name": "During the outage"}))
        .timeout(HANG)
        .send()
        .await
        .unwrap();
    assert_eq!(command.status(), 503);
    assert!(command.headers().contains_key("retry-after"));
    // Readiness says so: at once for the database, and once the projection listener has been
    // disconnected for longer than its grace (5 s) for the projections too.
    eventually("/readyz reports the database unreachable", async || {
        let (status, body) = readyz(&base).await;
        status == 503
            && body["status"] == "not ready"
            && body["checks"]["database"] == "unreachable"
    })
    .await;
    eventually("/readyz reports the projection listener lost", async || {
        let (status, body) = readyz(&base).await;
        let projections = body["checks"]["projections"].as_str();
        status == 503 && projections.is_some_and(|reason| reason != "ok")
    })
    .await;

    // It comes back on the same data. Nothing is restarted: the pool, the projection listener and
    // the export schedule reconnect by themselves.
    let cluster = EmbeddedPostgres::start(config).await.unwrap();
    let pool = db::connect(&url, 8).await.unwrap();
    let store = EventStore::new(pool.clone(), log::upcasters());
    eventually("/readyz is ready again", async || {
        readyz(&base).await.0 == 200
    })
    .await;
    let (_, body) = readyz(&base).await;
    assert_eq!(body["checks"]["projections"], "ok", "{body}");
    add_item(&base, &coordinator, other, "after-restart").await;
    wait_applied(&pool, "after-restart").await;
    let back = http
        .get(&program_url)
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 200);

    // The schedule carries on by itself: certificates approved after the outage are exported.
    let batches = completed_batches(&pool).await;
    support::certificates::cohort(&store, 2).await;
    wait_for_batches(&pool, batches + 1).await;

    // Every command a client sent during all this was answered, 2xx or 503 and nothing else; each
    // one answered 2xx is in the log (found by its request id), and the ones answered 503, sent
    // again with their idempotency key, are each stored exactly once.
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
        let status = one
            .status
            .unwrap_or_else(|| panic!("{} got no answer within {HANG:?}", one.item));
        assert!(
            (200..300).contains(&status) || status == 503,
            "{} answered {status}",
            one.item
        );
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
    for one in sent.iter_mut().filter(|s| s.status == Some(503)) {
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

    // Every event, from before, during and after the outage, is applied once by every projection,
    // and nothing is stored in part.
    log_checks::wait_caught_up(&pool, &base).await;
    log_checks::assert_applied_once(&pool).await;
    log_checks::assert_no_partial_command(&pool).await;

    let mut serve = serve;
    serve.signal("TERM");
    let stopped = serve.wait(Duration::from_secs(60));
    assert!(stopped.success(), "cim serve exited with {stopped}");
    let logs = serve.logs();
    assert!(
        logs.contains("database unavailable") && !logs.contains("panicked"),
        "{logs}"
    );
    pool.close().await;
    cluster.stop().await.unwrap();
}
