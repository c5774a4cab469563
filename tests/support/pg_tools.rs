//! The machine's PostgreSQL client programs (`pg_dump`, `pg_restore`), for the tests that dump a
//! database as an operator does: the one on `PATH` first, then Debian's versioned installations
//! (`/usr/lib/postgresql/<major>/bin`), newest first.

use std::path::{Path, PathBuf};

/// Every installed `program`, in the order above.
pub fn installed(program: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(program)).collect())
        .unwrap_or_default();
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin").join(program)))
        })
        .collect();
    versioned.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    found.extend(versioned.into_iter().map(|(_, p)| p));
    found.retain(|p| p.is_file());
    found
}

/// The major version a client program reports (`pg_dump (PostgreSQL) 15.20 (Debian …)` is 15).
pub fn major_version(program: &Path) -> Option<u32> {
    let out = std::process::Command::new(program)
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
    version.split('.').next()?.parse().ok()
}

/// A `pg_dump` and the `pg_restore` beside it that can dump and restore a server of major version
/// `server_major`: a `pg_dump` older than the server refuses to dump it, a newer one can. `Err`
/// says what is missing, for a test that must skip or fail.
pub fn dump_and_restore(server_major: u32) -> Result<(PathBuf, PathBuf), String> {
    let dumps = installed("pg_dump");
    if dumps.is_empty() {
        return Err("pg_dump is not installed (Debian: postgresql-client)".to_owned());
    }
    let mut seen = Vec::new();
    for dump in dumps {
        let major = major_version(&dump);
        seen.push(format!("{} ({major:?})", dump.display()));
        let restore = dump.with_file_name("pg_restore");
        if major.is_some_and(|m| m >= server_major) && restore.is_file() {
            return Ok((dump, restore));
        }
    }
    Err(format!(
        "no pg_dump with pg_restore beside it of major version {server_major} or newer \
         (the server's); found {}",
        seen.join(", ")
    ))
}
