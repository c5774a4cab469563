//! A demo cohort in a fresh database, and the real `cim` binary pointed at it: for the tests of
//! erasure and of the master key.

use chrono::{DateTime, Utc};
use cim::app::{self, CommandHandler};
use cim::log;
use cim::store::EventStore;
use cim_demo as demo;
use std::process::Command;

/// `cim` with this test's database; the master key comes from the same environment (and default
/// data dir) as the one `support` installed in this process.
pub fn cim(url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cim"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("CIM_LOG", "warn")
        .output()
        .unwrap()
}

/// A fresh database with the pilot programs, their demo coordinators and a demo cohort of
/// `students` driven through the rules (`seed` picks who does what).
pub async fn with_cohort(
    students: usize,
    seed: u64,
) -> (
    super::TestDb,
    EventStore,
    demo::CohortSummary,
    DateTime<Utc>,
) {
    let db = super::fresh().await;
    let store = EventStore::new(db.pool.clone(), log::upcasters());
    let handler = CommandHandler::new(store.clone());
    let now = Utc::now();
    app::seed_pilot_programs(&handler, demo::DEMO_ADMIN, now)
        .await
        .unwrap();
    let programs = demo::assign_coordinators(&handler, now).await.unwrap();
    let cohort = demo::drive_cohort(&handler, &programs, students, seed, now)
        .await
        .unwrap();
    (db, store, cohort, now)
}
