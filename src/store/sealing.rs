//! Sealing without a round trip: the live subject keys this process appended with lately.
//!
//! Without it an append with personal data is four round trips (`BEGIN`, find or create the key,
//! the append, `COMMIT`), against one for an append without: the difference was most of the store
//! append's cost in `cim-bench` (a written reflection is personal). With it, an append whose
//! subjects' keys are known seals in memory and sends the append alone, carrying a guard: each key's
//! wrapped form as the process last saw it committed. The statement writes nothing unless every
//! subject's row still holds exactly that wrapped key (so the key is live, of that generation, and
//! wrapped by the current master key); otherwise the append goes the full way and the entry is
//! replaced.
//!
//! What a cached key changes, and what it does not:
//! - an erasure in another process: the guard sees the key gone and the append takes the full path,
//!   which creates the next generation, as before. An erasure that commits between the guard's
//!   snapshot and the append's commit leaves the append sealed with the erased key, so its personal
//!   part reads as erased: the race `keys.rs` already describes for the full path;
//! - an entry is only made from a key that committed (after the full path's transaction), so a key
//!   created in a transaction that rolled back is never used;
//! - reads never use this cache: they fetch keys per read, so an erasure takes effect on the next
//!   read everywhere;
//! - the unwrapped keys stay in memory a while longer; the master key that unwraps every one of them
//!   is in the same memory for the process's whole life, so nothing becomes readable that was not.

use crate::crypto::DataKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// More subjects than a busy term's active students on one instance; when full the cache starts
/// over (an entry costs one full-path append to make again).
const CAPACITY: usize = 8_192;

/// A live key as an append uses it.
#[derive(Clone)]
pub(super) struct LiveKey {
    pub generation: i32,
    pub key: Arc<DataKey>,
    /// The key as stored, wrapped by the master key: what the append's guard compares.
    pub wrapped: Vec<u8>,
}

/// The process's cache of committed live keys, shared by the clones of an `EventStore`.
#[derive(Default)]
pub(super) struct SealingKeys {
    keys: Mutex<HashMap<Uuid, LiveKey>>,
}

impl std::fmt::Debug for SealingKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingKeys").finish_non_exhaustive()
    }
}

impl SealingKeys {
    /// The cached keys of all of `subjects`, or `None` if any is missing.
    pub fn get_all(&self, subjects: &[Uuid]) -> Option<HashMap<Uuid, LiveKey>> {
        let keys = self.keys.lock().expect("sealing keys lock");
        subjects
            .iter()
            .map(|s| keys.get(s).map(|k| (*s, k.clone())))
            .collect()
    }

    /// Remembers keys that have committed.
    pub fn remember(&self, live: &HashMap<Uuid, LiveKey>) {
        let mut keys = self.keys.lock().expect("sealing keys lock");
        if keys.len() + live.len() > CAPACITY {
            keys.clear();
        }
        for (subject, key) in live {
            keys.insert(*subject, key.clone());
        }
    }

    /// Forgets keys a guard found stale (erased, of a newer generation, or re-wrapped).
    pub fn forget(&self, subjects: &[Uuid]) {
        let mut keys = self.keys.lock().expect("sealing keys lock");
        for subject in subjects {
            keys.remove(subject);
        }
    }
}

/// The guard an append carries: each subject with the wrapped key its personal data was sealed
/// under. Empty for an append that sealed inside its own transaction (nothing to check).
#[derive(Debug, Default)]
pub(super) struct KeyGuard {
    pub subjects: Vec<Uuid>,
    pub wrapped: Vec<Vec<u8>>,
}

impl KeyGuard {
    pub fn of(live: &HashMap<Uuid, LiveKey>) -> Self {
        let (subjects, wrapped) = live.iter().map(|(s, k)| (*s, k.wrapped.clone())).unzip();
        Self { subjects, wrapped }
    }
}
