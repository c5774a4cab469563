//! `cim migrate`: bring the schema up to date and exit.

use super::DatabaseArgs;
use crate::db::Database;

pub async fn run(args: &DatabaseArgs) -> anyhow::Result<()> {
    // Opening migrates: that is the whole job.
    let db = Database::open(&args.settings()).await?;
    tracing::info!("migrations applied");
    db.close().await?;
    Ok(())
}
