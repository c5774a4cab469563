//! States folded from streams, remembered by the exact version they were folded up to.
//!
//! A fold of a stream up to version v depends only on the events at versions <= v, and those never
//! change (one event per version, and erasure only touches the personal column: a reader of personal
//! data must fold again after an erasure, see `app::handler`). So an entry keyed by its version is
//! never stale; applying events in another order than the cache saw them is a miss, never a wrong
//! state. The projections (`projections::read_models::stream`) and the command handler each keep
//! caches of this type.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// States folded from streams, each known to be the fold of its stream up to one version (see
/// above for why an entry never goes stale). The mutex is only held for a map operation, never
/// across an `.await`.
///
/// Bounded by two generations of at most `capacity / 2` streams each: when the current one is full
/// it becomes the old one and the previous old one is dropped, so streams that are still being
/// advanced survive (a hit moves an entry to the current generation) and memory stays bounded
/// without bookkeeping per entry. With a maximum age ([`FoldCache::with_max_age`]), a generation
/// also turns over once it is that old, so an entry nobody uses is gone after at most twice the age
/// (at the cache's next use): for folds that hold personal data. With a weight
/// ([`FoldCache::weighed`]), a generation also turns over once its states weigh half the bound, so
/// the memory held stays bounded however large the states grow.
#[derive(Debug)]
pub struct FoldCache<S> {
    generations: Mutex<Generations<S>>,
    per_generation: usize,
    max_age: Option<Duration>,
    /// With [`FoldCache::weighed`]: a generation also turns over at this weight.
    weight: Option<Weight<S>>,
}

/// A bound on the sum of the entries' weights (bytes, as the weigher estimates them) per
/// generation.
#[derive(Debug)]
struct Weight<S> {
    per_generation: usize,
    of: fn(&S) -> usize,
}

/// A fold, the version it is the fold up to, when it was last known to be the stream's latest (put
/// after a read or a write of the stream), and its weight.
#[derive(Debug)]
struct Entry<S> {
    version: i32,
    put_at: Instant,
    weight: usize,
    state: S,
}

#[derive(Debug)]
struct Generations<S> {
    current: HashMap<String, Entry<S>>,
    old: HashMap<String, Entry<S>>,
    /// The weight of the entries in `current`.
    current_weight: usize,
    /// When `current` started.
    started: Instant,
}

impl<S> Generations<S> {
    /// `current` becomes the old generation, and the old one is dropped.
    fn turn_over(&mut self) {
        self.old = std::mem::take(&mut self.current);
        self.current_weight = 0;
        self.started = Instant::now();
    }

    /// Removes the entry of `stream_id` from whichever generation holds it.
    fn remove(&mut self, stream_id: &str) -> Option<Entry<S>> {
        match self.current.remove(stream_id) {
            Some(entry) => {
                self.current_weight -= entry.weight;
                Some(entry)
            }
            None => self.old.remove(stream_id),
        }
    }
}

impl<S> FoldCache<S> {
    pub fn new(capacity: usize) -> Self {
        FoldCache {
            generations: Mutex::new(Generations {
                current: HashMap::new(),
                old: HashMap::new(),
                current_weight: 0,
                started: Instant::now(),
            }),
            per_generation: (capacity / 2).max(1),
            max_age: None,
            weight: None,
        }
    }

    /// A cache whose generations also turn over after `max_age`.
    pub fn with_max_age(capacity: usize, max_age: Duration) -> Self {
        FoldCache {
            max_age: Some(max_age),
            ..Self::new(capacity)
        }
    }

    /// This cache, holding at most about `bytes` as `weigh` estimates each state's size: for states
    /// whose size varies a hundredfold (a portfolio with a student's texts in it).
    pub fn weighed(self, bytes: usize, weigh: fn(&S) -> usize) -> Self {
        FoldCache {
            weight: Some(Weight {
                per_generation: (bytes / 2).max(1),
                of: weigh,
            }),
            ..self
        }
    }

    /// The generations, turned over first when the current one is past its age.
    fn lock(&self) -> std::sync::MutexGuard<'_, Generations<S>> {
        // A panic elsewhere cannot leave a map half-updated in a way that matters: every entry is
        // valid on its own, so a poisoned lock is still usable.
        let mut g = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        if self.max_age.is_some_and(|age| g.started.elapsed() >= age) {
            g.turn_over();
        }
        g
    }

    /// Takes out the state of `stream_id` folded up to exactly `version`, if that is what is
    /// cached; the caller puts the state after its event back with [`FoldCache::put`]. An entry of
    /// another version is left alone (and replaced by the next `put`).
    pub fn take(&self, stream_id: &str, version: i32) -> Option<S> {
        let mut g = self.lock();
        let held = g.current.get(stream_id).or_else(|| g.old.get(stream_id));
        if held.is_some_and(|e| e.version == version) {
            return g.remove(stream_id).map(|e| e.state);
        }
        None
    }

    /// Takes out whatever fold of `stream_id` is cached, with its version: for a reader that then
    /// folds only the events after it (the command handler).
    pub fn take_latest(&self, stream_id: &str) -> Option<(i32, S)> {
        self.lock().remove(stream_id).map(|e| (e.version, e.state))
    }

    /// A copy of whatever fold of `stream_id` is cached, with its version, left in the cache, if it
    /// was put within `max_age` (any age when `None`). For a reader that trusts the fold to be the
    /// stream's latest without asking the log, and finds out otherwise from the append's version
    /// check (the command handler).
    pub fn peek_latest(&self, stream_id: &str, max_age: Option<Duration>) -> Option<(i32, S)>
    where
        S: Clone,
    {
        let g = self.lock();
        let e = g.current.get(stream_id).or_else(|| g.old.get(stream_id))?;
        max_age
            .is_none_or(|age| e.put_at.elapsed() <= age)
            .then(|| (e.version, e.state.clone()))
    }

    /// Whether any fold of `stream_id` is held.
    pub fn contains(&self, stream_id: &str) -> bool {
        let g = self.lock();
        g.current.contains_key(stream_id) || g.old.contains_key(stream_id)
    }

    /// Remembers `state` as the fold of `stream_id` up to `version`.
    pub fn put(&self, stream_id: &str, version: i32, state: S) {
        let weight = self.weight.as_ref().map_or(0, |w| (w.of)(&state));
        let mut g = self.lock();
        self.insert(&mut g, stream_id, version, state, weight);
    }

    /// [`FoldCache::put`], unless a fold of a later version is held: for a reader of the log, which
    /// a writer may have overtaken while it read (the command handler, whose cached folds are taken
    /// as the latest).
    pub fn put_unless_newer(&self, stream_id: &str, version: i32, state: S) {
        let weight = self.weight.as_ref().map_or(0, |w| (w.of)(&state));
        let mut g = self.lock();
        let held = g.current.get(stream_id).or_else(|| g.old.get(stream_id));
        if held.is_none_or(|e| e.version <= version) {
            self.insert(&mut g, stream_id, version, state, weight);
        }
    }

    fn insert(
        &self,
        g: &mut Generations<S>,
        stream_id: &str,
        version: i32,
        state: S,
        weight: usize,
    ) {
        g.remove(stream_id);
        let full = g.current.len() >= self.per_generation
            || self.weight.as_ref().is_some_and(|w| {
                !g.current.is_empty() && g.current_weight + weight > w.per_generation
            });
        if full {
            g.turn_over();
        }
        g.current_weight += weight;
        g.current.insert(
            stream_id.to_owned(),
            Entry {
                version,
                put_at: Instant::now(),
                weight,
                state,
            },
        );
    }

    /// A copy of the state of `stream_id` folded up to exactly `version`, left in the cache: for
    /// states many events read (a program's rules).
    pub fn get(&self, stream_id: &str, version: i32) -> Option<S>
    where
        S: Clone,
    {
        let state = self.take(stream_id, version)?;
        self.put(stream_id, version, state.clone());
        Some(state)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        let g = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        g.current.len() + g.old.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_fold_is_only_handed_out_for_the_version_it_holds() {
        let cache = FoldCache::new(10);
        cache.put("s", 3, "after 3");
        // A rebuild from the start, or an event applied before the one cached: a miss.
        assert_eq!(cache.take("s", 2), None);
        assert_eq!(cache.take("s", 4), None);
        assert_eq!(cache.take("other", 3), None);
        // The miss left the entry alone; the hit takes it out.
        assert_eq!(cache.take("s", 3), Some("after 3"));
        assert_eq!(cache.take("s", 3), None);
        // A later put replaces whatever version was there, also a higher one.
        cache.put("s", 7, "after 7");
        cache.put("s", 4, "after 4");
        assert_eq!(cache.take("s", 7), None);
        assert_eq!(cache.get("s", 4), Some("after 4"));
        assert_eq!(cache.get("s", 4), Some("after 4"), "get leaves it cached");
    }

    #[test]
    fn the_cache_is_bounded_and_keeps_the_streams_in_use() {
        let cache = FoldCache::new(4);
        for i in 0..100 {
            cache.put("hot", i, i);
            cache.put(&format!("cold-{i}"), 1, i);
            assert!(cache.len() <= 4, "{} entries", cache.len());
            assert_eq!(cache.take("hot", i), Some(i));
        }
        // An entry of the old generation is still found, and moves to the current one on `get`.
        let cache = FoldCache::new(4);
        cache.put("a", 1, 'a');
        cache.put("b", 1, 'b');
        cache.put("c", 1, 'c');
        assert_eq!(cache.get("a", 1), Some('a'));
        cache.put("d", 1, 'd');
        cache.put("e", 1, 'e');
        assert_eq!(cache.get("a", 1), Some('a'));
        assert_eq!(cache.take("b", 1), None, "dropped with its generation");
    }

    #[test]
    fn a_reader_does_not_replace_a_later_fold() {
        let cache = FoldCache::new(10);
        cache.put("s", 5, "after 5");
        cache.put_unless_newer("s", 4, "after 4");
        assert_eq!(cache.peek_latest("s", None), Some((5, "after 5")));
        cache.put_unless_newer("s", 6, "after 6");
        assert_eq!(cache.peek_latest("s", None), Some((6, "after 6")));
        cache.put_unless_newer("t", 1, "t after 1");
        assert_eq!(cache.take("t", 1), Some("t after 1"));
        // `peek_latest` with an age: an entry put longer ago than that is not handed out.
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(cache.peek_latest("s", Some(Duration::from_millis(1))), None);
        assert!(
            cache
                .peek_latest("s", Some(Duration::from_secs(60)))
                .is_some()
        );
    }

    #[test]
    fn a_weighed_cache_holds_at_most_its_weight() {
        // Two generations of at most 100 each, the state being its own weight.
        let cache = FoldCache::new(1_000).weighed(200, |w: &usize| *w);
        for i in 0..50 {
            cache.put(&format!("s{i}"), 1, 30);
            let g = cache.generations.lock().unwrap();
            let held: usize = g
                .current
                .values()
                .chain(g.old.values())
                .map(|e| e.state)
                .sum();
            assert!(held <= 200, "{held} held after {i}");
            assert_eq!(
                g.current_weight,
                g.current.values().map(|e| e.state).sum::<usize>()
            );
        }
        // Taking and replacing entries keeps the count of the current generation's weight.
        cache.put("s49", 2, 10);
        assert_eq!(cache.take("s49", 2), Some(10));
        assert_eq!(cache.take_latest("s48"), Some((1, 30)));
        let g = cache.generations.lock().unwrap();
        assert_eq!(
            g.current_weight,
            g.current.values().map(|e| e.state).sum::<usize>()
        );
        // A state heavier than a generation is still kept, alone.
        drop(g);
        cache.put("big", 1, 500);
        assert_eq!(cache.take("big", 1), Some(500));
    }

    #[test]
    fn with_a_maximum_age_an_unused_entry_is_gone_after_twice_the_age() {
        let age = std::time::Duration::from_millis(40);
        let cache = FoldCache::with_max_age(100, age);
        cache.put("unused", 1, 'u');
        cache.put("used", 1, 'a');
        std::thread::sleep(age);
        // One turn-over: both are in the old generation, still found; a hit brings one back.
        assert_eq!(cache.get("used", 1), Some('a'));
        std::thread::sleep(age);
        // A second: the old generation, with the entry nobody used, is dropped.
        assert_eq!(cache.take("unused", 1), None);
        assert_eq!(cache.take("used", 1), Some('a'));
    }
}
