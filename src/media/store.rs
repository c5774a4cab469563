//! The content-addressed media store: one file per distinct content, at `<dir>/<aa>/<sha256>` where
//! `aa` is the first two hex characters of the hash.
//!
//! An upload is streamed to a temporary file in the store's own directory (so the final rename is
//! atomic on the same file system) while it is hashed and counted. It is refused as soon as it
//! passes the size limit, and the temporary file is removed on every path that does not end in the
//! rename (error, limit, client gone, handler cancelled). The file is fsynced before the rename;
//! storing content that is already there is a no-op.
//!
//! Configuration: `CIM_MEDIA_DIR` (default `<data dir>/media`, the data dir being `CIM_DATA_DIR` or
//! the embedded cluster's default) and `CIM_MEDIA_MAX_BYTES` (default 200 MiB).

use super::is_sha256_hex;
use super::sniff::{Kind, SNIFF_LEN, sniff};
use axum::body::Bytes;
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// Default largest upload: 200 MiB, several minutes of video at a phone's bit rate.
pub const DEFAULT_MAX_BYTES: u64 = 200 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct MediaStore {
    dir: PathBuf,
    max_bytes: u64,
}

/// A stored upload.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Lower-case hex.
    pub sha256: String,
    pub size_bytes: u64,
    pub kind: Kind,
    pub path: PathBuf,
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
        }
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

    /// Streams `body` into the store. The first bytes are sniffed before anything touches the disk.
    pub async fn put<S, E>(&self, body: S) -> Result<Stored, StoreError>
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
        let sha256 = hex::encode(hasher.finalize());
        let path = self
            .path_of(&sha256)
            .ok_or_else(|| std::io::Error::other("hex encoding gave a bad hash"))?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        if tokio::fs::try_exists(&path).await? {
            // Same content already stored: keep the old file, drop the new copy.
            drop(temp);
        } else {
            tokio::fs::rename(&temp.0, &path).await?;
            temp.disarm();
            if let Some(parent) = path.parent() {
                sync_dir(parent).await;
            }
        }
        Ok(Stored {
            sha256,
            size_bytes: size,
            kind,
            path,
        })
    }
}

fn read_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Read(e.to_string())
}

/// Makes the rename durable (best effort: not every platform can open a directory).
async fn sync_dir(dir: &Path) {
    if let Ok(d) = tokio::fs::File::open(dir).await {
        let _ = d.sync_all().await;
    }
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
