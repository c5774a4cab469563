//! The `cim` command line: one binary, one subcommand per job. Every option can also come from the
//! environment variable named in its help.

mod console;
mod credentials;
mod erase;
mod export;
mod keys;
mod ladok;
mod migrate;
mod notify;
mod projections;
mod seed;
mod serve;
pub mod token;

use crate::crypto::{self, MasterKeySettings, MasterKeySource};
use crate::db::{Database, DatabaseSettings, embedded};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "cim",
    version,
    about = "Certificate of International Merits: event-sourced backend and Ladok export worker",
    long_about = "Certificate of International Merits: event-sourced backend and Ladok export worker.\n\n\
                  Without DATABASE_URL, cim runs on a private PostgreSQL cluster of its own in --data-dir, \
                  made from the machine's PostgreSQL binaries."
)]
pub struct Cli {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API, the projection runner and the export scheduler in one process.
    Serve(Box<serve::ServeArgs>),
    /// Apply database migrations and exit.
    Migrate,
    /// Register the four pilot programs with the default activity catalog (safe to run again).
    Seed,
    /// Inspect and rebuild the read models (projections).
    #[command(subcommand)]
    Projections(projections::ProjectionsCommand),
    /// Print a development bearer token signed with the development secret (CIM_JWT_DEV_SECRET).
    Token(token::TokenArgs),
    /// Export approved and revoked certificates for the registrar and Ladok.
    #[command(subcommand)]
    Export(export::ExportCommand),
    /// Check the Ladok configuration against Ladok itself, read-only.
    #[command(subcommand)]
    Ladok(ladok::LadokCommand),
    /// Erase a student's personal data (GDPR): delete their key and uploads, record who and why.
    Erase(erase::EraseArgs),
    /// The master key that wraps the personal-data keys: generate, check, rotate.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL server to use, e.g. postgres://postgres@127.0.0.1:5432/cim. Without it, cim starts
    /// and manages its own embedded cluster in --data-dir.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Home of the embedded cluster (data, socket, log). Default: /var/lib/cim as root, else
    /// $XDG_DATA_HOME/cim.
    #[arg(long, env = "CIM_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Folder holding initdb, pg_ctl and postgres, when they are neither on PATH nor under
    /// /usr/lib/postgresql/*/bin.
    #[arg(long, env = "CIM_PG_BIN_DIR", global = true)]
    pub pg_bin_dir: Option<PathBuf>,
    /// Size of the connection pool.
    #[arg(
        long,
        env = "CIM_DB_MAX_CONNECTIONS",
        default_value_t = 32,
        global = true
    )]
    pub db_max_connections: u32,
    /// File holding the master key (base64 of 32 bytes) that wraps the personal-data keys. The key
    /// itself may instead be given in CIM_MASTER_KEY (environment only). Default: <data dir>/master.key,
    /// generated on first start.
    #[arg(long, env = "CIM_MASTER_KEY_FILE", global = true)]
    pub master_key_file: Option<PathBuf>,
}

impl DatabaseArgs {
    pub fn settings(&self) -> DatabaseSettings {
        DatabaseSettings {
            database_url: self.database_url.clone().filter(|u| !u.trim().is_empty()),
            data_dir: self
                .data_dir
                .clone()
                .unwrap_or_else(embedded::default_data_dir),
            pg_bin_dir: self.pg_bin_dir.clone(),
            max_connections: self.db_max_connections,
        }
    }
}

impl DatabaseArgs {
    fn master_key_settings(&self) -> MasterKeySettings {
        MasterKeySettings {
            key: std::env::var("CIM_MASTER_KEY")
                .ok()
                .filter(|v| !v.trim().is_empty()),
            file: self.master_key_file.clone(),
            data_dir: self.settings().data_dir,
        }
    }
}

/// Loads the master key and installs it for this process. Logs where it came from and its id
/// (a fingerprint), never the key.
/// Loads the master key of the personal data and installs it for this process: every command
/// that reads or writes personal data needs it (also `cim-demo` and `cim-bench`).
pub fn install_master_key(args: &DatabaseArgs) -> anyhow::Result<()> {
    let (key, source) = args
        .master_key_settings()
        .load()
        .context("cannot load the master key")?;
    match &source {
        MasterKeySource::DataDir {
            path,
            generated: true,
        } => tracing::warn!(
            key_id = key.id(),
            path = %path.display(),
            "generated a new master key for personal data (development default): back it up apart from the database"
        ),
        source => tracing::debug!(key_id = key.id(), ?source, "master key loaded"),
    }
    crypto::install(key)?;
    Ok(())
}

/// Opens (and migrates) the database, then checks that the personal-data keys are all there and
/// wrapped by the configured master key, and that the cluster's transaction ids are past the log's
/// (a dump restored into another cluster is not), so a lost key table, a wrong key or a restore
/// half done stops the process here with a clear message, not as read errors or skipped events
/// later.
pub async fn open_database(args: &DatabaseArgs) -> anyhow::Result<Database> {
    let db = Database::open(&args.settings()).await?;
    let master = crypto::installed()?;
    if let Err(e) = crate::store::keys::check_keys(&db.pool, master).await {
        let _ = db.close().await;
        return Err(anyhow::Error::new(e).context("the personal-data keys do not match the log"));
    }
    match crate::store::check_transaction_ids(&db.pool).await {
        Ok(Ok(())) => Ok(db),
        Ok(Err(behind)) => {
            let _ = db.close().await;
            Err(behind.into())
        }
        Err(e) => {
            let _ = db.close().await;
            Err(anyhow::Error::new(e).context("cannot read the event log"))
        }
    }
}

/// Logs to stderr, filtered by `CIM_LOG` (default `info,sqlx=warn`): the same for `cim` and the
/// workspace's tools.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CIM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// The exit of a command: an error becomes a message for a person on stderr and exit code 1.
pub fn exit_code(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The `main` of the workspace's tools (`cim-demo`, `cim-bench`): logging and the master key as for
/// `cim`, then `run`.
pub async fn tool_main(
    database: &DatabaseArgs,
    run: impl std::future::Future<Output = anyhow::Result<()>>,
) -> std::process::ExitCode {
    init_tracing();
    let result = match install_master_key(database) {
        Ok(()) => run.await,
        Err(e) => Err(e),
    };
    exit_code(result)
}

/// Runs the chosen subcommand. `anyhow` is used from here up: this is the edge where errors become
/// a message for a person and an exit code.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let needs_key = !matches!(
        cli.command,
        Command::Token(_) | Command::Keys(keys::KeysCommand::Generate { .. })
    );
    if needs_key {
        install_master_key(&cli.database)?;
    }
    match cli.command {
        Command::Serve(args) => serve::run(&cli.database, *args).await,
        Command::Migrate => migrate::run(&cli.database).await,
        Command::Seed => seed::run(&cli.database).await,
        Command::Projections(command) => projections::run(&cli.database, command).await,
        Command::Token(args) => token::run(args),
        Command::Export(command) => export::run(&cli.database, command).await,
        Command::Ladok(command) => ladok::run(command).await,
        Command::Erase(args) => erase::run(&cli.database, args).await,
        Command::Keys(command) => keys::run(&cli.database, command).await,
    }
}
