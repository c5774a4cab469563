//! Strings derived from the data directory: the default location, the server options handed
//! to `pg_ctl`, and the connection URL. Pure functions, so the quoting rules are unit-tested.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{EmbeddedError, PORT, SUPERUSER};

/// [`super::default_data_dir`] with its environment passed in.
pub(super) fn default_data_dir_for(
    root: bool,
    xdg_data_home: Option<OsString>,
    home: Option<OsString>,
) -> PathBuf {
    if root {
        return PathBuf::from("/var/lib/cim");
    }
    // The XDG spec says relative values are invalid and must be ignored.
    let absolute = |v: Option<OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(xdg) = absolute(xdg_data_home) {
        return xdg.join("cim");
    }
    match absolute(home) {
        Some(home) => home.join(".local/share/cim"),
        None => PathBuf::from("cim-data"),
    }
}

/// Rejects paths `pg_ctl` cannot pass on: it must be UTF-8 (it goes into URLs and server
/// options), and `pg_ctl` pastes `-D` and `-l` into a `/bin/sh -c` command line inside double
/// quotes, where `"`, `$`, `` ` `` and `\` would be interpreted by the shell.
pub(super) fn check_path(path: &Path) -> Result<(), EmbeddedError> {
    let unsupported = |reason: &str| EmbeddedError::UnsupportedPath {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    let text = path
        .to_str()
        .ok_or_else(|| unsupported("the path is not valid UTF-8"))?;
    if text.contains(['"', '$', '`', '\\']) {
        return Err(unsupported(
            "pg_ctl cannot handle \", $, ` or \\ in the path",
        ));
    }
    Ok(())
}

/// The `-o` argument of `pg_ctl start`. `pg_ctl` hands it to `/bin/sh`, hence the shell quoting;
/// the socket folder is also double-quoted for PostgreSQL, which splits that setting on commas.
pub(super) fn server_options(run_dir: &str) -> String {
    let socket_dirs = format!(
        "unix_socket_directories=\"{}\"",
        run_dir.replace('"', "\"\"")
    );
    [
        // No TCP at all: see the module documentation.
        "-c listen_addresses=''".to_owned(),
        format!("-c {}", shell_quote(&socket_dirs)),
        format!("-c port={PORT}"),
        "-c max_connections=200".to_owned(),
        "-c shared_buffers=128MB".to_owned(),
    ]
    .join(" ")
}

/// Quotes `s` as one `/bin/sh` word.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `postgres://postgres@localhost/<database>?host=<socket dir>&port=5432&sslmode=disable`.
///
/// TLS is disabled because it is pointless on a local socket.
pub(super) fn socket_url(run_dir: &str, database: &str) -> String {
    format!(
        "postgres://{SUPERUSER}@localhost/{}?host={}&port={PORT}&sslmode=disable",
        percent_encode(database),
        percent_encode(run_dir)
    )
}

/// Percent-encodes everything except unreserved characters and `/`; correct both in the path
/// and in the query (where sqlx decodes `+` as a space, so it must be encoded).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::postgres::PgConnectOptions;
    use std::str::FromStr;

    #[test]
    fn url_selects_the_socket_in_sqlx() {
        let url = socket_url("/var/lib/cim/run", "cim");
        assert_eq!(
            url,
            "postgres://postgres@localhost/cim?host=/var/lib/cim/run&port=5432&sslmode=disable"
        );
        let options = PgConnectOptions::from_str(&url).unwrap();
        assert_eq!(
            options.get_socket(),
            Some(&PathBuf::from("/var/lib/cim/run"))
        );
        assert_eq!(options.get_port(), 5432);
        assert_eq!(options.get_username(), "postgres");
        assert_eq!(options.get_database(), Some("cim"));
    }

    #[test]
    fn url_survives_awkward_paths_and_names() {
        let run_dir = "/tmp/cim data, x+y&z=1%20?#/run";
        let database = "my db+%20/x?";
        let options = PgConnectOptions::from_str(&socket_url(run_dir, database)).unwrap();
        assert_eq!(options.get_socket(), Some(&PathBuf::from(run_dir)));
        assert_eq!(options.get_database(), Some(database));
        assert_eq!(options.get_port(), 5432);
    }

    #[test]
    fn server_options_quote_for_the_shell_and_for_postgres() {
        let options = server_options("/tmp/it's, here/run");
        assert_eq!(
            options,
            "-c listen_addresses='' \
             -c 'unix_socket_directories=\"/tmp/it'\\''s, here/run\"' \
             -c port=5432 -c max_connections=200 -c shared_buffers=128MB"
        );
    }

    #[test]
    fn paths_pg_ctl_cannot_quote_are_rejected() {
        assert!(check_path(Path::new("/var/lib/cim")).is_ok());
        assert!(check_path(Path::new("/tmp/with space, comma and 'quote'")).is_ok());
        for bad in ["/tmp/$HOME", "/tmp/a\"b", "/tmp/`x`", "/tmp/back\\slash"] {
            let err = check_path(Path::new(bad)).unwrap_err();
            assert!(err.to_string().contains("--data-dir"), "{err}");
        }
    }

    #[test]
    fn default_data_dir_follows_root_then_xdg_then_home() {
        let some = |s: &str| Some(OsString::from(s));
        assert_eq!(
            default_data_dir_for(true, some("/x"), some("/root")),
            PathBuf::from("/var/lib/cim")
        );
        assert_eq!(
            default_data_dir_for(false, some("/x/data"), some("/home/a")),
            PathBuf::from("/x/data/cim")
        );
        assert_eq!(
            default_data_dir_for(false, some("relative"), some("/home/a")),
            PathBuf::from("/home/a/.local/share/cim")
        );
        assert_eq!(
            default_data_dir_for(false, None, None),
            PathBuf::from("cim-data")
        );
    }
}
