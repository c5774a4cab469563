//! The outbox's consumer of the log: reads the log in its global order (the same gap-safe tail the
//! projections read, without personal data), decides the messages of each event, and stores them
//! together with its checkpoint in one transaction whose checkpoint update is guarded by the
//! checkpoint it started from (the projections' technique, `projections/checkpoint.rs`). So each
//! event's messages are decided once, whatever crashes, and a second instance that gets in
//! anyway applies nothing twice. One instance works at a time: the holder of a session-level
//! advisory lock (`projections::ProjectionLock`, under the name `outbox`).
//!
//! A deployment that has never run the outbox starts at the head of the log: history is not
//! announced to anyone.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::watch;

use super::decide::{BatchHolders, decide};
use super::outbox;
use crate::domain::CertificateId;
use crate::domain::batch::BatchEvent;
use crate::log::codec::decode_batch;
use crate::log::streams::{StreamKind, stream_kind};
use crate::projections::ProjectionLock;
use crate::store::{Checkpoint, EventStore, RecordedEvent, StoreError};

/// The checkpoint row's name and the advisory lock's.
pub const CONSUMER: &str = "outbox";

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another instance moved the checkpoint: this batch was rolled back; reload and go on.
    #[error("the outbox checkpoint was moved by another process")]
    CheckpointMoved,
}

/// Where the consumer stands; a first start records the head of the log.
pub async fn checkpoint(store: &EventStore) -> Result<Checkpoint, ConsumerError> {
    let pool = store.pool();
    let row = sqlx::query!(
        "SELECT transaction_id, position FROM outbox_checkpoint WHERE name = $1",
        CONSUMER
    )
    .fetch_optional(pool)
    .await?;
    if let Some(row) = row {
        return Ok(Checkpoint {
            transaction_id: row.transaction_id,
            position: row.position,
        });
    }
    let head = store.head().await?;
    // Two first starts at once: the first insert wins and both read it back.
    sqlx::query!(
        "INSERT INTO outbox_checkpoint (name, transaction_id, position) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO NOTHING",
        CONSUMER,
        head.transaction_id,
        head.position,
    )
    .execute(pool)
    .await?;
    Box::pin(checkpoint(store)).await
}

/// Reads and decides one batch of at most `limit` events after `from`; returns the new checkpoint
/// (equal to `from` when nothing new was final yet) and how many events were read.
pub async fn step(
    store: &EventStore,
    from: Checkpoint,
    limit: i64,
) -> Result<(Checkpoint, usize), ConsumerError> {
    let events = store.read_after_omitting_personal(from, limit).await?;
    let Some(last) = events.last() else {
        return Ok((from, 0));
    };
    let to = last.checkpoint;
    let holders = batch_holders(store, &events).await?;
    let mut tx = store.pool().begin().await?;
    let claimed = sqlx::query!(
        "UPDATE outbox_checkpoint
         SET transaction_id = $4, position = $5, events_read = events_read + $6, updated_at = now()
         WHERE name = $1 AND transaction_id = $2 AND position = $3",
        CONSUMER,
        from.transaction_id,
        from.position,
        to.transaction_id,
        to.position,
        events.len() as i64,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if claimed != 1 {
        return Err(ConsumerError::CheckpointMoved);
    }
    for event in &events {
        let decisions = decide(event, &holders);
        outbox::insert(&mut tx, &decisions, Some(event.position())).await?;
    }
    tx.commit().await?;
    Ok((to, events.len()))
}

/// The holders of the certificates of every batch these events deliver for, from each batch's
/// first event (`BatchCreated`, version 1 of the stream), read and upcast as the store reads it.
async fn batch_holders(
    store: &EventStore,
    events: &[RecordedEvent],
) -> Result<BatchHolders, ConsumerError> {
    let mut streams: Vec<&str> = events
        .iter()
        .filter(|e| e.event_type == "CertificateDelivered")
        .map(|e| e.stream_id.as_str())
        .collect();
    streams.sort_unstable();
    streams.dedup();
    let mut holders = HashMap::new();
    for stream in streams {
        let Some(first) = store.read_one(stream, 1).await? else {
            continue;
        };
        if let Ok(BatchEvent::BatchCreated(created)) = decode_batch(&first) {
            let mut add = |id: CertificateId, stream: &str, revocation: bool| {
                if let StreamKind::Portfolio(p) = stream_kind(stream) {
                    holders.insert(id, (p, revocation));
                }
            };
            for item in &created.certificates {
                add(item.certificate_id, &item.stream_id, false);
            }
            for item in &created.revocations {
                add(item.certificate_id, &item.stream_id, true);
            }
        }
    }
    Ok(holders)
}

/// Runs the consumer until `stop` turns true: takes the lock (retrying about every second while
/// another instance holds it), then reads the log every `poll` interval.
pub async fn run(
    store: EventStore,
    database_url: String,
    poll: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut lock: Option<ProjectionLock> = None;
    let mut at: Option<Checkpoint> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        let pause = match turn(&store, &database_url, &mut lock, &mut at).await {
            Ok(true) => Duration::ZERO,
            Ok(false) => poll,
            Err(e) => {
                tracing::warn!(error = %e, "outbox consumer: will try again");
                at = None;
                if matches!(e, ConsumerError::Database(_)) {
                    lock = None;
                }
                poll.max(Duration::from_secs(1))
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => {}
        }
    }
    if let Some(lock) = lock {
        lock.release().await;
    }
}

/// One turn: `Ok(true)` when a full batch was read (more may wait).
async fn turn(
    store: &EventStore,
    database_url: &str,
    lock: &mut Option<ProjectionLock>,
    at: &mut Option<Checkpoint>,
) -> Result<bool, ConsumerError> {
    const BATCH: i64 = 500;
    if lock.is_none() {
        *lock = Some(ProjectionLock::connect(database_url, CONSUMER).await?);
    }
    let held = lock.as_mut().expect("connected above");
    if !held.is_held() && !held.try_acquire().await? {
        return Ok(false);
    }
    held.check().await?;
    let from = match *at {
        Some(c) => c,
        None => checkpoint(store).await?,
    };
    let (to, read) = step(store, from, BATCH).await?;
    *at = Some(to);
    Ok(read as i64 == BATCH)
}
