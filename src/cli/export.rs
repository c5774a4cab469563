//! `cim export run`, and the export configuration shared with `cim serve` (see src/export/worker/).

use super::DatabaseArgs;
use crate::db::embedded;
use crate::export::worker::ladok::{LadokConfig, LadokOperations};
use crate::export::worker::schedule::{self, DEFAULT_SCHEDULE, DEFAULT_TIMEZONE, Schedule};
use crate::export::worker::{RunOutcome, WorkerConfig};
use crate::log;
use crate::store::EventStore;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Run the export worker once, now: finish an interrupted batch, write a batch of the certificates
    /// approved or revoked since the last one, and (with --ladok-enabled true, or CIM_LADOK_ENABLED=true) deliver to Ladok. Does nothing
    /// while another process is exporting.
    Run(ExportArgs),
}

/// Where batches go and how Ladok is reached. Used by `cim export run` and `cim serve`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Folder of the batch folders (one `{batch id}/` per batch). Default: `exports/` in the data
    /// directory (--data-dir / CIM_DATA_DIR, or its default).
    #[arg(long, env = "CIM_EXPORT_DIR")]
    pub export_dir: Option<PathBuf>,
    /// Deliver certificates to Ladok's REST API (true/false). Batches are written either way.
    #[arg(long, env = "CIM_LADOK_ENABLED", default_value_t = false, action = clap::ArgAction::Set)]
    pub ladok_enabled: bool,
    /// Ladok's API base URL (production https://api.ladok.se).
    #[arg(
        long,
        env = "CIM_LADOK_BASE_URL",
        default_value = "https://api.test.ladok.se"
    )]
    pub ladok_base_url: url::Url,
    /// The client certificate issued by Ladok: a PKCS#12 (.p12/.pfx) file.
    #[arg(long, env = "CIM_LADOK_PKCS12")]
    pub ladok_pkcs12: Option<PathBuf>,
    /// The PKCS#12 file's passphrase.
    #[arg(long, env = "CIM_LADOK_PKCS12_PASSWORD", hide_env_values = true)]
    pub ladok_pkcs12_password: Option<String>,
    /// An extra trusted root certificate (PEM file) for Ladok's server certificate, e.g. a fake
    /// Ladok's CA.
    #[arg(long, env = "CIM_LADOK_CA")]
    pub ladok_ca: Option<PathBuf>,
    /// A JSON file overriding entries of the table of Ladok operations (method, path, media type
    /// per operation; see docs/ladok.md). Without it, the documented defaults are used.
    #[arg(long, env = "CIM_LADOK_OPERATIONS")]
    pub ladok_operations: Option<PathBuf>,
    /// Other merits asked for per page when a student's merits are read.
    #[arg(long, env = "CIM_LADOK_PAGE_SIZE", default_value_t = 100)]
    pub ladok_page_size: u32,
    /// Timeout of one Ladok request, in seconds.
    #[arg(long, env = "CIM_LADOK_TIMEOUT_SECS", default_value_t = 30)]
    pub ladok_timeout_secs: u64,
}

/// When `cim serve` runs the worker.
#[derive(Debug, Clone, Args)]
pub struct ScheduleArgs {
    /// Cron expression with seconds (sec min hour day-of-month month day-of-week).
    #[arg(long, env = "CIM_EXPORT_SCHEDULE", default_value = DEFAULT_SCHEDULE)]
    pub export_schedule: String,
    /// IANA time zone of the schedule.
    #[arg(long, env = "CIM_EXPORT_TIMEZONE", default_value = DEFAULT_TIMEZONE)]
    pub export_timezone: chrono_tz::Tz,
    /// Run the export scheduler in `cim serve` (true/false).
    #[arg(long, env = "CIM_EXPORT_SCHEDULER", default_value_t = true, action = clap::ArgAction::Set)]
    pub export_scheduler: bool,
}

impl ScheduleArgs {
    pub fn schedule(&self) -> Schedule {
        Schedule {
            cron: self.export_schedule.clone(),
            timezone: self.export_timezone,
        }
    }
}

impl ExportArgs {
    /// The worker's configuration; reads the PKCS#12 and CA files when Ladok is enabled.
    pub fn worker_config(&self, db_args: &DatabaseArgs) -> anyhow::Result<WorkerConfig> {
        let export_dir = self.export_dir.clone().unwrap_or_else(|| {
            db_args
                .data_dir
                .clone()
                .unwrap_or_else(embedded::default_data_dir)
                .join("exports")
        });
        let mut config = WorkerConfig::new(export_dir);
        if self.ladok_enabled {
            config.ladok = Some(self.ladok_config()?);
        }
        Ok(config)
    }

    /// The Ladok client's configuration (whether or not delivery is switched on).
    pub fn ladok_config(&self) -> anyhow::Result<LadokConfig> {
        let Some(pkcs12) = &self.ladok_pkcs12 else {
            bail!("CIM_LADOK_ENABLED needs the client certificate: set CIM_LADOK_PKCS12");
        };
        let pkcs12_der =
            std::fs::read(pkcs12).with_context(|| format!("cannot read {}", pkcs12.display()))?;
        let mut config = LadokConfig::new(
            self.ladok_base_url.clone(),
            pkcs12_der,
            self.ladok_pkcs12_password.clone().unwrap_or_default(),
        );
        if let Some(ca) = &self.ladok_ca {
            config.extra_root_pem =
                Some(std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?);
        }
        if let Some(file) = &self.ladok_operations {
            let json = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            config.operations = LadokOperations::with_overrides(&json)
                .with_context(|| format!("in {}", file.display()))?;
        }
        config.page_size = self.ladok_page_size;
        config.timeout = Duration::from_secs(self.ladok_timeout_secs);
        Ok(config)
    }
}

pub async fn run(db_args: &DatabaseArgs, command: ExportCommand) -> anyhow::Result<()> {
    let ExportCommand::Run(args) = command;
    let config = args.worker_config(db_args)?;
    let db = super::open_database(db_args).await?;
    let store = EventStore::new(db.pool.clone(), log::upcasters());
    let result = schedule::run_export(&store, &config).await;
    // Stop the embedded cluster (if we started it) also after a failure.
    let closed = db.close().await;
    match result.context("the export run failed")? {
        RunOutcome::Busy => println!("another process is exporting; nothing done"),
        RunOutcome::Ran {
            completed,
            files_written,
            delivered,
            failed,
        } => {
            for batch in &completed {
                println!(
                    "batch {batch} written to {}",
                    config.batch_dir(*batch).display()
                );
            }
            println!(
                "{} batch(es) completed, {files_written} file(s) written, {delivered} delivered to Ladok, {failed} delivery failure(s)",
                completed.len()
            );
        }
    }
    closed?;
    Ok(())
}
