//! Closed-loop load: `workers` tasks each run one operation after the other for a fixed time. What
//! the figures measure is the system's throughput at that concurrency, and the latency of each call.

use super::stats::Latencies;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one closed-loop phase did.
#[derive(Debug)]
pub struct Phase {
    pub completed: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub latencies: Latencies,
    /// Sum of what the operations reported (e.g. conflicts retried).
    pub extra: u64,
}

/// Runs `op(worker, iteration)` on `workers` tasks until `duration` has passed. An operation returns
/// `Ok(extra)` when it succeeded; errors are counted (the first one is kept for the message) and the
/// worker goes on. An operation that returns `Err` with `Stop` as its source ends that worker (a
/// pool of prepared work ran dry).
pub async fn closed_loop<F, Fut>(workers: usize, duration: Duration, op: F) -> anyhow::Result<Phase>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<u64, OpError>> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(workers);
    for worker in 0..workers {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Latencies::with_capacity(4096);
            let (mut errors, mut extra, mut first_error) = (0usize, 0u64, None);
            let mut iteration = 0u64;
            while Instant::now() < deadline {
                let began = Instant::now();
                match op(worker, iteration).await {
                    Ok(more) => {
                        latencies.record(began.elapsed());
                        extra += more;
                    }
                    Err(OpError::Stop) => break,
                    Err(OpError::Failed(e)) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
                iteration += 1;
            }
            (latencies, errors, extra, first_error)
        }));
    }
    let mut phase = Phase {
        completed: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Latencies::default(),
        extra: 0,
    };
    let mut first_error = None;
    for task in tasks {
        let (latencies, errors, extra, error) = task.await?;
        phase.completed += latencies.len();
        phase.latencies.extend(latencies);
        phase.errors += errors;
        phase.extra += extra;
        if first_error.is_none() {
            first_error = error;
        }
    }
    phase.elapsed = start.elapsed();
    if let Some(e) = first_error {
        tracing::warn!(errors = phase.errors, "first error of the phase: {e:#}");
    }
    Ok(phase)
}

/// Why one operation did not complete.
#[derive(Debug)]
pub enum OpError {
    /// Nothing left to do for this worker.
    Stop,
    Failed(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for OpError {
    fn from(e: E) -> Self {
        OpError::Failed(e.into())
    }
}
