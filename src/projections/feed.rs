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

impl FedEvents {
    /// One run of events from consecutive parts ([`State::find_run`]); `None` when there are none.
    /// A single part is served as it is; several are copied into one batch, outside the feed's lock.
    fn join(mut parts: Vec<FedEvents>) -> Option<FedEvents> {
        if parts.len() <= 1 {
            return parts.pop();
        }
        let events: Arc<[RecordedEvent]> = parts.iter().flat_map(|p| p.iter().cloned()).collect();
        let end = events.len();
        Some(FedEvents {
            events,
            start: 0,
            end,
        })
    }
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

    /// Up to `wanted` remembered events directly after `after`, as the parts of consecutive
    /// batches ([`FedEvents::join`] makes them one). A projection slower than the others falls
    /// behind by several of their small live batches; given one part at a time it would pay a
    /// transaction, a checkpoint update and a commit for each, and fall further behind under load
    /// (`cim-bench`: the portfolio applied batches of 20 events while 150 ms of events waited).
    /// Chaining is exact: each batch directly follows its start, so one that starts where another
    /// ends continues it.
    fn find_run(&self, after: Checkpoint, wanted: usize) -> Vec<FedEvents> {
        let mut parts: Vec<FedEvents> = Vec::new();
        let mut from = after;
        let mut missing = wanted;
        while missing > 0
            && let Some(part) = self.find(from, missing)
        {
            missing -= part.len();
            let ends_its_batch = part.end == part.events.len();
            from = part.last().map_or(from, |e| e.checkpoint);
            parts.push(part);
            if !ends_its_batch {
                break;
            }
        }
        parts
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
            let remembered = lock(&shared.state).find_run(after, wanted);
            if let Some(events) = FedEvents::join(remembered) {
                self.read_ahead_of(&events, wanted, limit);
                return Ok(events);
            }
            let reading = shared.reading.lock().await;
            // Another follower (or a read ahead) may have read it while this one waited for its
            // turn.
            let (found, forget, moved) = {
                let state = lock(&shared.state);
                match state.find_run(after, wanted) {
                    parts if !parts.is_empty() => (Some(parts), None, None),
                    _ => match state.room(Instant::now(), false) {
                        Ok(forget) => (None, forget, None),
                        // Every remembered batch is about to be used: wait for a follower to move
                        // on (or go stale) instead of forgetting one it needs.
                        Err(()) => (None, None, Some(shared.moved.notified())),
                    },
                }
            };
            if let Some(events) = found.and_then(FedEvents::join) {
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
mod tests;
