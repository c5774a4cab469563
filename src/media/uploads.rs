//! The `media_uploads` rows and the files they name, kept in step when uploads and erasures run at
//! the same time.
//!
//! The invariant: a file is in the store exactly when a row names its hash (staged temporaries
//! aside). Two kinds of lock keep it, both PostgreSQL transaction-level advisory locks, so a crashed
//! holder's lock goes with its session:
//!
//! - **per data subject** (the student): an upload records its row under it, and an erasure holds it
//!   from reading the student's uploads until it commits. An upload therefore lands wholly before an
//!   erasure (which then finds and removes it) or wholly after it (new data, for a new erasure); it
//!   can never slip in between the erasure's reading and its commit and survive it.
//! - **per content hash**: publishing a file and inserting its row, and checking that no row of
//!   anyone else names a hash and deleting its file, both hold it. So a file shared by content is
//!   never deleted while another portfolio's row for it is being added, and a row is never added
//!   for a file that is being deleted.
//!
//! Locks are taken subject first, then hashes in sorted order, so no two holders wait on each other
//! in a cycle.

use super::store::{MediaStore, Staged, StoreError, Stored};
use crate::domain::{PortfolioId, StudentUid};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The lock of one data subject's media (see the module docs).
pub fn subject_lock_key(student: StudentUid) -> i64 {
    key(&["cim.media.subject:", &student.to_string()])
}

/// The lock of one stored content (see the module docs).
pub fn content_lock_key(sha256: &str) -> i64 {
    key(&["cim.media.content:", sha256])
}

/// The first 8 bytes of a SHA-256 of the parts: stable across builds, prefixed so the keys stay apart
/// from the export and projection locks. A collision only makes two holders wait for each other.
fn key(parts: &[&str]) -> i64 {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// Takes the subject's lock for the rest of the transaction on `conn`.
pub async fn lock_subject(conn: &mut PgConnection, student: StudentUid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock($1)",
        subject_lock_key(student)
    )
    .execute(conn)
    .await?;
    Ok(())
}

async fn lock_content(conn: &mut PgConnection, sha256: &str) -> Result<(), sqlx::Error> {
    sqlx::query!("SELECT pg_advisory_xact_lock($1)", content_lock_key(sha256))
        .execute(conn)
        .await?;
    Ok(())
}

/// An upload's row, as the route has checked and measured it.
#[derive(Debug, Clone)]
pub struct NewUpload<'a> {
    pub portfolio: PortfolioId,
    /// The portfolio's student: whose lock the upload takes.
    pub student: StudentUid,
    pub content_type: &'a str,
    pub size_bytes: i64,
    pub duration_ms: Option<i64>,
    /// The `sub` of the uploader.
    pub uploaded_by: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("recording the upload failed: {0}")]
    Database(#[from] sqlx::Error),
}

/// Publishes `staged` and records its row in one transaction, under the student's and the content's
/// locks. On any failure the upload leaves neither a row nor a file it created.
pub async fn record(
    pool: &PgPool,
    media: &MediaStore,
    staged: Staged,
    upload: &NewUpload<'_>,
) -> Result<Stored, UploadError> {
    let mut tx = pool.begin().await?;
    lock_subject(&mut tx, upload.student).await?;
    lock_content(&mut tx, &staged.sha256).await?;
    // The row first, the file second: when publishing fails, the rollback takes the row away; the
    // reverse order would need the file removed on a failed insert, by someone holding the lock.
    sqlx::query!(
        "INSERT INTO media_uploads \
             (sha256, portfolio_id, content_type, size_bytes, duration_ms, uploaded_by) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (portfolio_id, sha256) DO NOTHING",
        staged.sha256,
        upload.portfolio.as_uuid(),
        upload.content_type,
        upload.size_bytes,
        upload.duration_ms,
        upload.uploaded_by,
    )
    .execute(&mut *tx)
    .await?;
    let stored = media.publish(staged).await?;
    if let Err(e) = tx.commit().await {
        if stored.created {
            // The row did not commit, so the file this upload put there may be named by nobody.
            // Removed only if so, checked under the content lock again (another upload of the same
            // bytes may have recorded it in the meantime). When the database is away this fails
            // too and the file stays: better an unnamed file than a row whose file was deleted.
            if let Err(cleanup) = remove_if_unreferenced(pool, media, &stored.sha256).await {
                tracing::error!(error = %cleanup, "an unrecorded upload could not be removed");
            }
        }
        return Err(e.into());
    }
    Ok(stored)
}

async fn remove_if_unreferenced(
    pool: &PgPool,
    media: &MediaStore,
    sha256: &str,
) -> Result<(), UploadError> {
    let mut tx = pool.begin().await?;
    delete_unreferenced(&mut tx, media, &[sha256.to_owned()], &[]).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes the files of `hashes` that no row names except rows of the `leaving` portfolios (whose
/// rows the caller deletes in the same transaction). Takes each content's lock for the rest of the
/// transaction, in sorted order; returns how many files were deleted.
pub async fn delete_unreferenced(
    conn: &mut PgConnection,
    media: &MediaStore,
    hashes: &[String],
    leaving: &[Uuid],
) -> Result<u32, UploadError> {
    let mut hashes = hashes.to_vec();
    hashes.sort_unstable();
    hashes.dedup();
    let mut deleted = 0;
    for hash in &hashes {
        lock_content(conn, hash).await?;
        // Served by the index media_uploads_sha256.
        let named_elsewhere = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM media_uploads
                            WHERE sha256 = $1 AND portfolio_id <> ALL($2)) AS "named!""#,
            hash,
            leaving,
        )
        .fetch_one(&mut *conn)
        .await?;
        if !named_elsewhere && media.remove(hash).await.map_err(StoreError::Io)? {
            deleted += 1;
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_apart() {
        let student = StudentUid::new(Uuid::from_u128(7));
        assert_eq!(subject_lock_key(student), subject_lock_key(student));
        let hash = "ab".repeat(32);
        assert_eq!(content_lock_key(&hash), content_lock_key(&hash));
        assert_ne!(content_lock_key(&hash), content_lock_key(&"cd".repeat(32)));
        assert_ne!(subject_lock_key(student), crate::export::worker::lock_key());
    }
}
