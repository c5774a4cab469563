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
    /// The checkpoint a read ahead is reading after, while it runs.
    ahead: Option<Checkpoint>,
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

    /// Whether every follower still moving has gone past `batch`: no one will ask for it again.
    fn passed(&self, batch: &Remembered, now: Instant) -> bool {
        let Some(last) = batch.events.last() else {
            return true;
        };
        self.followers
            .values()
            .all(|(at, asked)| now - *asked >= STALE || last.checkpoint <= *at)
    }

    /// The index of a batch to forget for a new one, `None` when there is room already; `Err`
    /// when every remembered batch is still needed. A batch every follower has passed goes first.
    /// Failing that, a follower's own read may forget one that only lies ahead of slower followers
    /// (a projection far behind, say rebuilding from the start, must not hold the others back); a
    /// read ahead may not, or it would make the slower ones read that batch again.
    fn room(&self, now: Instant, ahead: bool) -> Result<Option<usize>, ()> {
        if self.batches.len() < REMEMBERED_BATCHES {
            return Ok(None);
        }
        if let Some(index) = self.batches.iter().position(|b| self.passed(b, now)) {
            return Ok(Some(index));
        }
        if ahead {
            return Err(());
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
            let remembered = lock(&shared.state).find(after, wanted);
            if let Some(events) = remembered {
                self.read_ahead_of(&events, wanted, limit);
                return Ok(events);
            }
            let reading = shared.reading.lock().await;
            // Another follower (or a read ahead) may have read it while this one waited for its
            // turn.
            let (found, forget, moved) = {
                let state = lock(&shared.state);
                match state.find(after, wanted) {
                    Some(events) => (Some(events), None, None),
                    None => match state.room(Instant::now(), false) {
                        Ok(forget) => (None, forget, None),
                        // Every remembered batch is about to be used: wait for a follower to move
                        // on (or go stale) instead of forgetting one it needs.
                        Err(()) => (None, None, Some(shared.moved.notified())),
                    },
                }
            };
            if let Some(events) = found {
                drop(reading);
                self.read_ahead_of(&events, wanted, limit);
                return Ok(events);
            }
            if let Some(moved) = moved {
                drop(reading);
                let _ = tokio::time::timeout(RECHECK, moved).await;
                continue;
            }
            let events = shared.read(after, limit, forget, false).await?;
            drop(reading);
            let end = events.len();
            let fed = FedEvents {
                events,
                start: 0,
                end,
            };
            self.read_ahead_of(&fed, wanted, limit);
            return Ok(fed);
        }
    }

    /// Starts reading the batch after `fed` while the follower applies it, when `fed` ends a full
    /// batch: the log then most likely goes on (a rebuild, a catch-up after downtime), and the
    /// next read overlaps with the work on this one instead of following it, the database's part
    /// of a read on one core and the projections' on the other. A batch that was not full ended at
    /// the head of the log, so the live tail never reads ahead. At most one read ahead runs at a
    /// time, one batch beyond the batch served.
    fn read_ahead_of(&self, fed: &FedEvents, wanted: usize, limit: i64) {
        if fed.end != fed.events.len() || fed.events.len() < wanted {
            return;
        }
        let Some(next) = fed.events.last().map(|e| e.checkpoint) else {
            return;
        };
        {
            let mut state = lock(&self.shared.state);
            if state.ahead.is_some() || state.find(next, 1).is_some() {
                return;
            }
            state.ahead = Some(next);
        }
        tokio::spawn(read_ahead(self.shared.clone(), next, limit));
    }
}

impl Shared {
    /// Reads the batch after `after` from the log and remembers it in place of `forget` (or of a
    /// batch [`State::room`] gives up, for a read `ahead` or not). The caller holds `reading`.
    async fn read(
        &self,
        after: Checkpoint,
        limit: i64,
        forget: Option<usize>,
        ahead: bool,
    ) -> Result<Arc<[RecordedEvent]>, StoreError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let events: Arc<[RecordedEvent]> = self
            .store
            .read_after_omitting_personal(after, limit)
            .await?
            .into();
        let mut state = lock(&self.state);
        if ahead {
            // Cleared where the batch becomes visible: a follower served it right away must be
            // able to start the next read ahead.
            state.ahead = None;
        }
        if !events.is_empty() {
            // Asked again: the read took time, and the batch chosen may be gone already.
            if let Some(index) = forget.or_else(|| state.room(Instant::now(), ahead).ok().flatten())
                && index < state.batches.len()
            {
                state.batches.remove(index);
            }
            state.batches.push_back(Remembered {
                after,
                events: events.clone(),
            });
        }
        Ok(events)
    }
}

/// A read ahead (see [`Follower::read_ahead_of`]): one batch, read and remembered if there is
/// room for it without forgetting a batch a follower still needs. A failed read is only logged: a
/// follower that asks for the batch reads it itself, and meets the error then.
async fn read_ahead(shared: Arc<Shared>, after: Checkpoint, limit: i64) {
    let reading = shared.reading.lock().await;
    let room = {
        let state = lock(&shared.state);
        match state.find(after, 1) {
            Some(_) => None,
            None => state.room(Instant::now(), true).ok(),
        }
    };
    if let Some(forget) = room
        && let Err(e) = shared.read(after, limit, forget, true).await
    {
        tracing::debug!(error = %e, "reading ahead in the log failed");
    }
    // Whatever happened, before another read can start (unless a new read ahead began already).
    let mut state = lock(&shared.state);
    if state.ahead == Some(after) {
        state.ahead = None;
    }
    drop(state);
    drop(reading);
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

    /// Eight remembered batches of one event each, the one at index `i` after position `i`.
    fn full_state() -> State {
        let mut state = State::default();
        for i in 0..REMEMBERED_BATCHES as i64 {
            state.batches.push_back(Remembered {
                after: Checkpoint {
                    transaction_id: 1,
                    position: i,
                },
                events: vec![event(1, i + 1)].into(),
            });
        }
        state
    }

    fn at(position: i64) -> Checkpoint {
        Checkpoint {
            transaction_id: 1,
            position,
        }
    }

    #[test]
    fn a_full_feed_forgets_what_every_follower_passed_and_a_read_ahead_nothing_else() {
        let now = Instant::now();
        let mut state = full_state();
        // Both followers are past the first three batches: the oldest of them goes.
        state.followers.insert(1, (at(3), now));
        state.followers.insert(2, (at(6), now));
        assert_eq!(state.room(now, true), Ok(Some(0)));
        assert_eq!(state.room(now, false), Ok(Some(0)));
        // One follower is about to read the first batch: nothing is behind everyone. A follower's
        // own read may forget a batch only ahead of the slow one (the second); a read ahead waits.
        state.followers.insert(1, (at(0), now));
        assert_eq!(state.room(now, true), Err(()));
        assert_eq!(state.room(now, false), Ok(Some(1)));
        // A follower that stopped asking holds nothing back.
        state.followers.insert(1, (at(0), now - STALE));
        assert_eq!(state.room(now, true), Ok(Some(0)));
    }
}
