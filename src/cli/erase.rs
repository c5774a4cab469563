//! `cim erase`: erase a student's personal data (the same as `POST /students/{uid}/erasure`).

use super::DatabaseArgs;
use crate::app::{self, CommandContext, ErasureRequest};
use crate::domain::values::NonEmptyText;
use crate::domain::{StaffId, StudentUid};
use crate::log;
use crate::media::MediaStore;
use crate::store::{ActorRole, EventStore};
use anyhow::Context;
use clap::Args;
use uuid::Uuid;

#[derive(Debug, Args)]
pub struct EraseArgs {
    /// The student's Ladok UID.
    #[arg(long)]
    pub student: Uuid,
    /// Why (a case reference; it is kept in the log for good, so no personal details).
    #[arg(long)]
    pub reason: String,
    /// The administrator who erases (recorded as the events' actor).
    #[arg(long)]
    pub by: String,
}

pub async fn run(db_args: &DatabaseArgs, args: EraseArgs) -> anyhow::Result<()> {
    let request = ErasureRequest {
        student_uid: StudentUid::new(args.student),
        by: StaffId::parse(&args.by).map_err(|e| anyhow::anyhow!("--by: {e}"))?,
        reason: NonEmptyText::parse(&args.reason, "reason", app::erasure::REASON_MAX_LEN)
            .map_err(|e| anyhow::anyhow!("--reason: {e}"))?,
    };
    let db = super::open_database(db_args).await?;
    let store = EventStore::new(db.pool.clone(), log::upcasters());
    let ctx = CommandContext {
        actor_id: request.by.as_str().to_owned(),
        role: ActorRole::Admin,
        correlation_id: Uuid::now_v7(),
        command_id: Uuid::now_v7(),
        now: chrono::Utc::now(),
    };
    let commands = app::CommandHandler::new(store);
    let erased = app::erase(&commands, &MediaStore::from_env(), &request, &ctx).await;
    db.close().await?;
    let erased = erased.context("erasure failed")?;
    println!("{}", serde_json::to_string_pretty(&erased)?);
    Ok(())
}
