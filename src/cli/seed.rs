//! `cim seed`: register the four pilot programs with the default catalog.

use super::DatabaseArgs;
use crate::app::{self, CommandHandler};
use crate::log;
use crate::store::EventStore;

pub async fn run(args: &DatabaseArgs) -> anyhow::Result<()> {
    let db = super::open_database(args).await?;
    let handler = CommandHandler::new(EventStore::new(db.pool.clone(), log::upcasters()));
    let seeded = app::seed_pilot_programs(&handler, "cim-seed", chrono::Utc::now()).await;
    db.close().await?;
    for program in seeded? {
        println!(
            "{}  {:<40} {} catalog items  ({})",
            program.id, program.code, program.catalog_items, program.name
        );
    }
    Ok(())
}
