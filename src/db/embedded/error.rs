//! The error type of the embedded cluster: every message says what to do next, because the
//! operator reads it at startup with nothing else to go on.

use std::path::PathBuf;
use std::process::ExitStatus;

/// Why the embedded cluster could not be found, created, started or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbeddedError {
    /// No folder with `initdb`, `pg_ctl` and `postgres` was found.
    #[error(
        "no PostgreSQL server binaries found (looked for initdb on PATH and in \
         /usr/lib/postgresql/*/bin). Install them (Debian/Ubuntu: `apt-get install postgresql`), \
         set CIM_PG_BIN_DIR to the folder holding initdb, or set DATABASE_URL to use an existing \
         server."
    )]
    BinariesNotFound,

    /// The explicitly configured folder lacks one of the programs.
    #[error(
        "CIM_PG_BIN_DIR is {dir}, but it has no executable {missing} (initdb, pg_ctl and postgres \
         must sit side by side). Point CIM_PG_BIN_DIR at the folder holding initdb (e.g. \
         /usr/lib/postgresql/16/bin), or unset it to search PATH and /usr/lib/postgresql."
    )]
    BinDirIncomplete {
        /// The configured folder.
        dir: PathBuf,
        /// The first program not found there.
        missing: &'static str,
    },

    /// We are root but there is no `postgres` user to run the server as.
    #[error(
        "cim runs as root, and PostgreSQL refuses to, so it must run as the `postgres` system \
         user, but /etc/passwd has no such user. Create it (`useradd --system --home-dir \
         /var/lib/postgresql --shell /usr/sbin/nologin postgres`) or install PostgreSQL from your \
         distribution, which creates it; or set DATABASE_URL to use an existing server."
    )]
    NoServerUser,

    /// The `postgres` user cannot enter a folder above the data directory.
    #[error(
        "PostgreSQL runs as the `postgres` user (uid {uid}), which cannot enter {dir} (it needs \
         search (x) permission on every folder above the data directory). Choose a data \
         directory it can reach with --data-dir (e.g. /var/lib/cim)."
    )]
    DirNotReachable {
        /// The first folder, from the data directory upwards, that the user cannot enter.
        dir: PathBuf,
        /// The server user's uid.
        uid: u32,
    },

    /// The data directory's path cannot be handed to `pg_ctl` or used for a socket.
    #[error("cannot use {path} as the data directory: {reason}. Choose another with --data-dir.")]
    UnsupportedPath {
        /// The offending path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A file system operation failed.
    #[error("{action}: {source}")]
    Io {
        /// What we were doing, e.g. "creating /var/lib/cim/run".
        action: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A PostgreSQL program exited unsuccessfully.
    #[error("`{command}` failed ({status}):\n{output}")]
    CommandFailed {
        /// The command line, for the operator to retry by hand.
        command: String,
        /// The exit status.
        status: ExitStatus,
        /// What it printed (stdout, then stderr).
        output: String,
    },

    /// The server did not start or did not accept connections.
    #[error("embedded PostgreSQL did not start: {reason}\nlast lines of {}:\n{log_tail}", log.display())]
    StartFailed {
        /// What went wrong.
        reason: String,
        /// The server log.
        log: PathBuf,
        /// Its last lines, where the server explains itself.
        log_tail: String,
    },
}
