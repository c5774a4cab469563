//! `cim keys`: the master key that wraps every data subject's key (see the README, "Personal data
//! and erasure").
//!
//! Rotation: `cim keys generate NEW_FILE`, stop every `cim serve`, `cim keys rotate --new-key-file
//! NEW_FILE` (re-wraps every subject key in one transaction), then start with the new key
//! configured (`CIM_MASTER_KEY_FILE=NEW_FILE`, or move it over `<data dir>/master.key`). The old key
//! opens nothing afterwards; until the restart, processes still on it fail to read personal data.

use super::DatabaseArgs;
use crate::crypto::{self, MasterKey, master};
use crate::store::keys::{check_keys, rotate_master_key};
use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write a new random master key to FILE (mode 0600; refuses to overwrite).
    Generate { file: PathBuf },
    /// Check the configured master key against the database (the start-up check), and print its id.
    Check,
    /// Re-wrap every subject key with the master key in NEW_KEY_FILE, in one transaction.
    Rotate {
        #[arg(long)]
        new_key_file: PathBuf,
    },
}

pub async fn run(db_args: &DatabaseArgs, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Generate { file } => {
            let key = MasterKey::generate();
            master::write_new_key_file(&file, &key)?;
            println!("wrote master key {} to {}", key.id(), file.display());
            Ok(())
        }
        KeysCommand::Check => {
            let db = super::open_database(db_args).await?;
            let key = crypto::installed()?;
            let subjects = sqlx::query!(
                r#"SELECT count(*) FILTER (WHERE wrapped_key IS NOT NULL) AS "live!",
                          count(*) FILTER (WHERE wrapped_key IS NULL) AS "erased!"
                   FROM subject_keys"#
            )
            .fetch_one(&db.pool)
            .await?;
            db.close().await?;
            println!(
                "master key {} opens all {} live subject keys ({} erased)",
                key.id(),
                subjects.live,
                subjects.erased
            );
            Ok(())
        }
        KeysCommand::Rotate { new_key_file } => {
            let new = master::read_key_file(&new_key_file)?;
            let db = super::open_database(db_args).await?;
            let old = crypto::installed()?;
            let rotated = rotate_master_key(&db.pool, old, &new).await;
            let checked = match &rotated {
                Ok(_) => check_keys(&db.pool, &new)
                    .await
                    .map_err(anyhow::Error::from),
                Err(_) => Ok(()),
            };
            db.close().await?;
            let rotated = rotated.context("rotation failed; nothing was changed")?;
            checked?;
            println!(
                "re-wrapped {rotated} subject keys from master key {} to {}; start every process with {} now",
                old.id(),
                new.id(),
                new_key_file.display()
            );
            Ok(())
        }
    }
}
