//! Shared by the integration tests: a fresh database per test on a real PostgreSQL server.
//!
//! Which server: `DATABASE_URL` when set; otherwise the machine's local server on 127.0.0.1:5432 (user
//! `postgres`); otherwise an embedded cluster that the tests start from the machine's PostgreSQL
//! binaries under `target/`. Every test gets its own database, so tests never see each other's data and
//! run in parallel.
#![allow(dead_code)]

pub mod auth;
pub mod certificates;
pub mod cohort;
pub mod console;
pub mod embedded;
pub mod flow;
pub mod http;
pub mod idp;
pub mod ladok;
pub mod log_checks;
pub mod pg_tools;
pub mod process;
pub mod recordings;
pub mod routes;
pub mod scan;
pub mod server;
pub mod smtp;
pub mod texts;

mod database;

// Not every test binary uses every helper.
#[allow(unused_imports)]
pub use database::{
    TestDb, eventually, fresh, fresh_unmigrated_name, install_master_key, server_url,
};

use sqlx::PgPool;

/// Waits until every committed event is readable by a tailing consumer. The tailing bound is the
/// oldest transaction running anywhere in the cluster, so a busy neighbour (another test's database)
/// can hold it back for a moment; a consumer would then rightly find nothing yet.
pub async fn settle(store: &cim::store::EventStore) {
    for _ in 0..600 {
        let committed: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(store.pool())
            .await
            .unwrap();
        let readable = store
            .read_after(cim::store::Checkpoint::START, 1_000_000)
            .await
            .unwrap();
        if readable.len() as i64 >= committed {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the log did not settle within 30 s");
}

/// How many events of `event_type` the log holds.
pub async fn count_events(pool: &PgPool, event_type: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = $1")
        .bind(event_type)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The context of a command by the admin `admin-1`, now, with ids of its own.
pub fn admin_context() -> cim::app::CommandContext {
    cim::app::CommandContext {
        actor_id: "admin-1".into(),
        role: cim::store::ActorRole::Admin,
        correlation_id: uuid::Uuid::now_v7(),
        command_id: uuid::Uuid::now_v7(),
        now: chrono::Utc::now(),
    }
}

/// Erases `student` as an admin does through the route (`app::erase`, with a reason), removing
/// their media from `media`.
pub async fn erase_student(
    store: &cim::store::EventStore,
    media: &cim::media::MediaStore,
    student: cim::domain::StudentUid,
) {
    use cim::app::ErasureRequest;
    use cim::domain::values::NonEmptyText;
    let request = ErasureRequest {
        student_uid: student,
        by: cim::domain::StaffId::parse("admin-1").unwrap(),
        reason: NonEmptyText::parse("case 2026-17", "reason", 500).unwrap(),
    };
    let ctx = admin_context();
    let commands = cim::app::CommandHandler::new(store.clone());
    cim::app::erase(&commands, media, &request, &ctx)
        .await
        .unwrap();
}

/// The video platform host of the staffed programs' rules.
pub const VIDEO_HOST: &str = "play.ki.se";

/// The pilot programs, seeded as `cim seed` does, with `coordinators[i]` assigned to the i-th of
/// them by an admin, and [`VIDEO_HOST`] as their video platform. Returns every seeded program's id,
/// in seeding order.
pub async fn staffed_programs(
    store: &cim::store::EventStore,
    coordinators: &[&str],
) -> Vec<cim::domain::ProgramId> {
    use cim::app::{self, CommandContext, CommandHandler};
    use cim::domain::{ProgramCommand, StaffId};
    let handler = CommandHandler::new(store.clone());
    let now = chrono::Utc::now();
    let seeded = app::seed_pilot_programs(&handler, "admin-1", now)
        .await
        .unwrap();
    for (program, staff) in seeded.iter().zip(coordinators) {
        let ctx = CommandContext {
            actor_id: "admin-1".into(),
            role: cim::store::ActorRole::Admin,
            correlation_id: uuid::Uuid::now_v7(),
            command_id: uuid::Uuid::now_v7(),
            now,
        };
        let staff = StaffId::parse(staff).unwrap();
        handler
            .program(
                program.id,
                ProgramCommand::AssignCoordinator { staff },
                &ctx,
            )
            .await
            .unwrap();
        // The university's video platform, which oral reflections may link to instead of uploading.
        let rules = cim::domain::ProgramRules {
            video_platform_hosts: vec![VIDEO_HOST.to_owned()],
            ..Default::default()
        };
        let ctx = CommandContext {
            command_id: uuid::Uuid::now_v7(),
            ..ctx
        };
        handler
            .program(program.id, ProgramCommand::ChangeRules { rules }, &ctx)
            .await
            .unwrap();
    }
    seeded.into_iter().map(|p| p.id).collect()
}

/// A valid identity number (12 digits) not handed out before in this test process: one number
/// belongs to one student across the service, so every new test student needs their own.
/// Distinct for the first 6 300 calls; apart from [`flow::identity_number`]'s (another year).
pub fn unique_identity_number() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let eleven = format!("199602{:02}{:03}", 1 + n % 28, 100 + n % 900);
    cim::domain::values::IdentityNumber::with_check_digit(&eleven)
        .unwrap()
        .as_str()
        .to_owned()
}
