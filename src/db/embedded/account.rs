//! Which Unix user the PostgreSQL programs run as, and making the data directory theirs.
//!
//! `initdb`, `pg_ctl` and `postgres` refuse to run as root (a compromised database server must
//! not own the machine). Servers, containers and CI often run `cim` as root, so in that case we
//! run the PostgreSQL programs as the unprivileged `postgres` system user that distribution
//! packages create, and hand it the data directory. Everything here avoids `unsafe`: root is
//! detected from the owner of `/proc/self`, users are looked up in `/etc/passwd`, and the
//! switch of user happens in the child process via `CommandExt::{uid, gid}`.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::EmbeddedError;

/// The user PostgreSQL runs as when we are root.
const SERVER_USER: &str = "postgres";

/// Who runs the PostgreSQL programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RunAs {
    /// We are not root: run them as ourselves and keep the files ours.
    CurrentUser,
    /// We are root: run them as this unprivileged user, who must own the data directory.
    User { uid: u32, gid: u32 },
}

impl RunAs {
    /// [`RunAs::User`] for the `postgres` user when we are root, else [`RunAs::CurrentUser`].
    pub(super) fn detect() -> Result<Self, EmbeddedError> {
        if !is_root() {
            return Ok(Self::CurrentUser);
        }
        let passwd = fs::read_to_string("/etc/passwd").map_err(|source| EmbeddedError::Io {
            action: "reading /etc/passwd to find the postgres user".into(),
            source,
        })?;
        let (uid, gid) = parse_passwd(&passwd, SERVER_USER).ok_or(EmbeddedError::NoServerUser)?;
        Ok(Self::User { uid, gid })
    }

    /// Makes `path` belong to the server user (a no-op when we are not root).
    pub(super) fn give(self, path: &Path) -> Result<(), EmbeddedError> {
        let Self::User { uid, gid } = self else {
            return Ok(());
        };
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|source| EmbeddedError::Io {
            action: format!("handing {} to the postgres user", path.display()),
            source,
        })
    }

    /// Fails, naming the folder, if the server user cannot reach `dir` because some folder above
    /// it lacks search (x) permission for that user.
    ///
    /// We do not loosen permissions ourselves: a 0700 folder such as `/root` is private on
    /// purpose, and the operator should rather pick a data directory elsewhere.
    pub(super) fn check_reachable(self, dir: &Path) -> Result<(), EmbeddedError> {
        let Self::User { uid, gid } = self else {
            return Ok(());
        };
        for ancestor in dir.ancestors().skip(1) {
            let meta = fs::metadata(ancestor).map_err(|source| EmbeddedError::Io {
                action: format!("checking permissions of {}", ancestor.display()),
                source,
            })?;
            if !can_search(meta.mode(), meta.uid(), meta.gid(), uid, gid) {
                return Err(EmbeddedError::DirNotReachable {
                    dir: ancestor.to_path_buf(),
                    uid,
                });
            }
        }
        Ok(())
    }

    /// Applies this identity to a child process.
    pub(super) fn apply(self, command: &mut tokio::process::Command) {
        if let Self::User { uid, gid } = self {
            // The standard library also drops root's supplementary groups when setting the uid.
            command.uid(uid).gid(gid);
        }
    }
}

/// Whether this process runs as root: `/proc/self` belongs to the effective user.
pub(super) fn is_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The uid and gid of `user` in the contents of an `/etc/passwd` file.
///
/// Lines look like `postgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash`.
pub(super) fn parse_passwd(contents: &str, user: &str) -> Option<(u32, u32)> {
    contents.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != user {
            return None;
        }
        let _password = fields.next()?;
        let uid = fields.next()?.trim().parse().ok()?;
        let gid = fields.next()?.trim().parse().ok()?;
        Some((uid, gid))
    })
}

/// Whether a user (`uid`, primary group `gid`) may enter a folder with this mode and ownership.
///
/// Unix checks exactly one class: owner if the uid matches, else group, else other. The server
/// user's supplementary groups are dropped when we switch to it, so only its primary group counts.
fn can_search(mode: u32, owner: u32, group: u32, uid: u32, gid: u32) -> bool {
    let bit = if owner == uid {
        0o100
    } else if group == gid {
        0o010
    } else {
        0o001
    };
    mode & bit != 0
}

/// Creates `dir` if missing with the given mode, and hands it to the server user.
pub(super) fn make_dir(run_as: RunAs, dir: &Path, mode: u32) -> Result<(), EmbeddedError> {
    let io = |source| EmbeddedError::Io {
        action: format!("creating {}", dir.display()),
        source,
    };
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(io)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(mode)).map_err(io)?;
    }
    run_as.give(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/bash
# a comment line
postgresql:x:200:200::/nonexistent:/usr/sbin/nologin
postgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash
broken:x:notanumber:1::/:/bin/sh
";

    #[test]
    fn finds_uid_and_gid_of_exact_user() {
        assert_eq!(parse_passwd(PASSWD, "postgres"), Some((101, 104)));
        assert_eq!(parse_passwd(PASSWD, "root"), Some((0, 0)));
    }

    #[test]
    fn missing_or_malformed_users_are_none() {
        assert_eq!(parse_passwd(PASSWD, "postg"), None);
        assert_eq!(parse_passwd(PASSWD, "nobody"), None);
        assert_eq!(parse_passwd(PASSWD, "broken"), None);
        assert_eq!(parse_passwd("", "postgres"), None);
    }

    #[test]
    fn search_permission_uses_the_one_matching_class() {
        // root-owned 0700 folder (e.g. /root or a fresh tempdir): postgres cannot enter.
        assert!(!can_search(0o700, 0, 0, 101, 104));
        assert!(can_search(0o755, 0, 0, 101, 104));
        assert!(can_search(0o1777, 0, 0, 101, 104));
        // Group access counts only via the primary group.
        assert!(can_search(0o750, 0, 104, 101, 104));
        assert!(!can_search(0o750, 0, 105, 101, 104));
        // The owner class applies to the owner even when "other" would allow it.
        assert!(!can_search(0o011, 101, 0, 101, 104));
    }
}
