//! One read of the log for every projection that needs the same events.
//!
//! Every projection tails the same log. Read separately, five projections read and decode every
//! event five times; on a two-core machine that alone held a rebuild of all of them at a fraction of
//! what a single scan reads (`cim-bench`, section 5). A [`LogFeed`] keeps the last few batches it read
//! and hands them to every projection that asks for events after the same point, so the log is read
//! and decoded once however many projections follow it.
//!
//! Why serving a remembered batch is right: a batch is what the gap-safe tail
//! (`EventStore::read_after_omitting_personal`) returned after a checkpoint, and that tail never
//! returns an event before another that can still commit in front of it. So the events of a batch
//! directly follow its starting checkpoint in the log's global order forever, and so does any suffix
//! of it: a projection that is given one applies exactly the events it would have read itself. A
//! remembered batch may end earlier than a fresh read would (more may have been committed since);
//! the projection then simply asks again from the batch's end, which is not remembered yet and is
//! read from the database. An empty read is never remembered, so "nothing new" is always asked of
//! the database.
//!
//! Reads are made one at a time (under one lock), so projections waiting for the same batch wait
//! for the first one's read instead of making their own. A projection whose checkpoint lies inside
//! a remembered batch (a rebuild that started later, a projection that took over) is given the rest
//! of that batch, after which it reads in step with the others. A batch that a follower is about
//! to be served is not forgotten while that follower keeps moving: a projection that applies faster
//! than another waits for it (at most [`STALE`]) instead of leaving it to read the log alone, which
//! would make every projection read everything again.

use crate::store::{Checkpoint, EventStore, RecordedEvent, StoreError};
use std::collections::{HashMap, VecDeque};
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Notify};

/// How many batches a feed remembers: enough for projections that apply at somewhat different
/// speeds to keep sharing reads, few enough that the memory stays small (a batch of 1,000 events
/// without their personal part takes a few MiB).
const REMEMBERED_BATCHES: usize = 8;

/// Events after a checkpoint, as a projection applies them: part of a batch the feed read.
#[derive(Debug, Clone)]
pub struct FedEvents {
    events: Arc<[RecordedEvent]>,
    start: usize,
    end: usize,
}

impl Deref for FedEvents {
    type Target = [RecordedEvent];

    fn deref(&self) -> &[RecordedEvent] {
        &self.events[self.start..self.end]
    }
}

/// A batch the feed read: the checkpoint it was read after, and what the log returned.
#[derive(Debug)]
struct Remembered {
    after: Checkpoint,
    events: Arc<[RecordedEvent]>,
}

impl Remembered {
    /// The part of this batch that directly follows `after`, at most `limit` events, when `after`
    /// is where this batch starts or one of its events.
    fn after(&self, after: Checkpoint, limit: usize) -> Option<FedEvents> {
        let start = if after == self.after {
            0
        } else {
            // Events are in checkpoint order; find the one at `after`.
            let index = self.events.partition_point(|e| e.checkpoint < after);
            if self.events.get(index)?.checkpoint != after {
                return None;
            }
            index + 1
        };
        let end = self.events.len().min(start + limit);
        (start < end).then(|| FedEvents {
            events: self.events.clone(),
            start,
            end,
        })
    }
}

/// The shared reader of the log's tail for the projections of one process (or of one rebuild).
/// Cheap to clone: clones share what was read. Each projection reads through a [`Follower`].
#[derive(Debug, Clone)]
pub struct LogFeed {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    store: EventStore,
    /// The remembered batches and where each follower is. Never held across an `.await`.
    state: StdMutex<State>,
    /// Held while reading from the database: one read at a time.
    reading: Mutex<()>,
    /// Signalled whenever a follower asks for the events after a new point.
    moved: Notify,
    /// Reads that went to the database (for `cim-bench` and the tests).
    reads: AtomicU64,
    next_follower: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    batches: VecDeque<Remembered>,
    /// Where each follower last asked to read from, and when.
    followers: HashMap<u64, (Checkpoint, Instant)>,
}

/// A follower that has not asked for anything for this long (a projection stuck on an error, one
/// applying an enormous batch) no longer keeps batches remembered for it.
const STALE: Duration = Duration::from_secs(5);

/// How often a reader waiting for room re-examines the followers, notifications aside.
const RECHECK: Duration = Duration::from_millis(100);

impl State {
    fn find(&self, after: Checkpoint, wanted: usize) -> Option<FedEvents> {
        self.batches
            .iter()
            .rev()
            .find_map(|b| b.after(after, wanted))
    }

    /// Whether `batch` is about to be served to a follower that is still moving.
    fn needed(&self, batch: &Remembered, now: Instant) -> bool {
        self.followers
            .values()
            .any(|(at, asked)| now - *asked < STALE && batch.after(*at, 1).is_some())
    }

    /// The index of a batch to forget for a new one, `None` when there is room already; `Err`
    /// when every remembered batch is still needed.
    fn room(&self, now: Instant) -> Result<Option<usize>, ()> {
        if self.batches.len() < REMEMBERED_BATCHES {
            return Ok(None);
        }
        match self.batches.iter().position(|b| !self.needed(b, now)) {
            Some(index) => Ok(Some(index)),
            None => Err(()),
        }
    }
}

impl LogFeed {
    pub fn new(store: EventStore) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                state: StdMutex::new(State::default()),
                reading: Mutex::new(()),
                moved: Notify::new(),
                reads: AtomicU64::new(0),
                next_follower: AtomicU64::new(0),
            }),
        }
    }

    /// A reader of the feed, for one projection.
    pub fn follow(&self) -> Follower {
        Follower {
            shared: self.shared.clone(),
            id: self.shared.next_follower.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// How many reads went to the database so far (the others were served from memory).
    pub fn reads_from_log(&self) -> u64 {
        self.shared.reads.load(Ordering::Relaxed)
    }

    pub fn store(&self) -> &EventStore {
        &self.shared.store
    }
}

/// One projection's reader of a [`LogFeed`]. While it keeps asking, the feed keeps the batch it is
/// in: a follower that reads ahead waits (a little) for the others rather than forget a batch
/// they are about to need, so projections rebuilt together stay in step and share every read.
#[derive(Debug)]
pub struct Follower {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Follower {
    fn drop(&mut self) {
        lock(&self.shared.state).followers.remove(&self.id);
        self.shared.moved.notify_waiters();
    }
}

fn lock(state: &StdMutex<State>) -> std::sync::MutexGuard<'_, State> {
    // The state is a cache: whatever a panicking holder left is still consistent enough.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Follower {
    /// At most `limit` events directly after `after`, without their personal part: from a batch
    /// read before when one covers `after`, else read from the log (and remembered).
    pub async fn read_after(&self, after: Checkpoint, limit: i64) -> Result<FedEvents, StoreError> {
        let shared = &self.shared;
        let wanted = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
        {
            let mut state = lock(&shared.state);
            state.followers.insert(self.id, (after, Instant::now()));
        }
        shared.moved.notify_waiters();
        loop {
            if let Some(events) = lock(&shared.state).find(after, wanted) {
                return Ok(events);
            }
            let reading = shared.reading.lock().await;
            // Another follower may have read it while this one waited for its turn.
            let (forget, moved) = {
                let state = lock(&shared.state);
                if let Some(events) = state.find(after, wanted) {
                    return Ok(events);
                }
                match state.room(Instant::now()) {
                    Ok(forget) => (forget, None),
                    // Every remembered batch is about to be used: wait for a follower to move on
                    // (or go stale) instead of forgetting one it needs.
                    Err(()) => (None, Some(shared.moved.notified())),
                }
            };
            if let Some(moved) = moved {
                drop(reading);
                let _ = tokio::time::timeout(RECHECK, moved).await;
                continue;
            }
            shared.reads.fetch_add(1, Ordering::Relaxed);
            let events: Arc<[RecordedEvent]> = shared
                .store
                .read_after_omitting_personal(after, limit)
                .await?
                .into();
            if !events.is_empty() {
                let mut state = lock(&shared.state);
                // Asked again: the read took time, and the batch chosen may be gone already.
                if let Some(index) = forget.or_else(|| state.room(Instant::now()).ok().flatten())
                    && index < state.batches.len()
                {
                    state.batches.remove(index);
                }
                state.batches.push_back(Remembered {
                    after,
                    events: events.clone(),
                });
            }
            let end = events.len();
            return Ok(FedEvents {
                events,
                start: 0,
                end,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ActorRole;
    use chrono::Utc;
    use uuid::Uuid;

    fn event(transaction_id: i64, position: i64) -> RecordedEvent {
        RecordedEvent {
            checkpoint: Checkpoint {
                transaction_id,
                position,
            },
            stream_id: "s".into(),
            version: 1,
            event_id: Uuid::nil(),
            event_type: "T".into(),
            schema_version: 1,
            stored_schema_version: 1,
            payload: serde_json::Value::Null,
            personal: None,
            data_subject: None,
            actor_id: "a".into(),
            actor_role: ActorRole::System,
            correlation_id: Uuid::nil(),
            causation_id: None,
            command_id: Uuid::nil(),
            recorded_at: Utc::now(),
        }
    }

    fn batch() -> Remembered {
        Remembered {
            after: Checkpoint {
                transaction_id: 5,
                position: 9,
            },
            events: vec![event(7, 10), event(7, 11), event(8, 12)].into(),
        }
    }

    fn positions(events: Option<FedEvents>) -> Vec<i64> {
        events.map_or_else(Vec::new, |e| e.iter().map(|e| e.position()).collect())
    }

    #[test]
    fn a_batch_serves_its_start_and_the_rest_after_any_of_its_events() {
        let b = batch();
        assert_eq!(positions(b.after(b.after, 100)), [10, 11, 12]);
        assert_eq!(positions(b.after(b.after, 2)), [10, 11]);
        assert_eq!(positions(b.after(b.events[0].checkpoint, 100)), [11, 12]);
        assert_eq!(positions(b.after(b.events[1].checkpoint, 1)), [12]);
    }

    #[test]
    fn a_batch_serves_nothing_it_cannot_vouch_for() {
        let b = batch();
        // After its last event: the log beyond it was not read.
        assert!(b.after(b.events[2].checkpoint, 100).is_none());
        // A checkpoint that is none of its events nor its start.
        let between = Checkpoint {
            transaction_id: 7,
            position: 10_000,
        };
        assert!(b.after(between, 100).is_none());
        let before = Checkpoint {
            transaction_id: 1,
            position: 1,
        };
        assert!(b.after(before, 100).is_none());
    }
}
