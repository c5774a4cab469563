//! Section 2: the event store's append (src/store/append.rs) as the command handler uses it: one
//! event, an expected version, a command id for idempotency and full metadata; on distinct streams
//! (no contention) and on a few hot streams (conflicts are retried at the version the store reports).

use super::load::{OpError, closed_loop};
use super::report::AppendFigure;
use super::stats::{rate, ratio};
use cim::db;
use cim::log;
use cim::store::{ActorRole, AppendError, EventStore, ExpectedVersion, Metadata, NewEvent};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;
use uuid::Uuid;

/// Where the writers append.
#[derive(Debug, Clone, Copy)]
pub enum Streams {
    /// One stream per writer.
    Distinct,
    /// This many streams shared by all writers.
    Hot(usize),
}

pub async fn append(
    url: &str,
    sample: &NewEvent,
    writers: usize,
    streams: Streams,
    duration: Duration,
    baseline_rows_per_s: f64,
) -> anyhow::Result<AppendFigure> {
    let pool = db::connect(url, writers as u32).await?;
    let store = EventStore::new(pool.clone(), log::upcasters());
    let run = Uuid::new_v4().simple().to_string();
    let stream_count = match streams {
        Streams::Distinct => writers,
        Streams::Hot(n) => n,
    };
    let stream_ids: Arc<Vec<String>> = Arc::new(
        (0..stream_count)
            .map(|s| format!("bench-{run}-{s}"))
            .collect(),
    );
    // The last version each writer saw per stream; a conflict tells the actual one.
    let versions: Arc<Vec<AtomicI32>> =
        Arc::new((0..stream_count).map(|_| AtomicI32::new(0)).collect());
    let sample = Arc::new(sample.clone());
    let actor = Uuid::new_v4().to_string();
    let phase = closed_loop(writers, duration, move |worker, iteration| {
        let (store, stream_ids, versions, sample, actor) = (
            store.clone(),
            stream_ids.clone(),
            versions.clone(),
            sample.clone(),
            actor.clone(),
        );
        async move {
            let s = match streams {
                Streams::Distinct => worker,
                Streams::Hot(n) => (worker + iteration as usize) % n,
            };
            let command_id = Uuid::now_v7();
            let metadata = Metadata {
                actor_id: actor,
                actor_role: ActorRole::Student,
                correlation_id: Uuid::new_v4(),
                causation_id: None,
                command_id,
            };
            let mut conflicts = 0;
            loop {
                let at = versions[s].load(Ordering::Relaxed);
                let event = NewEvent {
                    event_id: Uuid::now_v7(),
                    ..(*sample).clone()
                };
                let expected = if at == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(at)
                };
                match store
                    .append(&stream_ids[s], expected, &[event], &metadata)
                    .await
                {
                    Ok(outcome) => {
                        versions[s].fetch_max(outcome.last_version, Ordering::Relaxed);
                        return Ok::<_, OpError>(conflicts);
                    }
                    Err(AppendError::Conflict { actual, .. }) => {
                        conflicts += 1;
                        versions[s].fetch_max(actual, Ordering::Relaxed);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    })
    .await?;
    pool.close().await;
    let events_per_s = rate(phase.completed, phase.elapsed);
    let summary = phase.latencies.summary();
    Ok(AppendFigure {
        writers,
        streams: stream_count,
        events: phase.completed,
        events_per_s,
        p50_ms: summary.p50_ms,
        p99_ms: summary.p99_ms,
        conflicts_retried: phase.extra,
        errors: phase.errors,
        ratio_to_baseline: ratio(events_per_s, baseline_rows_per_s),
    })
}
