//! Where the master key comes from, and the one key a process has installed.
//!
//! In order: `CIM_MASTER_KEY` (the key itself, base64 of 32 bytes; environment only, so it never
//! shows in a process listing), `CIM_MASTER_KEY_FILE` / `--master-key-file` (a file holding that
//! text), otherwise `<data dir>/master.key`, generated on first start (mode 0600). The generated
//! file is the development default: in production, keep the key in a secret store and hand it over
//! through one of the first two, and back it up apart from the database: without it, the personal
//! data in a database backup cannot be read.
//!
//! The key is installed once per process ([`install`]) because every read path that opens personal
//! data (the store, the read models' query functions, the export worker) needs it, and it is
//! process configuration like the log filter, not something a caller chooses per call.

use super::cipher::{CryptoError, MasterKey};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The file name of the generated development key inside the data dir.
pub const DATA_DIR_KEY_FILE: &str = "master.key";

static INSTALLED: OnceLock<MasterKey> = OnceLock::new();

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("CIM_MASTER_KEY is not a valid master key ({0})")]
    BadEnv(#[source] CryptoError),
    #[error("the master key file {path} does not hold a valid master key ({source})")]
    BadFile {
        path: PathBuf,
        #[source]
        source: CryptoError,
    },
    #[error("cannot read or create the master key file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("both CIM_MASTER_KEY and CIM_MASTER_KEY_FILE are set: configure the master key once")]
    Ambiguous,
    #[error(
        "no master key is installed in this process (cim installs it at start-up; library users call crypto::install)"
    )]
    NotInstalled,
    #[error("another master key ({installed}) is already installed in this process")]
    Conflict { installed: String },
}

/// Where the key came from, for the start-up log line (never the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    Env,
    File(PathBuf),
    /// Generated in (or read from) the data dir.
    DataDir {
        path: PathBuf,
        generated: bool,
    },
}

/// The configuration, as the command line and environment give it.
#[derive(Debug, Clone, Default)]
pub struct MasterKeySettings {
    /// `CIM_MASTER_KEY`.
    pub key: Option<String>,
    /// `CIM_MASTER_KEY_FILE`.
    pub file: Option<PathBuf>,
    /// The data dir, for the generated development key.
    pub data_dir: PathBuf,
}

impl MasterKeySettings {
    /// From the environment alone, as `cim` reads it (for tests and tools that run beside `cim`).
    pub fn from_env() -> Self {
        let non_empty = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self {
            key: non_empty("CIM_MASTER_KEY"),
            file: non_empty("CIM_MASTER_KEY_FILE").map(PathBuf::from),
            data_dir: non_empty("CIM_DATA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(crate::db::embedded::default_data_dir),
        }
    }

    /// Reads the configured key, generating the data-dir key when nothing is configured.
    pub fn load(&self) -> Result<(MasterKey, MasterKeySource), MasterKeyError> {
        match (&self.key, &self.file) {
            (Some(_), Some(_)) => Err(MasterKeyError::Ambiguous),
            (Some(text), None) => Ok((
                MasterKey::from_base64(text).map_err(MasterKeyError::BadEnv)?,
                MasterKeySource::Env,
            )),
            (None, Some(path)) => Ok((read_key_file(path)?, MasterKeySource::File(path.clone()))),
            (None, None) => {
                let path = self.data_dir.join(DATA_DIR_KEY_FILE);
                let (key, generated) = read_or_generate(&path)?;
                Ok((key, MasterKeySource::DataDir { path, generated }))
            }
        }
    }
}

/// Reads a key file (base64 text of 32 bytes).
pub fn read_key_file(path: &Path) -> Result<MasterKey, MasterKeyError> {
    let io = |source| MasterKeyError::Io {
        path: path.to_owned(),
        source,
    };
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
    MasterKey::from_base64(&text).map_err(|source| MasterKeyError::BadFile {
        path: path.to_owned(),
        source,
    })
}

/// Writes a new key to `path`, which must not exist yet (mode 0600, fsynced). Used for the
/// generated development key and by `cim keys generate`.
pub fn write_new_key_file(path: &Path, key: &MasterKey) -> Result<(), MasterKeyError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| MasterKeyError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    // Written under a temporary name and linked into place, so a reader never sees half a key and
    // two processes starting at once agree on one key: `hard_link` fails when the name exists.
    let temp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(key.to_base64().as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::hard_link(&temp, path)
    })();
    let _ = std::fs::remove_file(&temp);
    written.map_err(io)
}

fn read_or_generate(path: &Path) -> Result<(MasterKey, bool), MasterKeyError> {
    match std::fs::metadata(path) {
        Ok(_) => return Ok((read_key_file(path)?, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(MasterKeyError::Io {
                path: path.to_owned(),
                source,
            });
        }
    }
    let key = MasterKey::generate();
    match write_new_key_file(path, &key) {
        Ok(()) => Ok((key, true)),
        // Another process generated it first: use theirs.
        Err(MasterKeyError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::AlreadyExists =>
        {
            Ok((read_key_file(path)?, false))
        }
        Err(e) => Err(e),
    }
}

/// Installs the process's master key. Installing the same key again is harmless; another one is
/// refused, so a process can never mix keys.
pub fn install(key: MasterKey) -> Result<&'static MasterKey, MasterKeyError> {
    let installed = INSTALLED.get_or_init(|| key.clone());
    if installed.id() == key.id() {
        Ok(installed)
    } else {
        Err(MasterKeyError::Conflict {
            installed: installed.id().to_owned(),
        })
    }
}

/// The installed master key.
pub fn installed() -> Result<&'static MasterKey, MasterKeyError> {
    INSTALLED.get().ok_or(MasterKeyError::NotInstalled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_dir_key_is_generated_once_and_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let settings = MasterKeySettings {
            data_dir: dir.path().join("data"),
            ..Default::default()
        };
        let (first, source) = settings.load().unwrap();
        let path = dir.path().join("data").join(DATA_DIR_KEY_FILE);
        assert_eq!(
            source,
            MasterKeySource::DataDir {
                path: path.clone(),
                generated: true
            }
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (again, source) = settings.load().unwrap();
        assert_eq!(again.id(), first.id());
        assert!(matches!(
            source,
            MasterKeySource::DataDir {
                generated: false,
                ..
            }
        ));
    }

    #[test]
    fn env_and_file_are_read_and_refused_together() {
        let key = MasterKey::generate();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k");
        write_new_key_file(&file, &key).unwrap();
        let from_file = MasterKeySettings {
            file: Some(file.clone()),
            ..Default::default()
        };
        assert_eq!(from_file.load().unwrap().0.id(), key.id());
        let from_env = MasterKeySettings {
            key: Some(key.to_base64().to_string()),
            ..Default::default()
        };
        assert_eq!(from_env.load().unwrap().0.id(), key.id());
        let both = MasterKeySettings {
            key: Some(key.to_base64().to_string()),
            file: Some(file.clone()),
            ..Default::default()
        };
        assert!(matches!(both.load(), Err(MasterKeyError::Ambiguous)));
        assert!(write_new_key_file(&file, &key).is_err(), "never overwrites");
        let bad = MasterKeySettings {
            key: Some("short".into()),
            ..Default::default()
        };
        assert!(matches!(bad.load(), Err(MasterKeyError::BadEnv(_))));
    }
}
