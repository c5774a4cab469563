//! `cim ladok check`: is the configured Ladok answering every operation the export worker uses?
//! Read-only: see `src/export/worker/ladok/check.rs`.

use anyhow::Context;
use clap::{Args, Subcommand};

use super::export::ExportArgs;
use crate::export::worker::ladok::check::{self, Outcome};
use crate::export::worker::ladok::{Evidence, LadokClient};

#[derive(Debug, Subcommand)]
pub enum LadokCommand {
    /// With the configured client certificate, call Ladok's authenticated-user endpoint, look up one
    /// student read-only, and say for every configured operation whether its path and media type are
    /// answered. Writes nothing to Ladok. Exits non-zero when an operation is refused.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The student to look up: a 12-digit identity number or a Ladok UID (a test student in Ladok's
    /// test environment, or one the office may read). From the environment, it stays out of the
    /// shell history and the process list.
    #[arg(long, env = "CIM_LADOK_CHECK_STUDENT", hide_env_values = true)]
    pub student: String,
    #[command(flatten)]
    pub export: ExportArgs,
}

pub async fn run(command: LadokCommand) -> anyhow::Result<()> {
    let LadokCommand::Check(args) = command;
    let config = args
        .export
        .ladok_config()
        .context("the Ladok settings (CIM_LADOK_*)")?;
    println!("Ladok at {}", config.base_url);
    let client = LadokClient::new(config)?;
    let lines = check::run(&client, &args.student).await;
    let mut refused = 0;
    for line in &lines {
        let (mark, text) = match &line.outcome {
            Outcome::Answered(t) => ("ok        ", t),
            Outcome::Refused(t) => {
                refused += 1;
                ("REFUSED   ", t)
            }
            Outcome::Unconfirmed(t) => ("unconfirmed", t),
        };
        let evidence = match line.evidence {
            Evidence::Public => "public evidence",
            Evidence::Unverified => "unverified default",
            Evidence::Configured => "configured",
        };
        println!(
            "{mark} {:<18} {:<6} {} [{}] ({evidence}): {text}",
            line.operation.name(),
            line.method,
            line.path,
            line.media_type
        );
    }
    let answered = lines.iter().filter(|l| l.outcome.is_answered()).count();
    println!(
        "{answered} of {} operations answered, {refused} refused; nothing was written",
        lines.len()
    );
    if refused > 0 {
        anyhow::bail!(
            "{refused} Ladok operation(s) refused: fix CIM_LADOK_OPERATIONS before the first run"
        );
    }
    Ok(())
}
