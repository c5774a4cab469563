//! The life of one projection in a process: wait for its lock, own it (rebuilding it when its
//! definition changed), advance it batch by batch, and let go when the lock is lost or at shutdown.

use super::*;

/// Why a process stopped owning a projection.
pub(super) enum Release {
    Shutdown,
    /// The lock connection broke: the lock is gone (or about to be), someone else may own it now.
    LockLost(String),
    /// The database holds a newer version of the projection.
    Outdated {
        stored: i32,
    },
}

/// The life of one projection in this process: wait for its lock, own it, advance it; repeat.
pub(super) async fn drive(shared: &Shared, index: usize) {
    let slot = &shared.slots[index];
    let name = slot.projection.name();
    let config = &shared.config;
    let mut shutdown = shared.shutdown.subscribe();
    let mut backoff = Backoff::new(config.backoff_initial, config.backoff_max);
    slot.state.send_modify(|s| s.owned = false);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let connected = tokio::time::timeout(
            config.connect_timeout,
            ProjectionLock::connect(&shared.database_url, name),
        )
        .await;
        let mut lock = match connected {
            Ok(Ok(lock)) => lock,
            failed => {
                let error = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".to_owned(),
                };
                let delay = backoff.next_delay();
                tracing::warn!(projection = name, %error, retry_in_ms = delay.as_millis() as u64,
                    "cannot open the projection's lock connection");
                slot.state.send_modify(|s| s.record_error(error));
                if sleep_or_shutdown(delay, &mut shutdown).await {
                    return;
                }
                continue;
            }
        };
        match wait_for_lock(shared, slot, &mut lock, &mut shutdown).await {
            Ok(true) => {}
            Ok(false) => {
                lock.release().await;
                return;
            }
            Err(error) => {
                let delay = backoff.next_delay();
                tracing::warn!(projection = name, %error, retry_in_ms = delay.as_millis() as u64,
                    "cannot take the projection's lock");
                slot.state
                    .send_modify(|s| s.record_error(error.to_string()));
                drop(lock);
                if sleep_or_shutdown(delay, &mut shutdown).await {
                    return;
                }
                continue;
            }
        }
        backoff.reset();
        tracing::info!(
            projection = name,
            "this process now advances the projection"
        );
        slot.state.send_modify(|s| {
            s.owned = true;
            s.outdated = false;
        });

        let released = own(shared, slot, &mut lock, &mut shutdown).await;
        lock.release().await;
        slot.state.send_modify(|s| s.owned = false);
        match released {
            Release::Shutdown => return,
            Release::LockLost(error) => {
                tracing::warn!(projection = name, %error,
                    "lost the projection's lock connection; competing for it again");
                slot.state.send_modify(|s| s.record_error(error));
                if sleep_or_shutdown(backoff.next_delay(), &mut shutdown).await {
                    return;
                }
            }
            Release::Outdated { stored } => {
                tracing::warn!(
                    projection = name,
                    stored_version = stored,
                    our_version = slot.projection.version(),
                    "the database holds a newer version of this projection; this process stands by"
                );
                slot.state.send_modify(|s| s.outdated = true);
                if sleep_or_shutdown(config.outdated_retry, &mut shutdown).await {
                    return;
                }
            }
        }
    }
}

/// Tries the lock until it is ours (`Ok(true)`) or shutdown (`Ok(false)`). Meanwhile it keeps this
/// process's view of the projection fresh from the database, for `status()`.
async fn wait_for_lock(
    shared: &Shared,
    slot: &Slot,
    lock: &mut ProjectionLock,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<bool, sqlx::Error> {
    let mut announced = false;
    loop {
        if lock.try_acquire().await? {
            return Ok(true);
        }
        if !announced {
            tracing::info!(
                projection = slot.projection.name(),
                "another process advances the projection; standing by"
            );
            announced = true;
        }
        if let Ok(stored) = checkpoint::load(&shared.pool, slot.projection.name()).await {
            slot.state.send_modify(|s| s.observe(stored.as_ref()));
        }
        if sleep_or_shutdown(jitter(shared.config.lock_retry), shutdown).await {
            return Ok(false);
        }
    }
}

/// Advances the owned projection, retrying errors with backoff, until shutdown or until ownership
/// must be given up.
async fn own(
    shared: &Shared,
    slot: &Slot,
    lock: &mut ProjectionLock,
    shutdown: &mut watch::Receiver<bool>,
) -> Release {
    let name = slot.projection.name();
    let mut backoff = Backoff::new(shared.config.backoff_initial, shared.config.backoff_max);
    let mut wake = shared.wake.subscribe();
    loop {
        let error = match advance(shared, slot, lock, &mut wake, shutdown, &mut backoff).await {
            Ok(released) => return released,
            Err(error) => error,
        };
        let delay = backoff.next_delay();
        // Display of these errors never includes event payloads.
        tracing::warn!(projection = name, %error, retry_in_ms = delay.as_millis() as u64,
            "projection cannot advance; retrying");
        slot.state
            .send_modify(|s| s.record_error(error.to_string()));
        if sleep_or_shutdown(delay, shutdown).await {
            return Release::Shutdown;
        }
        // A database outage takes the lock connection with it: then the lock is gone, and another
        // process may already own the projection.
        if let Err(e) = lock.check().await {
            return Release::LockLost(e.to_string());
        }
    }
}

/// One stretch of ownership: set up (or rebuild) the projection, then apply batches until shutdown,
/// loss of the lock, or an error (returned to `own`, which backs off and calls this again; the
/// checkpoint is then reloaded, so nothing depends on in-memory state that an error may have left
/// stale).
async fn advance(
    shared: &Shared,
    slot: &Slot,
    lock: &mut ProjectionLock,
    wake: &mut watch::Receiver<u64>,
    shutdown: &mut watch::Receiver<bool>,
    backoff: &mut Backoff,
) -> Result<Release, ProjectionError> {
    let projection = slot.projection.as_ref();
    let name = projection.name();
    let config = &shared.config;

    let stored = checkpoint::load(&shared.pool, name).await?;
    let (mut at, mut phase, mut applied) = match stored {
        Some(s) if s.definition_hash == slot.hash => (s.checkpoint, s.phase, s.events_applied),
        Some(s) if s.version > version_i32(projection) => {
            return Ok(Release::Outdated { stored: s.version });
        }
        other => {
            let reason = if other.is_some() {
                "its definition changed"
            } else {
                "it is new on this database"
            };
            tracing::info!(
                projection = name,
                version = projection.version(),
                reason,
                "rebuilding the projection from the start of the log"
            );
            checkpoint::reset(&shared.pool, projection).await?;
            (Checkpoint::START, Phase::Rebuilding, 0)
        }
    };
    // Only actual changes wake `wait_for` callers; an idle poll publishes nothing.
    let publish = |at: Checkpoint, phase: Phase, applied: i64| {
        slot.state.send_if_modified(|s| {
            let changed = s.checkpoint != Some(at)
                || s.phase != Some(phase)
                || s.events_applied != Some(applied)
                || s.last_error.is_some();
            s.checkpoint = Some(at);
            s.phase = Some(phase);
            s.events_applied = Some(applied);
            s.clear_error();
            changed
        });
    };
    publish(at, phase, applied);

    let follower = shared.feed.follow();
    let mut lock_checked = Instant::now();
    loop {
        if *shutdown.borrow() {
            return Ok(Release::Shutdown);
        }
        if lock_checked.elapsed() >= config.lock_check_interval {
            if let Err(e) = lock.check().await {
                return Ok(Release::LockLost(e.to_string()));
            }
            lock_checked = Instant::now();
        }

        let batch = follower.read_after(at, config.batch_size).await?;
        if batch.is_empty() {
            if phase == Phase::Rebuilding {
                checkpoint::mark_live(&shared.pool, name, &slot.hash).await?;
                phase = Phase::Live;
                tracing::info!(
                    projection = name,
                    events = applied,
                    "projection caught up; it is live"
                );
            }
            backoff.reset();
            publish(at, phase, applied);
            tokio::select! {
                _ = wake.changed() => {}
                _ = tokio::time::sleep(config.poll_interval) => {}
                _ = shutdown.wait_for(|stop| *stop) => return Ok(Release::Shutdown),
            }
            continue;
        }
        at = checkpoint::apply_batch(&shared.pool, projection, &slot.hash, at, &batch).await?;
        applied += batch.len() as i64;
        backoff.reset();
        publish(at, phase, applied);
        // A long catch-up must not starve the other tasks of a single-threaded runtime.
        tokio::task::yield_now().await;
    }
}
