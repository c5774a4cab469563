//! `cim serve` as a child process of the bench: the same binary, on the bench's scratch database,
//! so its resident memory is its own and the load generator does not share its runtime.

use anyhow::{Context, bail};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running `cim serve`.
#[derive(Debug)]
pub struct ServeChild {
    child: Child,
    pub base: String,
    pub pid: u32,
}

/// Resident memory of a process from `/proc/<pid>/status`, in MiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// VmRSS: resident now.
    pub rss_mib: f64,
    /// VmHWM: the peak resident size since the process started.
    pub hwm_mib: f64,
}

impl ServeChild {
    /// Starts `cim serve` on `database_url`, verifying development tokens signed with `secret`, and
    /// waits until it answers `/readyz`.
    pub async fn start(
        database_url: &str,
        secret: &str,
        data_dir: &Path,
    ) -> anyhow::Result<ServeChild> {
        let exe = cim_binary()?;
        // The child seals and opens personal data with this process's master key (the bench's
        // events were sealed with it), handed over as a file in its own data dir, never in argv.
        let key_file = data_dir.join("master.key");
        if !key_file.exists() {
            cim::crypto::master::write_new_key_file(&key_file, cim::crypto::installed()?)?;
        }
        let mut child = Command::new(exe)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_remove("CIM_MASTER_KEY")
            .env("CIM_MASTER_KEY_FILE", &key_file)
            .env("DATABASE_URL", database_url)
            .env("CIM_JWT_DEV_SECRET", secret)
            .env("CIM_DATA_DIR", data_dir)
            .env("CIM_EXPORT_DIR", data_dir.join("exports"))
            .env("CIM_EXPORT_SCHEDULER", "false")
            .env("CIM_LADOK_ENABLED", "false")
            // The limit on failed authentications stays at its default although every simulated
            // client connects from one address: the soak's requests without a token are not
            // counted, and every token it sends is valid.
            // Slow-read warnings under load would only add noise to the bench's output.
            .env("CIM_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start cim serve")?;
        let pid = child.id().context("cim serve exited at once")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .context("cim serve did not start within 60 s")??
            .context("cim serve exited before it listened")?;
        let Some(base) = first.trim().strip_prefix("cim listening on ") else {
            bail!("unexpected first line from cim serve: {first:?}");
        };
        let base = base.to_owned();
        // Keep reading so a later line never blocks the child on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let served = ServeChild { child, base, pid };
        served.wait_ready().await?;
        Ok(served)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        for _ in 0..600 {
            if let Ok(r) = client.get(format!("{}/readyz", self.base)).send().await
                && r.status() == reqwest::StatusCode::OK
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("cim serve never became ready")
    }

    pub fn memory(&self) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .context("cannot read the child's /proc status")?;
        let field = |name: &str| -> f64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse::<f64>().ok())
                .map_or(0.0, |kib| kib / 1024.0)
        };
        Ok(Memory {
            rss_mib: field("VmRSS:"),
            hwm_mib: field("VmHWM:"),
        })
    }

    /// SIGTERM (graceful: the child releases its locks and closes its pool), then SIGKILL after 15 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                self.child.kill().await?;
            }
        }
        Ok(())
    }
}

/// The `cim` binary the bench serves with: `CIM_BINARY`, else the `cim` beside this binary (cargo
/// builds both into one folder: `cargo build --release --workspace`).
fn cim_binary() -> anyhow::Result<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("CIM_BINARY").filter(|p| !p.is_empty()) {
        return Ok(path.into());
    }
    let exe = std::env::current_exe().context("cannot find the cim-bench binary")?;
    let beside = exe.with_file_name("cim");
    anyhow::ensure!(
        beside.exists(),
        "no cim binary at {}: build the workspace (`cargo build --release --workspace`) or set CIM_BINARY",
        beside.display()
    );
    Ok(beside)
}
