//! Waiting between attempts: capped exponential backoff with jitter, and sleeps that end at shutdown.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use tokio::sync::watch;

/// Sleeps for `delay` unless shutdown is requested first. Returns whether to stop.
pub(crate) async fn sleep_or_shutdown(
    delay: Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let stopped = tokio::select! {
        _ = tokio::time::sleep(delay) => false,
        // Also resolves (with an error) if the runner is gone: stop then too.
        _ = shutdown.wait_for(|stop| *stop) => true,
    };
    stopped || *shutdown.borrow()
}

/// Capped exponential backoff with jitter, so that many processes (or tasks) that failed together
/// do not retry in lockstep.
#[derive(Debug)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next: initial,
        }
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        jitter(delay)
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// `d` scaled by a random factor in [0.8, 1.2).
pub(crate) fn jitter(d: Duration) -> Duration {
    // RandomState is seeded randomly per process and thread: enough randomness for spreading retries,
    // without another dependency.
    let random = RandomState::new().build_hasher().finish();
    let factor = 0.8 + (random % 4000) as f64 / 10_000.0;
    d.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let delays: Vec<Duration> = (0..6).map(|_| b.next_delay()).collect();
        let nominal = [100, 200, 400, 800, 1000, 1000];
        for (d, n) in delays.iter().zip(nominal) {
            let n = Duration::from_millis(n);
            assert!(
                *d >= n.mul_f64(0.8) && *d < n.mul_f64(1.2),
                "{d:?} vs {n:?}"
            );
        }
        b.reset();
        assert!(b.next_delay() < Duration::from_millis(120));
    }
}
