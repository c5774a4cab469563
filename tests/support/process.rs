//! `cim serve` as a child process, for the tests of what only a real process shows: start-up and
//! shutdown, signals, several instances on one database, and what the service writes to its logs.
//!
//! [`ServeProcess::start`] waits for the line `cim listening on <url>` and returns with that base URL.
//! The standard error can be captured ([`ServeBuilder::capture_logs`]) and read back whole with
//! [`ServeProcess::logs`]; otherwise it goes to the test's own standard error.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How to start one `cim serve`.
#[derive(Debug, Default)]
pub struct ServeBuilder {
    args: Vec<OsString>,
    envs: Vec<(OsString, Option<OsString>)>,
    capture_logs: bool,
}

impl ServeBuilder {
    /// On an existing database (the default: `cim serve` on `DATABASE_URL`).
    pub fn database(self, url: &str) -> Self {
        self.env("DATABASE_URL", url)
    }

    /// Without `DATABASE_URL`: its own embedded cluster in `data_dir`.
    pub fn embedded(mut self, data_dir: &std::path::Path) -> Self {
        self.envs.push(("DATABASE_URL".into(), None));
        self.arg("--data-dir").arg(data_dir)
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.envs.push((key.into(), Some(value.into())));
        self
    }

    /// Delivers certificates to this (fake) Ladok.
    pub fn ladok(mut self, files: &super::ladok::LadokFiles) -> Self {
        for (key, value) in files.env() {
            self = self.env(key, value);
        }
        self
    }

    /// Keeps the standard error (the log) for [`ServeProcess::logs`].
    pub fn capture_logs(mut self) -> Self {
        self.capture_logs = true;
        self
    }

    /// Starts the process and waits until it listens.
    pub fn start(self) -> ServeProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cim"));
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(&self.args)
            .env("CIM_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(if self.capture_logs {
                Stdio::piped()
            } else {
                Stdio::inherit()
            });
        for (key, value) in &self.envs {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        let mut child = command.spawn().expect("start cim serve");
        let logs = Arc::new(Mutex::new(String::new()));
        let mut log_reader = None;
        if let Some(mut stderr) = child.stderr.take() {
            let logs = logs.clone();
            log_reader = Some(std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n) = stderr.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    logs.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&chunk[..n]));
                }
            }));
        }
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        // The first line, read on a thread of its own so that a process that never gets as far
        // as listening fails the test after a while instead of hanging it.
        let (first_line, line_read) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut line = String::new();
            let _ = stdout.read_line(&mut line);
            let _ = first_line.send(line);
            stdout
        });
        let line = match line_read.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "cim serve printed nothing for two minutes\n{}",
                    logs.lock().unwrap()
                );
            }
        };
        let mut stdout = reader.join().unwrap();
        let Some(base) = line.trim().strip_prefix("cim listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(200));
            panic!(
                "cim serve did not start: first line {line:?}\n{}",
                logs.lock().unwrap()
            );
        };
        let base = base.to_owned();
        // Keep reading stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        ServeProcess {
            child: Some(child),
            base,
            logs,
            log_reader,
        }
    }
}

/// A running `cim serve`; killed when dropped.
#[derive(Debug)]
pub struct ServeProcess {
    child: Option<Child>,
    pub base: String,
    logs: Arc<Mutex<String>>,
    /// The thread copying the standard error into `logs`; it ends when the pipe closes.
    log_reader: Option<std::thread::JoinHandle<()>>,
}

impl ServeProcess {
    pub fn builder() -> ServeBuilder {
        ServeBuilder::default()
    }

    /// The process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Everything written to the standard error so far (empty unless captured).
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// Sends a signal by name (`TERM`, `KILL`, …) without waiting.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("already waited for");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                self.drain_logs();
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "cim serve did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// After the exit: waits (briefly) until the last of the standard error is in `logs`. A
    /// process it started may hold the pipe open, so this gives up after a few seconds.
    fn drain_logs(&mut self) {
        let Some(reader) = self.log_reader.take() else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !reader.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if reader.is_finished() {
            let _ = reader.join();
        }
    }

    /// SIGTERM, then waits for the graceful shutdown to finish; returns the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait(Duration::from_secs(60))
    }

    /// SIGKILL: no chance to finish or release anything.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until `/readyz` answers 200 (panics after a minute).
pub async fn wait_ready(base: &str) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{base}/readyz never answered 200"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends SIGQUIT to the cluster's postmaster: what `pg_ctl stop -m immediate` does (no checkpoint,
/// every session cut, crash recovery at the next start). Waits until it is gone.
pub async fn crash_postgres(data_dir: &std::path::Path) {
    let pid_file = data_dir.join("pgdata/postmaster.pid");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let pid = pid.lines().next().unwrap().trim().to_owned();
    let status = std::process::Command::new("kill")
        .args(["-QUIT", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..300 {
        if !pid_file.exists() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("PostgreSQL did not stop");
}
