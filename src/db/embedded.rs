//! An embedded PostgreSQL cluster that `cim serve` manages itself.
//!
//! Without `DATABASE_URL`, `cim serve` should just work: it creates a private cluster in its data
//! directory on first run (`initdb`), starts it, and stops it on shutdown. Data survives restarts
//! because the cluster is reused on later runs.
//!
//! Layout under the data directory:
//! - `pgdata/`: the cluster itself (mode 0700, as PostgreSQL demands).
//! - `run/`: the Unix socket (mode 0700).
//! - `postgres.log`: the server log; its tail is quoted when a start fails.
//!
//! The server listens **only on a Unix socket in `run/`**, never on TCP. That avoids clashing
//! with any other PostgreSQL on the machine (port 5432 is free to use because the socket path is
//! ours alone), and it is what makes `trust` authentication safe: only users who can enter the
//! 0700 `run/` folder (the server user, and root) can connect at all, so no password is needed.

mod account;
mod binaries;
mod error;
mod paths;

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use sqlx::Connection;
use tracing::{info, warn};

use account::RunAs;
pub use binaries::{PgBinaries, find_binaries};
pub use error::EmbeddedError;

/// The port number in the socket name (`.s.PGSQL.5432`); no TCP port is opened.
const PORT: u16 = 5432;
/// The superuser `initdb` creates and we connect as.
const SUPERUSER: &str = "postgres";
/// Longest Unix socket path Linux accepts (`sun_path` is 108 bytes including the NUL).
const MAX_SOCKET_PATH: usize = 107;
/// How long to keep trying to connect after `pg_ctl start` reported success.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How many lines of `postgres.log` to quote when a start fails.
const LOG_TAIL_LINES: usize = 20;

/// Where the embedded cluster lives and which PostgreSQL to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedConfig {
    /// Folder holding `pgdata/`, `run/` and `postgres.log`; created if missing.
    pub data_dir: PathBuf,
    /// Folder holding `initdb`, `pg_ctl` and `postgres` (`CIM_PG_BIN_DIR`); searched if `None`.
    pub bin_dir: Option<PathBuf>,
}

/// A running embedded cluster; call [`EmbeddedPostgres::stop`] on shutdown.
///
/// Dropping it without `stop` leaves the server running; the next [`EmbeddedPostgres::start`] on
/// the same data directory then finds and reuses it.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    data_dir: PathBuf,
    pgdata: PathBuf,
    /// Socket folder; kept as `String` because it is validated UTF-8 and goes into URLs.
    run_dir: String,
    log: PathBuf,
    binaries: PgBinaries,
    run_as: RunAs,
    /// Whether we started the server (and so should stop it), as opposed to finding it running.
    owned: bool,
}

/// Holds the pid of the `cim` process that started the running cluster and will stop it.
const OWNER_FILE: &str = "cim-owner.pid";

/// Notes this process as the one that stops the cluster.
fn record_owner(data_dir: &Path) {
    if let Err(e) = std::fs::write(data_dir.join(OWNER_FILE), std::process::id().to_string()) {
        tracing::warn!(error = %e, "cannot record the embedded cluster's owner");
    }
}

/// Whether the process recorded as the cluster's owner still runs. A missing or unreadable file
/// counts as "gone": the cluster then has no one to stop it.
fn owner_alive(data_dir: &Path) -> bool {
    std::fs::read_to_string(data_dir.join(OWNER_FILE))
        .ok()
        .and_then(|pid| pid.trim().parse::<u32>().ok())
        .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
}

impl EmbeddedPostgres {
    /// Creates the cluster on first use, starts it (or adopts one already running on this data
    /// directory, e.g. left by a crashed `cim` or used by another `cim`), and waits until it
    /// accepts connections.
    pub async fn start(config: EmbeddedConfig) -> Result<Self, EmbeddedError> {
        let binaries = find_binaries(config.bin_dir.as_deref())?;
        let run_as = RunAs::detect()?;
        let mut pg = Self::prepare(config.data_dir, binaries, run_as)?;
        info!("using PostgreSQL binaries in {}", pg.binaries.dir.display());

        if !pg.pgdata.join("PG_VERSION").exists() {
            pg.initdb().await?;
        }
        let mut ready = false;
        if pg.is_running().await? {
            info!(
                "embedded PostgreSQL in {} is already running; reusing it (it will be left running)",
                pg.pgdata.display()
            );
            match pg.wait_until_ready().await {
                Ok(()) => {
                    ready = true;
                    // Left behind by a `cim` that died without stopping it: that cluster is ours
                    // to stop now, or it would run forever.
                    if !owner_alive(&pg.data_dir) {
                        info!("its owner is gone; this process takes over stopping it");
                        pg.owned = true;
                    }
                }
                // It was dying as we looked (e.g. it had just crashed): start it afresh.
                Err(NotReady::Stopped) => info!("the running server has stopped; starting it"),
                Err(NotReady::Failed(err)) => return Err(err),
            }
        }
        if !ready {
            pg.owned = pg.pg_ctl_start().await?;
            if let Err(not_ready) = pg.wait_until_ready().await {
                if std::mem::take(&mut pg.owned) {
                    let _ = pg.pg_ctl_stop().await;
                }
                return Err(match not_ready {
                    NotReady::Stopped => {
                        pg.start_failed("the server exited right after starting".into())
                    }
                    NotReady::Failed(err) => err,
                });
            }
        }
        if pg.owned {
            record_owner(&pg.data_dir);
        }
        info!(socket_dir = %pg.run_dir, "embedded PostgreSQL ready");
        Ok(pg)
    }

    /// A URL for `database` that sqlx 0.8 understands: the `host` query parameter holding an
    /// absolute path selects the Unix socket in that folder.
    pub fn connection_url(&self, database: &str) -> String {
        paths::socket_url(&self.run_dir, database)
    }

    /// The (absolute) data directory holding `pgdata/`, `run/` and `postgres.log`.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Whether this process started the server and [`EmbeddedPostgres::stop`] will stop it.
    pub fn is_owned(&self) -> bool {
        self.owned
    }

    /// Stops the server with a fast shutdown (ends sessions, then checkpoints), but only if we
    /// started it: a server we found running belongs to whoever started it.
    pub async fn stop(mut self) -> Result<(), EmbeddedError> {
        if !std::mem::take(&mut self.owned) {
            info!("leaving embedded PostgreSQL running: it was running before we started");
            return Ok(());
        }
        info!("stopping embedded PostgreSQL");
        self.pg_ctl_stop().await?;
        let _ = std::fs::remove_file(self.data_dir.join(OWNER_FILE));
        info!("embedded PostgreSQL stopped");
        Ok(())
    }

    /// Creates the folders, checks the paths, and hands everything to the server user.
    fn prepare(
        data_dir: PathBuf,
        binaries: PgBinaries,
        run_as: RunAs,
    ) -> Result<Self, EmbeddedError> {
        account::make_dir(run_as, &data_dir, 0o700)?;
        let data_dir = fs::canonicalize(&data_dir).map_err(|source| EmbeddedError::Io {
            action: format!("resolving {}", data_dir.display()),
            source,
        })?;
        paths::check_path(&data_dir)?;
        run_as.check_reachable(&data_dir)?;

        let pgdata = data_dir.join("pgdata");
        let run_dir = data_dir.join("run");
        let log = data_dir.join("postgres.log");
        let socket = run_dir.join(format!(".s.PGSQL.{PORT}"));
        let socket_len = socket.as_os_str().len();
        if socket_len > MAX_SOCKET_PATH {
            return Err(EmbeddedError::UnsupportedPath {
                path: data_dir,
                reason: format!(
                    "the socket path {} would be {socket_len} bytes, more than the \
                     {MAX_SOCKET_PATH} Unix sockets allow",
                    socket.display()
                ),
            });
        }
        account::make_dir(run_as, &pgdata, 0o700)?;
        account::make_dir(run_as, &run_dir, 0o700)?;
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|source| EmbeddedError::Io {
                action: format!("creating {}", log.display()),
                source,
            })?;
        run_as.give(&log)?;

        let run_dir = run_dir
            .into_os_string()
            .into_string()
            .expect("check_path ensured UTF-8");
        Ok(Self {
            data_dir,
            pgdata,
            run_dir,
            log,
            binaries,
            run_as,
            owned: false,
        })
    }

    /// Creates the cluster, preferring the C.UTF-8 locale (byte-order sorting, but UTF-8 aware
    /// character classes) and falling back to plain C where that locale is not installed.
    async fn initdb(&self) -> Result<(), EmbeddedError> {
        info!(
            "initialising embedded PostgreSQL in {}",
            self.pgdata.display()
        );
        let mut result = Ok(String::new());
        for locale in ["--locale=C.UTF-8", "--locale=C"] {
            result = self
                .run(
                    &self.binaries.initdb,
                    &[
                        &"-D",
                        &self.pgdata,
                        &"-U",
                        &SUPERUSER,
                        &"--auth=trust",
                        &"--encoding=UTF8",
                        &locale,
                    ],
                )
                .await;
            match &result {
                Ok(_) => break,
                Err(err) => warn!("initdb with {locale} failed: {err}"),
            }
        }
        result.map(drop)
    }

    /// `pg_ctl status`: exit 0 means running, 3 means not running.
    async fn is_running(&self) -> Result<bool, EmbeddedError> {
        let args: &[&dyn AsRef<OsStr>] = &[&"status", &"-D", &self.pgdata];
        let (status, output) = self.output(&self.binaries.pg_ctl, args).await?;
        match status.code() {
            Some(0) => Ok(true),
            Some(3) => Ok(false),
            _ => Err(EmbeddedError::CommandFailed {
                command: describe(&self.binaries.pg_ctl, args),
                status,
                output,
            }),
        }
    }

    /// Starts the server and waits (up to 60 s) for it to report ready. Returns whether we
    /// started it: `false` if another process started it between our status check and now.
    async fn pg_ctl_start(&self) -> Result<bool, EmbeddedError> {
        info!("starting embedded PostgreSQL (log: {})", self.log.display());
        let options = paths::server_options(&self.run_dir);
        let started = self
            .run(
                &self.binaries.pg_ctl,
                &[
                    &"-D",
                    &self.pgdata,
                    &"-l",
                    &self.log,
                    &"-w",
                    &"-t",
                    &"60",
                    &"-o",
                    &options,
                    &"start",
                ],
            )
            .await;
        match started {
            Ok(_) => Ok(true),
            Err(_) if matches!(self.is_running().await, Ok(true)) => {
                info!(
                    "embedded PostgreSQL was started concurrently by another process; reusing it"
                );
                Ok(false)
            }
            Err(err) => Err(self.start_failed(err.to_string())),
        }
    }

    async fn pg_ctl_stop(&self) -> Result<(), EmbeddedError> {
        let args: &[&dyn AsRef<OsStr>] = &[&"-D", &self.pgdata, &"-m", &"fast", &"-w", &"stop"];
        self.run(&self.binaries.pg_ctl, args).await.map(drop)
    }

    /// Connects through the very URL we hand out, so "ready" also proves the URL works.
    ///
    /// Between attempts it asks `pg_ctl status`, so a server that has stopped (or a dead
    /// postmaster that `pg_ctl` briefly still saw as alive) is reported at once, not after the
    /// timeout.
    async fn wait_until_ready(&self) -> Result<(), NotReady> {
        let url = self.connection_url(SUPERUSER);
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            let attempt =
                tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(&url))
                    .await;
            let last_error = match attempt {
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                    return Ok(());
                }
                Ok(Err(err)) => err.to_string(),
                Err(_) => "connection attempt timed out".to_owned(),
            };
            if !self.is_running().await.map_err(NotReady::Failed)? {
                return Err(NotReady::Stopped);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(NotReady::Failed(self.start_failed(format!(
                    "not accepting connections on {url} after {} s ({last_error}). If no \
                     PostgreSQL runs on this data directory, {}/postmaster.pid is stale and \
                     names another process: remove it",
                    READY_TIMEOUT.as_secs(),
                    self.pgdata.display()
                ))));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn start_failed(&self, reason: String) -> EmbeddedError {
        EmbeddedError::StartFailed {
            reason,
            log: self.log.clone(),
            log_tail: log_tail(&self.log, LOG_TAIL_LINES),
        }
    }

    /// Runs a PostgreSQL program as the server user; fails unless it exits successfully.
    async fn run(
        &self,
        program: &Path,
        args: &[&dyn AsRef<OsStr>],
    ) -> Result<String, EmbeddedError> {
        let (status, output) = self.output(program, args).await?;
        if status.success() {
            Ok(output)
        } else {
            Err(EmbeddedError::CommandFailed {
                command: describe(program, args),
                status,
                output,
            })
        }
    }

    /// Runs a PostgreSQL program as the server user and collects its exit status and output.
    async fn output(
        &self,
        program: &Path,
        args: &[&dyn AsRef<OsStr>],
    ) -> Result<(ExitStatus, String), EmbeddedError> {
        let mut command = tokio::process::Command::new(program);
        command
            .args(args.iter().map(|arg| arg.as_ref()))
            // Our working directory may be one the server user cannot enter (e.g. /root), which
            // makes the PostgreSQL programs complain; the data directory is always theirs.
            .current_dir(&self.data_dir)
            .stdin(Stdio::null());
        self.run_as.apply(&mut command);
        // `pg_ctl start` sends the server's own output to the log file (`-l`), so the server
        // does not hold these pipes open and collecting the output does not hang.
        let out = command.output().await.map_err(|source| EmbeddedError::Io {
            action: format!("running {}", describe(program, args)),
            source,
        })?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((out.status, text.trim_end().to_owned()))
    }
}

/// Why [`EmbeddedPostgres::wait_until_ready`] gave up.
#[derive(Debug)]
enum NotReady {
    /// `pg_ctl status` says no server runs on the data directory.
    Stopped,
    /// Anything else, ready to report.
    Failed(EmbeddedError),
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        if self.owned {
            warn!(
                "embedded PostgreSQL in {} dropped without stop(); it keeps running and the next \
                 start will reuse it",
                self.pgdata.display()
            );
        }
    }
}

/// The default data directory (`CIM_DATA_DIR`/`--data-dir` override it elsewhere).
///
/// Root gets the system location `/var/lib/cim`; other users get `$XDG_DATA_HOME/cim`, else
/// `~/.local/share/cim`, else (no home at all) `cim-data` in the working directory.
pub fn default_data_dir() -> PathBuf {
    paths::default_data_dir_for(
        account::is_root(),
        std::env::var_os("XDG_DATA_HOME"),
        std::env::var_os("HOME"),
    )
}

/// The last `n` lines of the log, or why it could not be read.
fn log_tail(log: &Path, n: usize) -> String {
    match fs::read(log) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(err) => format!("(could not read the log: {err})"),
    }
}

/// A command line for error messages.
fn describe(program: &Path, args: &[&dyn AsRef<OsStr>]) -> String {
    std::iter::once(program.as_os_str())
        .chain(args.iter().map(|arg| arg.as_ref()))
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;
