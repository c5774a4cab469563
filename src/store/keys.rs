//! Crypto-shredding in the store: the `personal` part of every appended event is sealed with its
//! data subject's key (`subject_keys`, wrapped by the process's master key, see `crate::crypto`),
//! and every read path opens it again through [`SubjectKeys`]. An erased subject's key is gone, so
//! their personal data reads as `None`: the "erased" the domain already understands.
//!
//! What a sealed value reads as:
//! - the subject's key is live and of the envelope's generation: the plaintext;
//! - the key was erased, or the envelope is of an older generation: `None` (erased);
//! - the subject has no row at all: an error ([`StoreError::KeyMissing`]), never "erased", so a lost
//!   key table cannot pass for a mass erasure (the export worker would otherwise record every
//!   holder as erased for good). [`check_keys`] finds that at start-up.
//!
//! Plaintext written before sealing existed passes through unchanged (and is removed by erasure).
//!
//! Keys are fetched per read, never cached across reads: an erasure in another process takes effect
//! on the next read everywhere. An append that fetched a live key just before an erasure committed
//! seals with the erased generation, so its personal part reads as erased too: a race between the two
//! can lose the racing append's personal data, never keep the erased person's. Appends may seal
//! with a key this process saw committed, checked by the append itself (`sealing.rs`).

use super::sealing::LiveKey;
use super::{EventStore, NewEvent, StoreError};
use crate::crypto::cipher::{SealContext, envelope_generation};
use crate::crypto::{self, DataKey, MasterKey, is_sealed};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// A subject key as a reader sees it.
enum Entry {
    Live { generation: i32, key: DataKey },
    Erased,
}

/// The keys of the subjects of some events, loaded once for a batch of rows.
#[derive(Default)]
pub struct SubjectKeys {
    keys: HashMap<Uuid, Entry>,
}

impl std::fmt::Debug for SubjectKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubjectKeys")
            .field("subjects", &self.keys.len())
            .finish()
    }
}

/// The subjects whose stored personal values are sealed (the ones worth loading keys for).
pub fn sealed_subjects<'a>(
    rows: impl IntoIterator<Item = (Option<Uuid>, Option<&'a Value>)>,
) -> Vec<Uuid> {
    let mut subjects: Vec<Uuid> = rows
        .into_iter()
        .filter_map(|(subject, personal)| subject.filter(|_| personal.is_some_and(is_sealed)))
        .collect();
    subjects.sort_unstable();
    subjects.dedup();
    subjects
}

impl SubjectKeys {
    /// Loads and unwraps the keys of `subjects` (one query; none when the list is empty).
    pub async fn load<'c>(
        executor: impl PgExecutor<'c>,
        subjects: &[Uuid],
    ) -> Result<Self, StoreError> {
        if subjects.is_empty() {
            return Ok(Self::default());
        }
        let master = crypto::installed()?;
        let rows = sqlx::query!(
            "SELECT data_subject, generation, wrapped_key FROM subject_keys \
             WHERE data_subject = ANY($1)",
            subjects
        )
        .fetch_all(executor)
        .await?;
        let mut keys = HashMap::with_capacity(rows.len());
        for row in rows {
            let (subject, generation) = (row.data_subject, row.generation);
            let entry = match row.wrapped_key {
                Some(wrapped) => Entry::Live {
                    generation,
                    key: unwrap(master, subject, &wrapped)?,
                },
                None => Entry::Erased,
            };
            keys.insert(subject, entry);
        }
        Ok(Self { keys })
    }

    /// The stored personal value of event `position` as readers get it: opened, `None` when
    /// erased, or unchanged when it is legacy plaintext.
    pub fn open(
        &self,
        position: i64,
        event_id: Uuid,
        subject: Option<Uuid>,
        stored: Option<Value>,
    ) -> Result<Option<Value>, StoreError> {
        let Some(stored) = stored else {
            return Ok(None);
        };
        if !is_sealed(&stored) {
            return Ok(Some(stored));
        }
        let unseal = |reason| StoreError::Unseal { position, reason };
        let subject = subject.ok_or(unseal(crypto::CryptoError::Malformed))?;
        let generation =
            envelope_generation(&stored).ok_or(unseal(crypto::CryptoError::Malformed))?;
        match self.keys.get(&subject) {
            None => Err(StoreError::KeyMissing { position }),
            Some(Entry::Erased) => Ok(None),
            // Sealed with a key that was erased since; the person has a new key for newer data.
            Some(Entry::Live { generation: g, .. }) if *g != generation => Ok(None),
            Some(Entry::Live { key, .. }) => {
                let context = SealContext {
                    event_id,
                    subject,
                    generation,
                };
                key.open(context, &stored).map(Some).map_err(unseal)
            }
        }
    }
}

fn unwrap(master: &MasterKey, subject: Uuid, wrapped: &[u8]) -> Result<DataKey, StoreError> {
    master
        .unwrap(subject, wrapped)
        .map_err(|reason| StoreError::KeyUnwrap {
            master_key_id: master.id().to_owned(),
            reason,
        })
}

/// `events` with their personal parts sealed, and the keys that sealed them.
pub(super) struct Sealed {
    pub events: Vec<NewEvent>,
    pub keys: HashMap<Uuid, LiveKey>,
}

impl EventStore {
    /// `events` with their personal parts sealed, creating subject keys where needed. `conn` is the
    /// caller's transaction (`append_in`), else the pool is used. Events without personal data pass
    /// unchanged, so appends of them cost nothing extra.
    pub(super) async fn seal(
        &self,
        conn: Option<&mut PgConnection>,
        events: &[NewEvent],
    ) -> Result<Sealed, StoreError> {
        let subjects = sealed_subjects_of_new(events);
        if subjects.is_empty() {
            return Ok(Sealed {
                events: events.to_vec(),
                keys: HashMap::new(),
            });
        }
        let keys = self.live_keys(conn, &subjects).await?;
        Ok(Sealed {
            events: seal_with(events, &keys)?,
            keys,
        })
    }

    /// `events` sealed with keys this process saw committed (`sealing.rs`), without a round trip;
    /// `None` when a subject's key is not at hand.
    pub(super) fn seal_cached(&self, events: &[NewEvent]) -> Option<Sealed> {
        let keys = self.sealing.get_all(&sealed_subjects_of_new(events))?;
        let events = seal_with(events, &keys).ok()?;
        Some(Sealed { events, keys })
    }

    /// A live key for each of `subjects`, created where missing (or erased). `conn` is the caller's
    /// transaction, else the pool is used. A subject missing from the answer lost a race with an
    /// erasure three times ([`StoreError::KeyRace`] for its caller).
    pub(super) async fn live_keys(
        &self,
        mut conn: Option<&mut PgConnection>,
        subjects: &[Uuid],
    ) -> Result<HashMap<Uuid, LiveKey>, StoreError> {
        let master = crypto::installed()?;
        let mut live: HashMap<Uuid, LiveKey> = HashMap::new();
        // A key created by a concurrent append is invisible to this statement's snapshot; the next
        // round sees it. Three rounds cover any interleaving of one creator and one eraser.
        for _ in 0..3 {
            let missing: Vec<Uuid> = subjects
                .iter()
                .copied()
                .filter(|s| !live.contains_key(s))
                .collect();
            if missing.is_empty() {
                break;
            }
            let candidates: Vec<Vec<u8>> = missing
                .iter()
                .map(|s| master.wrap(*s, &DataKey::generate()))
                .collect();
            // Existing live keys are returned as they are; missing or erased ones are created
            // (an erased one at the next generation).
            let query = sqlx::query!(
                r#"WITH wanted AS (
                     SELECT * FROM unnest($1::uuid[], $2::bytea[]) AS w(data_subject, wrapped_key)
                 ),
                 existing AS (
                     SELECT k.data_subject, k.generation, k.wrapped_key FROM subject_keys k
                     WHERE k.data_subject = ANY($1) AND k.wrapped_key IS NOT NULL
                 ),
                 created AS (
                     INSERT INTO subject_keys (data_subject, wrapped_key, master_key_id)
                     SELECT w.data_subject, w.wrapped_key, $3 FROM wanted w
                     WHERE w.data_subject NOT IN (SELECT data_subject FROM existing)
                     ON CONFLICT (data_subject) DO UPDATE
                         SET generation = subject_keys.generation + 1,
                             wrapped_key = EXCLUDED.wrapped_key,
                             master_key_id = EXCLUDED.master_key_id,
                             created_at = now()
                         WHERE subject_keys.wrapped_key IS NULL
                     RETURNING data_subject, generation, wrapped_key
                 )
                 SELECT data_subject AS "data_subject!", generation AS "generation!",
                        wrapped_key AS "wrapped_key!"
                 FROM existing
                 UNION ALL
                 SELECT data_subject, generation, wrapped_key FROM created"#,
                &missing,
                &candidates,
                master.id(),
            );
            let rows = match conn.as_deref_mut() {
                Some(conn) => query.fetch_all(conn).await?,
                None => query.fetch_all(&self.pool).await?,
            };
            for row in rows {
                let subject = row.data_subject;
                let key = unwrap(master, subject, &row.wrapped_key)?;
                let live_key = LiveKey {
                    generation: row.generation,
                    key: Arc::new(key),
                    wrapped: row.wrapped_key,
                };
                live.insert(subject, live_key);
            }
        }
        Ok(live)
    }
}

/// `events` with each personal part sealed under its subject's key in `keys`.
fn seal_with(
    events: &[NewEvent],
    keys: &HashMap<Uuid, LiveKey>,
) -> Result<Vec<NewEvent>, StoreError> {
    events
        .iter()
        .map(|event| {
            let mut event = event.clone();
            if let (Some(personal), Some(subject)) = (&event.personal, event.data_subject) {
                let live = keys.get(&subject).ok_or(StoreError::KeyRace)?;
                let context = SealContext {
                    event_id: event.event_id,
                    subject,
                    generation: live.generation,
                };
                event.personal = Some(live.key.seal(context, personal));
            }
            Ok(event)
        })
        .collect()
}

fn sealed_subjects_of_new(events: &[NewEvent]) -> Vec<Uuid> {
    let mut subjects: Vec<Uuid> = events
        .iter()
        .filter(|e| e.personal.is_some())
        .filter_map(|e| e.data_subject)
        .collect();
    subjects.sort_unstable();
    subjects.dedup();
    subjects
}

/// What is wrong with the keys, found at start-up.
#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    #[error(
        "the table subject_keys is missing, but the event log holds sealed personal data: the keys \
         were lost. Restore subject_keys from a backup; without it the personal data in the log \
         cannot be read"
    )]
    TableMissing,
    #[error(
        "{events} events of {subjects} data subjects hold sealed personal data whose keys are not in \
         subject_keys (the key table was emptied or only partly restored). Restore subject_keys from \
         a backup. Erased people keep a row (a tombstone), so this is not an erasure"
    )]
    KeysLost { events: i64, subjects: i64 },
    #[error(
        "the subject keys are wrapped by master key {stored}, but this process was started with \
         master key {configured}: configure the master key this database was written with \
         (CIM_MASTER_KEY, CIM_MASTER_KEY_FILE or <data dir>/master.key), or finish a rotation with \
         `cim keys rotate`"
    )]
    WrongMasterKey { stored: String, configured: String },
    #[error("cannot check the subject keys: {0}")]
    Database(#[from] sqlx::Error),
}

/// Start-up check: the key table exists, every sealed event's subject has a key row (live or
/// erased), and the live keys are wrapped by `master`.
pub async fn check_keys(pool: &sqlx::PgPool, master: &MasterKey) -> Result<(), KeyCheckError> {
    let table = sqlx::query_scalar!("SELECT to_regclass('subject_keys')::text")
        .fetch_one(pool)
        .await?;
    if table.is_none() {
        return Err(KeyCheckError::TableMissing);
    }
    let stored = sqlx::query_scalar!(
        r#"SELECT DISTINCT master_key_id AS "master_key_id!" FROM subject_keys
         WHERE master_key_id IS NOT NULL"#
    )
    .fetch_all(pool)
    .await?;
    if let Some(other) = stored.into_iter().find(|id| id != master.id()) {
        return Err(KeyCheckError::WrongMasterKey {
            stored: other,
            configured: master.id().to_owned(),
        });
    }
    let lost = sqlx::query!(
        r#"SELECT count(*) AS "events!", count(DISTINCT e.data_subject) AS "subjects!" FROM events e
         WHERE e.data_subject IS NOT NULL AND e.personal ? 'sealed'
           AND NOT EXISTS (SELECT 1 FROM subject_keys k WHERE k.data_subject = e.data_subject)"#
    )
    .fetch_one(pool)
    .await?;
    let (events, subjects) = (lost.events, lost.subjects);
    if events > 0 {
        return Err(KeyCheckError::KeysLost { events, subjects });
    }
    Ok(())
}

/// Re-wraps every live subject key from `old` to `new` in one transaction. Returns how many keys
/// were re-wrapped. Afterwards only `new` opens the data: start every process with it.
pub async fn rotate_master_key(
    pool: &sqlx::PgPool,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<u64, StoreError> {
    let mut tx = pool.begin().await?;
    // Locks the rows so an append cannot create a key under the old master key meanwhile.
    // Both columns are non-null here: a row has both or neither (a CHECK in the migration).
    let rows = sqlx::query!(
        r#"SELECT data_subject, wrapped_key AS "wrapped_key!", master_key_id AS "master_key_id!"
         FROM subject_keys
         WHERE wrapped_key IS NOT NULL FOR UPDATE"#
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut rotated = 0;
    for row in rows {
        let subject = row.data_subject;
        if row.master_key_id == new.id() {
            continue;
        }
        let key = unwrap(old, subject, &row.wrapped_key)?;
        sqlx::query!(
            "UPDATE subject_keys SET wrapped_key = $2, master_key_id = $3 WHERE data_subject = $1",
            subject,
            new.wrap(subject, &key),
            new.id(),
        )
        .execute(&mut *tx)
        .await?;
        rotated += 1;
    }
    tx.commit().await?;
    Ok(rotated)
}
