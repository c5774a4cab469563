//! The content-addressed media store: one file per distinct content, at `<dir>/<aa>/<sha256>` where
//! `aa` is the first two hex characters of the hash.
//!
//! Storing is two steps, so that the caller can decide *when* a file appears under its final name:
//!
//! 1. [`MediaStore::stage`] streams the upload to a temporary file in the store's own directory (so
//!    the final rename is atomic on the same file system) while it is hashed and counted. It is
//!    refused as soon as it passes the size limit. The file is fsynced.
//! 2. [`MediaStore::publish`] renames it to its final name and fsyncs the directory, so the name
//!    survives a crash; storing content that is already there keeps the old file. When the directory
//!    cannot be made durable the new name is removed again and the step fails: a file is either
//!    stored and durable or not there at all.
//!
//! The temporary file is removed on every path that does not end in the rename (error, limit, client
//! gone, handler cancelled). The upload route runs step 2 under the locks that keep it apart from an
//! erasure (`crate::media::uploads`).
//!
//! Configuration: `CIM_MEDIA_DIR` (default `<data dir>/media`, the data dir being `CIM_DATA_DIR` or
//! the embedded cluster's default) and `CIM_MEDIA_MAX_BYTES` (default 200 MiB).

use super::is_sha256_hex;
use super::sniff::{Kind, SNIFF_LEN, sniff};
use axum::body::Bytes;
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// Default largest upload: 200 MiB, several minutes of video at a phone's bit rate.
pub const DEFAULT_MAX_BYTES: u64 = 200 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct MediaStore {
    dir: PathBuf,
    max_bytes: u64,
    durability: Arc<dyn Durability>,
}

/// Makes a rename into a directory survive a crash. The one step of storing that a test cannot make
/// fail with a real file system (a directory fsync fails on a dying disk, not on demand), so it is
/// a seam: production uses [`Fsync`], a test substitutes one that fails and checks that the upload
/// is answered 5xx and leaves nothing behind.
pub trait Durability: Send + Sync + std::fmt::Debug {
    /// Flushes `dir`'s entries to disk.
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()>;
}

/// The real thing: `fsync` on the directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fsync;

impl Durability for Fsync {
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }
}

/// An upload written and hashed, not yet under its final name ([`MediaStore::publish`]). Dropping
/// it removes the temporary file.
#[derive(Debug)]
pub struct Staged {
    /// Lower-case hex.
    pub sha256: String,
    pub size_bytes: u64,
    pub kind: Kind,
    temp: TempFile,
}

impl Staged {
    /// The staged bytes, for reading them (say, to measure a duration) before they are published.
    pub fn path(&self) -> &Path {
        &self.temp.0
    }
}

/// A stored upload.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Lower-case hex.
    pub sha256: String,
    pub size_bytes: u64,
    pub kind: Kind,
    pub path: PathBuf,
    /// This upload put the file there (it was not stored before): the one to remove it again if the
    /// upload is not recorded after all.
    pub created: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the upload is larger than {max} bytes")]
    TooLarge { max: u64 },
    #[error("the upload is empty")]
    Empty,
    #[error("the upload is not one of the accepted audio, video, PDF or image formats")]
    NotMedia,
    #[error("the upload could not be read: {0}")]
    Read(String),
    #[error("the media store failed: {0}")]
    Io(#[from] std::io::Error),
}

impl MediaStore {
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> Self {
        Self {
            dir: dir.into(),
            max_bytes,
            durability: Arc::new(Fsync),
        }
    }

    /// The same store with another way of making renames durable (see [`Durability`]).
    pub fn with_durability(mut self, durability: Arc<dyn Durability>) -> Self {
        self.durability = durability;
        self
    }

    /// `CIM_MEDIA_DIR` and `CIM_MEDIA_MAX_BYTES`, or their defaults.
    pub fn from_env() -> Self {
        let dir = std::env::var_os("CIM_MEDIA_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::var_os("CIM_DATA_DIR")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
                    .unwrap_or_else(crate::db::embedded::default_data_dir)
                    .join("media")
            });
        let max_bytes = std::env::var("CIM_MEDIA_MAX_BYTES")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_MAX_BYTES);
        Self::new(dir, max_bytes)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Where the content with this hash lives; `None` unless `sha256` is 64 lower-case hex
    /// characters, so no other string ever becomes a path.
    pub fn path_of(&self, sha256: &str) -> Option<PathBuf> {
        is_sha256_hex(sha256).then(|| self.dir.join(&sha256[..2]).join(sha256))
    }

    /// Streams `body` into the store and publishes it: [`Self::stage`] then [`Self::publish`], for
    /// callers that need no record of the file in between.
    pub async fn put<S, E>(&self, body: S) -> Result<Stored, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let staged = self.stage(body).await?;
        self.publish(staged).await
    }

    /// Streams `body` to a temporary file of the store, hashed and fsynced. The first bytes are
    /// sniffed before anything touches the disk.
    pub async fn stage<S, E>(&self, body: S) -> Result<Staged, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut body = body;
        let mut head = Vec::new();
        let mut ended = false;
        while head.len() < SNIFF_LEN {
            match body.next().await {
                Some(chunk) => head.extend_from_slice(&chunk.map_err(read_error)?),
                None => {
                    ended = true;
                    break;
                }
            }
            if head.len() as u64 > self.max_bytes {
                return Err(StoreError::TooLarge {
                    max: self.max_bytes,
                });
            }
        }
        if head.is_empty() {
            return Err(StoreError::Empty);
        }
        let kind = sniff(&head).ok_or(StoreError::NotMedia)?;

        tokio::fs::create_dir_all(&self.dir).await?;
        let temp = TempFile(
            self.dir
                .join(format!(".upload-{}", uuid::Uuid::new_v4().simple())),
        );
        let mut file = tokio::fs::File::create(&temp.0).await?;
        let mut hasher = Sha256::new();
        let mut size = head.len() as u64;
        hasher.update(&head);
        file.write_all(&head).await?;
        drop(head);
        if !ended {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(read_error)?;
                size += chunk.len() as u64;
                if size > self.max_bytes {
                    return Err(StoreError::TooLarge {
                        max: self.max_bytes,
                    });
                }
                hasher.update(&chunk);
                file.write_all(&chunk).await?;
            }
        }
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        Ok(Staged {
            sha256: hex::encode(hasher.finalize()),
            size_bytes: size,
            kind,
            temp,
        })
    }

    /// Moves a staged upload under its final name and makes the name durable. Content already stored
    /// is kept as it is (`created: false`). When the directory cannot be synced, the new name is
    /// removed again: the caller answers with an error and nothing half-stored remains.
    pub async fn publish(&self, staged: Staged) -> Result<Stored, StoreError> {
        let Staged {
            sha256,
            size_bytes,
            kind,
            temp,
        } = staged;
        let path = self
            .path_of(&sha256)
            .ok_or_else(|| std::io::Error::other("hex encoding gave a bad hash"))?;
        let parent = path.parent().unwrap_or(&self.dir).to_owned();
        tokio::fs::create_dir_all(&parent).await?;
        let created = !tokio::fs::try_exists(&path).await?;
        if created {
            tokio::fs::rename(&temp.0, &path).await?;
            temp.disarm();
            let durability = self.durability.clone();
            let synced = tokio::task::spawn_blocking(move || durability.sync_dir(&parent))
                .await
                .map_err(std::io::Error::other)
                .and_then(|r| r);
            if let Err(e) = synced {
                // Not durable, so not stored: the caller records nothing, and a file nobody records
                // must not stay (it would outlive an erasure unseen).
                let _ = tokio::fs::remove_file(&path).await;
                return Err(e.into());
            }
        } else {
            // Same content already stored: keep the old file, drop the new copy.
            drop(temp);
        }
        Ok(Stored {
            sha256,
            size_bytes,
            kind,
            path,
            created,
        })
    }

    /// Removes the file of `sha256`; a file already gone is not an error. The caller must know that
    /// no upload refers to it any more (`crate::media::uploads` checks that under a lock).
    pub async fn remove(&self, sha256: &str) -> std::io::Result<bool> {
        // `path_of` accepts only 64 lower-case hex digits.
        let Some(path) = self.path_of(sha256) else {
            return Ok(false);
        };
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

fn read_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Read(e.to_string())
}

/// A temporary upload, removed when dropped unless [`TempFile::disarm`]ed after the rename.
#[derive(Debug)]
struct TempFile(PathBuf);

impl TempFile {
    fn disarm(self) {
        std::mem::forget(self);
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    fn chunks(parts: Vec<Vec<u8>>) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        stream::iter(parts.into_iter().map(|p| Ok(Bytes::from(p))))
    }

    fn files_in(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return out;
        };
        for e in entries.flatten() {
            if e.path().is_dir() {
                out.extend(files_in(&e.path()));
            } else {
                out.push(e.path());
            }
        }
        out
    }

    #[tokio::test]
    async fn stores_by_hash_idempotently() {
        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::new(dir.path(), 1 << 20);
        let pdf = b"%PDF-1.4\nhello".to_vec();
        let stored = store
            .put(chunks(vec![pdf[..3].to_vec(), pdf[3..].to_vec()]))
            .await
            .unwrap();
        let expected = hex::encode(Sha256::digest(&pdf));
        assert_eq!(stored.sha256, expected);
        assert_eq!(stored.size_bytes, pdf.len() as u64);
        assert_eq!(stored.kind, Kind::Pdf);
        assert_eq!(stored.path, dir.path().join(&expected[..2]).join(&expected));
        assert_eq!(std::fs::read(&stored.path).unwrap(), pdf);
        let again = store.put(chunks(vec![pdf.clone()])).await.unwrap();
        assert_eq!(again.path, stored.path);
        assert_eq!(files_in(dir.path()), vec![stored.path]);
    }

    #[tokio::test]
    async fn refuses_oversize_and_non_media_leaving_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::new(dir.path(), 10_000);
        let mut big = b"%PDF-".to_vec();
        big.resize(6000, b'x');
        let err = store
            .put(chunks(vec![big.clone(), big.clone()]))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::TooLarge { max: 10_000 }), "{err}");
        let err = store
            .put(chunks(vec![b"plain text".to_vec()]))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotMedia), "{err}");
        let err = store.put(chunks(vec![])).await.unwrap_err();
        assert!(matches!(err, StoreError::Empty), "{err}");
        let failing = stream::iter(vec![
            Ok(Bytes::from(big.clone())),
            Err(std::io::Error::other("client went away")),
        ]);
        let err = store.put(failing).await.unwrap_err();
        assert!(matches!(err, StoreError::Read(_)), "{err}");
        assert!(files_in(dir.path()).is_empty());
    }

    /// A disk whose directory fsync fails.
    #[derive(Debug)]
    struct FailingSync;

    impl Durability for FailingSync {
        fn sync_dir(&self, _: &Path) -> std::io::Result<()> {
            Err(std::io::Error::other(
                "injected: the directory cannot be synced",
            ))
        }
    }

    #[tokio::test]
    async fn a_rename_that_cannot_be_made_durable_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::new(dir.path(), 1 << 20).with_durability(Arc::new(FailingSync));
        let err = store
            .put(chunks(vec![b"%PDF-1.4\nx".to_vec()]))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Io(_)), "{err}");
        assert!(files_in(dir.path()).is_empty());
    }

    #[test]
    fn only_a_hash_becomes_a_path() {
        let store = MediaStore::new("/srv/media", 1);
        assert!(store.path_of("../../etc/passwd").is_none());
        assert!(store.path_of(&"A".repeat(64)).is_none());
        let h = "ab".repeat(32);
        assert_eq!(
            store.path_of(&h).unwrap(),
            PathBuf::from("/srv/media/ab").join(&h)
        );
    }
}
