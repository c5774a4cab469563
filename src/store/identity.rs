//! One identity number, one student: the `identity_numbers` index (see `docs/identity.md`).
//!
//! A student UID claims the identity number of the portfolio it opens, in the same transaction as
//! the `PortfolioOpened` event, so no portfolio exists whose number another student holds, whatever
//! runs at the same time. The index stores a keyed hash of the number, never the number: equal
//! numbers still collide on the primary key, which is the check.
//!
//! The hash key is a subject key of its own ([`IDENTITY_INDEX_SUBJECT`] in `subject_keys`), so it
//! is wrapped by the master key like every other key and a master-key rotation re-wraps it too; it
//! never changes, so the index stays valid across rotations. No erasure names that subject. An
//! erasure deletes the student's rows instead (`app::erasure`): the hash is personal data too (it
//! can be tested against guesses by whoever holds the key).

use super::{EventStore, StoreError};
use sqlx::PgConnection;
use uuid::Uuid;

/// The reserved data subject whose key hashes identity numbers (a random constant, no person's
/// Ladok UID). Changing it would empty the index.
pub const IDENTITY_INDEX_SUBJECT: Uuid = Uuid::from_u128(0x3c2d_8e41_07aa_4f6b_9d15_c0e2_7b48_a903);

/// A student UID claiming an identity number (the 12 normalised digits).
#[derive(Clone, PartialEq, Eq)]
pub struct IdentityClaim {
    pub digits: String,
    pub student_uid: Uuid,
}

impl std::fmt::Debug for IdentityClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityClaim")
            .field("student_uid", &self.student_uid)
            .finish_non_exhaustive()
    }
}

impl EventStore {
    /// The index's keyed hash of a number (the 12 digits).
    async fn number_tag(
        &self,
        conn: &mut PgConnection,
        digits: &str,
    ) -> Result<Vec<u8>, StoreError> {
        let keys = self
            .live_keys(Some(&mut *conn), &[IDENTITY_INDEX_SUBJECT])
            .await?;
        let live = keys
            .get(&IDENTITY_INDEX_SUBJECT)
            .ok_or(StoreError::KeyRace)?;
        Ok(live.key.keyed_hash(digits.as_bytes()).to_vec())
    }

    /// Records `claim` inside the caller's transaction `conn`, unless the number belongs to another
    /// student already: then that student's UID is returned and nothing is written. The caller
    /// refuses the command and rolls back.
    pub async fn claim_identity_number(
        &self,
        conn: &mut PgConnection,
        claim: &IdentityClaim,
    ) -> Result<Option<Uuid>, StoreError> {
        let tag = self.number_tag(conn, &claim.digits).await?;
        // Two statements on purpose: when another transaction claims the same number at the same
        // moment, this INSERT waits for it, and the SELECT (a statement of its own, so a new
        // snapshot under READ COMMITTED) then sees its row if it committed.
        sqlx::query!(
            "INSERT INTO identity_numbers (number_hash, student_uid) VALUES ($1, $2)
             ON CONFLICT (number_hash) DO NOTHING",
            tag.as_slice(),
            claim.student_uid,
        )
        .execute(&mut *conn)
        .await?;
        let owner = sqlx::query_scalar!(
            "SELECT student_uid FROM identity_numbers WHERE number_hash = $1",
            tag.as_slice()
        )
        .fetch_one(&mut *conn)
        .await?;
        Ok((owner != claim.student_uid).then_some(owner))
    }

    /// Frees `claim`'s number from its student inside the caller's transaction (Ladok corrected it);
    /// a number held by another student is left alone.
    pub async fn release_identity_number(
        &self,
        conn: &mut PgConnection,
        claim: &IdentityClaim,
    ) -> Result<(), StoreError> {
        let tag = self.number_tag(conn, &claim.digits).await?;
        sqlx::query!(
            "DELETE FROM identity_numbers WHERE number_hash = $1 AND student_uid = $2",
            tag.as_slice(),
            claim.student_uid,
        )
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Whether another portfolio of the student than `stream_id` may still carry a typed number:
    /// opened without Ladok's confirmation, and neither corrected by Ladok nor erased since.
    pub async fn typed_elsewhere(
        &self,
        conn: &mut PgConnection,
        student_uid: Uuid,
        stream_id: &str,
    ) -> Result<bool, StoreError> {
        let typed = sqlx::query_scalar!(
            r#"SELECT EXISTS (
                 SELECT 1 FROM events o
                 WHERE o.event_type = 'PortfolioOpened'
                   AND o.payload->>'student_uid' = $1::uuid::text
                   AND o.stream_id <> $2
                   AND o.payload->>'identity_check' IS DISTINCT FROM 'confirmed'
                   AND NOT EXISTS (
                       SELECT 1 FROM events c
                       WHERE c.stream_id = o.stream_id
                         AND (c.event_type = 'PersonalDataErased'
                              OR (c.event_type = 'IdentityCheckedInLadok'
                                  AND c.payload->>'outcome' = 'corrected')))) AS "typed!""#,
            student_uid,
            stream_id,
        )
        .fetch_one(&mut *conn)
        .await?;
        Ok(typed)
    }
}
