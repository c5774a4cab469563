//! Locating the PostgreSQL server programs.
//!
//! Distributions disagree on where the server programs live. Debian and Ubuntu keep them in
//! `/usr/lib/postgresql/<major>/bin` and put only client wrappers on `PATH`; Homebrew, Nix and
//! source builds put them on `PATH`. We therefore look in an explicit folder first (the operator
//! knows best), then on `PATH`, then in the newest Debian-style versioned folder.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::EmbeddedError;

/// Where Debian-style packages install one folder per major version.
const VERSIONED_ROOT: &str = "/usr/lib/postgresql";

/// The server programs that [`super::EmbeddedPostgres`] runs.
///
/// `initdb`, `pg_ctl` and `postgres` always come from the same folder: `pg_ctl` starts the
/// `postgres` that sits next to it, so mixing versions from different folders cannot work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgBinaries {
    /// The folder the programs were found in.
    pub dir: PathBuf,
    /// Creates a new cluster (data directory).
    pub initdb: PathBuf,
    /// Starts, stops and reports on a cluster.
    pub pg_ctl: PathBuf,
    /// The server itself; `pg_ctl` runs it, we only check that it is there.
    pub postgres: PathBuf,
    /// The readiness probe, when installed. Not needed to start a cluster (readiness is checked
    /// by connecting), but useful for health checks.
    pub pg_isready: Option<PathBuf>,
}

/// Finds `initdb`, `pg_ctl` and `postgres` (and `pg_isready` if present).
///
/// Search order: `explicit` (from `CIM_PG_BIN_DIR`), then each folder on `PATH`, then the highest
/// version under `/usr/lib/postgresql/*/bin`, comparing versions numerically (9.6 < 15 < 16).
///
/// An explicit folder that lacks a program is an error rather than a reason to keep searching:
/// silently using some other installation would hide a configuration mistake.
pub fn find_binaries(explicit: Option<&Path>) -> Result<PgBinaries, EmbeddedError> {
    find_binaries_in(
        explicit,
        std::env::var_os("PATH").as_deref(),
        Path::new(VERSIONED_ROOT),
    )
}

/// [`find_binaries`] with its environment passed in, so tests can build fake installations.
pub(super) fn find_binaries_in(
    explicit: Option<&Path>,
    path_var: Option<&OsStr>,
    versioned_root: &Path,
) -> Result<PgBinaries, EmbeddedError> {
    if let Some(dir) = explicit {
        return complete_in(dir).map_err(|missing| EmbeddedError::BinDirIncomplete {
            dir: dir.to_path_buf(),
            missing,
        });
    }
    let on_path = path_var
        .map(|p| std::env::split_paths(p).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .iter()
        .filter(|dir| !dir.as_os_str().is_empty())
        .chain(versioned_dirs(versioned_root).iter())
        .find_map(|dir| complete_in(dir).ok())
        .ok_or(EmbeddedError::BinariesNotFound)
}

/// The programs in `dir`, or the name of the first one that is missing.
fn complete_in(dir: &Path) -> Result<PgBinaries, &'static str> {
    let program = |name: &'static str| {
        let path = dir.join(name);
        if is_executable(&path) {
            Ok(path)
        } else {
            Err(name)
        }
    };
    let initdb = program("initdb")?;
    let pg_ctl = program("pg_ctl")?;
    let postgres = program("postgres")?;
    // `PATH` may hold symlinks to the real folder (e.g. /usr/local/bin/initdb ->
    // /usr/lib/postgresql/15/bin/initdb); pg_isready is then only in the real folder.
    let real_dir = std::fs::canonicalize(&initdb)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let pg_isready = std::iter::once(dir)
        .chain(real_dir.as_deref())
        .map(|d| d.join("pg_isready"))
        .find(|p| is_executable(p));
    Ok(PgBinaries {
        dir: dir.to_path_buf(),
        initdb,
        pg_ctl,
        postgres,
        pg_isready,
    })
}

/// A regular file (after following symlinks) with some execute bit set.
fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `<root>/<version>/bin` for every numerically named version folder, newest first.
fn versioned_dirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut versions: Vec<(Vec<u32>, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = parse_version(entry.file_name().to_str()?)?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

/// "15" → [15], "9.6" → [9, 6]; anything else (e.g. "common") → None.
///
/// Comparing the parts as numbers, not as text, is the point: as text "9.6" > "16".
fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn fake_install(dir: &Path, programs: &[&str]) {
        fs::create_dir_all(dir).unwrap();
        for name in programs {
            let path = dir.join(name);
            fs::write(&path, "#!/bin/sh\n").unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    const SERVER: &[&str] = &["initdb", "pg_ctl", "postgres"];

    #[test]
    fn versions_compare_numerically() {
        assert!(parse_version("9.6") < parse_version("15"));
        assert!(parse_version("15") < parse_version("16"));
        assert_eq!(parse_version("common"), None);
        assert_eq!(parse_version("16beta1"), None);
    }

    #[test]
    fn picks_the_highest_version_folder() {
        let root = tempfile::tempdir().unwrap();
        for version in ["9.6", "16", "15"] {
            fake_install(&root.path().join(version).join("bin"), SERVER);
        }
        // A version folder with only client programs must be skipped, however new.
        fake_install(&root.path().join("17/bin"), &["pg_isready"]);
        fs::create_dir_all(root.path().join("common")).unwrap();

        let found = find_binaries_in(None, None, root.path()).unwrap();
        assert_eq!(found.dir, root.path().join("16/bin"));
        assert_eq!(found.initdb, root.path().join("16/bin/initdb"));
        assert_eq!(found.pg_isready, None);
    }

    #[test]
    fn path_wins_over_versioned_folders_and_explicit_wins_over_path() {
        let root = tempfile::tempdir().unwrap();
        let versioned = root.path().join("lib");
        let on_path = root.path().join("path-bin");
        let explicit = root.path().join("explicit");
        fake_install(&versioned.join("16/bin"), SERVER);
        fake_install(&on_path, &["initdb", "pg_ctl", "postgres", "pg_isready"]);
        fake_install(&explicit, SERVER);
        let path_var = std::env::join_paths([root.path().join("empty"), on_path.clone()]).unwrap();

        let found = find_binaries_in(None, Some(&path_var), &versioned).unwrap();
        assert_eq!(found.dir, on_path);
        assert_eq!(found.pg_isready, Some(on_path.join("pg_isready")));

        let found = find_binaries_in(Some(&explicit), Some(&path_var), &versioned).unwrap();
        assert_eq!(found.dir, explicit);
    }

    #[test]
    fn incomplete_explicit_folder_is_an_error_naming_the_missing_program() {
        let root = tempfile::tempdir().unwrap();
        fake_install(root.path(), &["initdb", "postgres"]);
        let err = find_binaries_in(Some(root.path()), None, Path::new("/nonexistent")).unwrap_err();
        assert!(
            matches!(
                &err,
                EmbeddedError::BinDirIncomplete {
                    missing: "pg_ctl",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn nothing_found_explains_what_to_do() {
        let err = find_binaries_in(None, None, Path::new("/nonexistent")).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("apt-get install postgresql"), "{message}");
        assert!(message.contains("CIM_PG_BIN_DIR"), "{message}");
        assert!(message.contains("DATABASE_URL"), "{message}");
    }

    #[test]
    fn non_executable_files_do_not_count() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("15/bin");
        fake_install(&dir, SERVER);
        fs::set_permissions(dir.join("initdb"), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(find_binaries_in(None, None, root.path()).is_err());
    }
}
