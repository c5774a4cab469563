//! What the soak counts, window by window, and how it prints it.

use super::super::stats::{Latencies, rate, ratio};
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

/// Error messages kept for the end of the run (the count is exact; the messages are samples).
const ERROR_SAMPLES: usize = 10;

/// Requests finished in the current window. One lock per request: a few hundred a second.
#[derive(Debug, Default)]
pub struct Recorder {
    current: Mutex<Window>,
    samples: Mutex<Vec<String>>,
}

/// The requests of one window.
#[derive(Debug, Default)]
pub struct Window {
    pub requests: usize,
    pub errors: usize,
    pub latencies: Latencies,
}

impl Recorder {
    /// A request that got the status it had to get.
    pub fn ok(&self, latency: Duration) {
        let mut w = self.lock();
        w.requests += 1;
        w.latencies.record(latency);
    }

    /// A request that did not: `what` names the route template and the status, never an id or a
    /// body (no personal data leaves the run).
    pub fn failed(&self, latency: Duration, what: String) {
        {
            let mut w = self.lock();
            w.requests += 1;
            w.latencies.record(latency);
        }
        self.error(what);
    }

    /// A failure that is not one request's (a client that never stopped).
    pub fn error(&self, what: String) {
        self.lock().errors += 1;
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if samples.len() < ERROR_SAMPLES {
            samples.push(what);
        }
    }

    /// The window so far, and a fresh one from now on.
    pub fn take(&self) -> Window {
        std::mem::take(&mut *self.lock())
    }

    pub fn error_samples(&self) -> Vec<String> {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One window's line.
#[derive(Debug, Clone)]
pub struct WindowFigure {
    pub index: usize,
    /// Time since the traffic began, at the window's end.
    pub at: Duration,
    pub requests: usize,
    pub requests_per_s: f64,
    pub errors: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The child's VmRSS at the window's end, and the highest of the once-a-second samples in it.
    pub rss_mib: f64,
    pub rss_max_mib: f64,
}

impl WindowFigure {
    pub fn new(
        index: usize,
        at: Duration,
        length: Duration,
        window: Window,
        rss_mib: f64,
        rss_max_mib: f64,
    ) -> Self {
        let summary = window.latencies.summary();
        Self {
            index,
            at,
            requests: window.requests,
            requests_per_s: rate(window.requests, length),
            errors: window.errors,
            p50_ms: summary.p50_ms,
            p99_ms: summary.p99_ms,
            rss_mib,
            rss_max_mib: rss_max_mib.max(rss_mib),
        }
    }
}

impl fmt::Display for WindowFigure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "window {:>3} (to {:>5.0} s): {:>7.1} req/s, {} errors, p50 {:.1} ms, p99 {:.1} ms, \
             RSS {:.1} MiB (max {:.1})",
            self.index,
            self.at.as_secs_f64(),
            self.requests_per_s,
            self.errors,
            self.p50_ms,
            self.p99_ms,
            self.rss_mib,
            self.rss_max_mib
        )
    }
}

/// What the clients did, for the summary: so a reader sees the traffic was the mixed one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub portfolios_opened: usize,
    pub certificates: usize,
    pub reviews: usize,
    pub export_runs: usize,
    pub refusals: usize,
    /// Commands sent again after a `409 conflict` (a race on one portfolio; not an error).
    pub conflicts_retried: usize,
}

/// The closing lines: totals, and the last window against the first.
pub fn summary(
    windows: &[WindowFigure],
    counts: &Counts,
    errors: usize,
    elapsed: Duration,
) -> String {
    let (Some(first), Some(last)) = (windows.first(), windows.last()) else {
        return "soak: no window completed".to_owned();
    };
    let requests: usize = windows.iter().map(|w| w.requests).sum();
    let rss_max = windows.iter().map(|w| w.rss_max_mib).fold(0.0, f64::max);
    // The first windows include the warm-up (pools, the projections' bounded fold caches filling
    // up); whether memory is flat shows in the second half.
    let second_half = &windows[windows.len() / 2..];
    let half_start = second_half.first().map_or(first.rss_mib, |w| w.rss_mib);
    let half_max = second_half
        .iter()
        .map(|w| w.rss_max_mib)
        .fold(0.0, f64::max);
    format!(
        "soak: {:.0} s, {} windows, {requests} requests, {errors} errors; {} portfolios opened, \
         {} reviews, {} certificates, {} export runs, {} bad requests refused as they must be, {} conflicts retried\n\
         RSS MiB: first window {:.1}, last window {:.1}, max {:.1}, last/first {:.2}\n\
         RSS MiB over the second half: at its start {:.1}, max {:.1}, last/start {:.2}\n\
         throughput req/s: first window {:.1}, last window {:.1}, last/first {:.2}\n\
         latency p99 ms: first window {:.1}, last window {:.1}, last/first {:.2}",
        elapsed.as_secs_f64(),
        windows.len(),
        counts.portfolios_opened,
        counts.reviews,
        counts.certificates,
        counts.export_runs,
        counts.refusals,
        counts.conflicts_retried,
        first.rss_mib,
        last.rss_mib,
        rss_max,
        ratio(last.rss_mib, first.rss_mib),
        half_start,
        half_max,
        ratio(last.rss_mib, half_start),
        first.requests_per_s,
        last.requests_per_s,
        ratio(last.requests_per_s, first.requests_per_s),
        first.p99_ms,
        last.p99_ms,
        ratio(last.p99_ms, first.p99_ms),
    )
}
