//! The projection runner: keeps every read model up to date inside `cim serve`.
//!
//! # Shape
//!
//! - One task per projection, so a projection that rebuilds (or is stuck on an event it cannot
//!   apply) never holds up the others.
//! - Before advancing a projection, its task takes the projection's advisory lock on a dedicated
//!   connection (`lock.rs`) and keeps it for as long as it owns the projection. Among several
//!   `cim serve` processes on one database, exactly one advances each projection; the others retry
//!   the lock about every second and take over when the owner goes away.
//! - On taking ownership the task compares the stored definition hash with its own: no row or a
//!   different hash means the tables are dropped, recreated from the DDL and the log is applied from
//!   the start (a projection added later is thereby back-filled from the whole history). A database
//!   that holds a *newer* version is left alone (see [`ProjectionState::outdated`]).
//! - The task then reads batches with the gap-safe [`EventStore::read_after_omitting_personal`],
//!   through the process's one [`LogFeed`], so that projections at the same point share one read,
//!   and applies each batch together with its checkpoint in one transaction
//!   (`checkpoint::apply_batch`).
//! - When there is nothing to read it sleeps until the listener (`listener.rs`) reports an append, or
//!   until `poll_interval` passes, whichever comes first: notifications are only hints.
//! - Every error is logged (never with event contents), recorded in the status, and retried with
//!   capped, jittered backoff. The tasks never end on their own: after a database restart they
//!   reconnect, re-take their locks and catch up. Even a panicking `apply` only restarts its task.
//!
//! # Read-your-writes
//!
//! Each projection publishes its checkpoint after every commit on a `watch` channel.
//! [`RunnerHandle::wait_for`] waits, with a bound, until the projections have reached a command's
//! checkpoint, falling back to polling `projection_checkpoints` when this process is not the one
//! advancing them.

use super::checkpoint::{self, Phase, version_i32};
use super::feed::LogFeed;
use super::lock::ProjectionLock;
use super::status::{ProjectionState, RunnerStatus};
use super::{ListenerHealth, Projection, ProjectionError, definition_hash, listener, validate};
use crate::store::{Checkpoint, EventStore};
use futures::FutureExt;
use sqlx::PgPool;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

mod backoff;
mod ownership;

pub(crate) use backoff::{Backoff, jitter, sleep_or_shutdown};
use ownership::drive;

/// Tunables of the runner. The defaults suit production; tests may shorten them.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Events per transaction. Large enough to amortise the commit, small enough that a batch
    /// commits in well under a second and a rebuild shows steady progress.
    pub batch_size: i64,
    /// How often an idle projection looks for new events when no notification arrives.
    pub poll_interval: Duration,
    /// How often a process that does not own a projection tries to take it over.
    pub lock_retry: Duration,
    /// How often an owner verifies that its lock connection is still alive.
    pub lock_check_interval: Duration,
    /// How often a process that found a newer version of a projection in the database looks again.
    pub outdated_retry: Duration,
    /// First delay after an error; doubled per consecutive error up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// A listener that heard nothing for this long pings its connection.
    pub listener_ping_interval: Duration,
    pub listener_ping_timeout: Duration,
    /// Opening a dedicated connection (lock or listener) gives up after this long and retries.
    pub connect_timeout: Duration,
    /// `/readyz` reports not ready once the listener has been disconnected for longer than this:
    /// short blips (a reconnect takes milliseconds) do not flap readiness.
    pub readiness_grace: Duration,
    /// How often [`RunnerHandle::wait_for`] asks the database when the local checkpoint is not moving.
    pub wait_poll_interval: Duration,
    /// [`RunnerHandle::shutdown`] waits this long for the tasks to finish their current batch, then
    /// aborts them (an aborted batch rolls back).
    pub shutdown_timeout: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            batch_size: 1_000,
            poll_interval: Duration::from_millis(300),
            lock_retry: Duration::from_secs(1),
            lock_check_interval: Duration::from_secs(5),
            outdated_retry: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            listener_ping_interval: Duration::from_secs(30),
            listener_ping_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            readiness_grace: Duration::from_secs(5),
            wait_poll_interval: Duration::from_millis(20),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// Starts the runner; see the module documentation.
#[derive(Debug)]
pub struct ProjectionRunner;

impl ProjectionRunner {
    /// Starts one task per projection plus the listener, with the default [`RunnerConfig`], and
    /// returns at once: all database work happens in the tasks, which retry until the database is
    /// reachable. Must be called inside a Tokio runtime.
    ///
    /// - `store` reads the log (its upcasters apply, as on every read path);
    /// - `pool` runs the batch transactions;
    /// - `database_url` opens the dedicated lock and listener connections, which must not come from
    ///   a pool (see `lock.rs`).
    ///
    /// # Panics
    ///
    /// When the projections' names or tables are not plain identifiers, or a name is registered
    /// twice (a programming error, also caught by the unit test of [`super::all`]).
    pub fn start(
        store: EventStore,
        pool: PgPool,
        database_url: &str,
        projections: Vec<Arc<dyn Projection>>,
    ) -> RunnerHandle {
        Self::start_with(
            RunnerConfig::default(),
            store,
            pool,
            database_url,
            projections,
        )
    }

    /// [`start`](Self::start) with explicit tunables.
    pub fn start_with(
        config: RunnerConfig,
        store: EventStore,
        pool: PgPool,
        database_url: &str,
        projections: Vec<Arc<dyn Projection>>,
    ) -> RunnerHandle {
        if let Err(problems) = validate(&projections) {
            panic!("invalid projection registry: {problems}");
        }
        let slots = projections
            .into_iter()
            .map(|projection| Slot {
                hash: definition_hash(projection.as_ref()),
                state: watch::Sender::new(ProjectionState::new(projection.as_ref())),
                projection,
            })
            .collect();
        let shared = Arc::new(Shared {
            feed: LogFeed::new(store),
            pool,
            database_url: database_url.to_owned(),
            config,
            slots,
            listener: watch::Sender::new(ListenerHealth::starting()),
            wake: watch::Sender::new(0),
            shutdown: watch::Sender::new(false),
        });
        let mut tasks = vec![spawn_supervised(
            &shared,
            "projection listener".to_owned(),
            |shared| async move {
                listener::run(
                    &shared.database_url,
                    &shared.config,
                    &shared.listener,
                    &shared.wake,
                    shared.shutdown.subscribe(),
                )
                .await;
            },
            |_, _| {},
        )];
        for index in 0..shared.slots.len() {
            tasks.push(spawn_supervised(
                &shared,
                format!("projection {}", shared.slots[index].projection.name()),
                move |shared| async move { drive(&shared, index).await },
                move |shared, message| {
                    shared.slots[index].state.send_modify(|s| {
                        s.owned = false;
                        s.record_error(format!("panicked: {message}"));
                    });
                },
            ));
        }
        RunnerHandle {
            shared,
            tasks: Arc::new(Mutex::new(tasks)),
        }
    }
}

/// Which projections [`RunnerHandle::wait_for`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Every projection this runner runs.
    All,
    /// The projection with this name.
    Named(&'a str),
}

/// [`RunnerHandle::wait_for`] gave up: the named projections had not reached the target in time.
/// Callers answer with what they have and say it may be stale; they do not fail the command, which
/// has been committed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("projections {} did not reach {target} within {waited:?}", lagging.join(", "))]
pub struct Timeout {
    pub target: Checkpoint,
    pub waited: Duration,
    /// The projections that had not reached `target` (including a name this runner does not know).
    pub lagging: Vec<String>,
}

/// Controls a started runner. Cheap to clone (an `Arc`); every clone sees the same runner.
///
/// Dropping every handle does not stop the tasks (they belong to the runtime); call
/// [`shutdown`](Self::shutdown) to stop them.
#[derive(Clone)]
pub struct RunnerHandle {
    shared: Arc<Shared>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl fmt::Debug for RunnerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self
            .shared
            .slots
            .iter()
            .map(|s| s.projection.name())
            .collect();
        f.debug_struct("RunnerHandle")
            .field("projections", &names)
            .finish_non_exhaustive()
    }
}

impl RunnerHandle {
    /// Waits until the projections in `scope` have applied everything up to and including `target`
    /// (usually `AppendOutcome::checkpoint` of the command just executed), or until `timeout`.
    ///
    /// Read-your-writes for the API: after a command, wait (briefly) before answering from the read
    /// models. Local progress arrives on the projection's watch channel as soon as it commits. When
    /// this process does not advance the projection (another `cim serve` owns it), or the local view
    /// has not moved for `wait_poll_interval`, the stored checkpoint is read from the database
    /// instead. A checkpoint in the database is committed together with the read model's changes, so
    /// reaching it really means the changes are visible.
    pub async fn wait_for(
        &self,
        scope: Scope<'_>,
        target: Checkpoint,
        timeout: Duration,
    ) -> Result<(), Timeout> {
        let started = Instant::now();
        let deadline = started + timeout;
        let slots: Vec<&Slot> = match scope {
            Scope::All => self.shared.slots.iter().collect(),
            Scope::Named(name) => match self.shared.slot(name) {
                Some(slot) => vec![slot],
                None => {
                    // A bug in the caller; reported as lagging so it cannot pass for "up to date".
                    tracing::error!(
                        projection = name,
                        "wait_for: this runner has no such projection"
                    );
                    return Err(Timeout {
                        target,
                        waited: Duration::ZERO,
                        lagging: vec![name.to_owned()],
                    });
                }
            },
        };
        let mut lagging = Vec::new();
        for slot in slots {
            if !self.wait_one(slot, target, deadline).await {
                lagging.push(slot.projection.name().to_owned());
            }
        }
        if lagging.is_empty() {
            Ok(())
        } else {
            Err(Timeout {
                target,
                waited: started.elapsed(),
                lagging,
            })
        }
    }

    async fn wait_one(&self, slot: &Slot, target: Checkpoint, deadline: Instant) -> bool {
        if target <= Checkpoint::START {
            return true;
        }
        let reached = |s: &ProjectionState| s.owned && s.checkpoint.is_some_and(|c| c >= target);
        let mut local = slot.state.subscribe();
        let mut local_open = true;
        loop {
            if reached(&local.borrow_and_update()) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let poll_at = deadline.min(now + self.shared.config.wait_poll_interval);
            tokio::select! {
                biased;
                changed = local.changed(), if local_open => {
                    local_open = changed.is_ok();
                    continue;
                }
                _ = tokio::time::sleep_until(poll_at) => {}
            }
            // The local view is not moving: maybe another process advances this projection.
            let stored = tokio::time::timeout_at(
                deadline,
                checkpoint::load_position(&self.shared.pool, slot.projection.name()),
            )
            .await;
            if let Ok(Ok(Some(at))) = stored
                && at >= target
            {
                return true;
            }
        }
    }

    /// What this process knows about its projections and its listener, right now. Never touches the
    /// database.
    pub fn status(&self) -> RunnerStatus {
        RunnerStatus {
            listener: self.shared.listener.borrow().clone(),
            projections: self
                .shared
                .slots
                .iter()
                .map(|s| s.state.borrow().clone())
                .collect(),
        }
    }

    /// Readiness for `/readyz`: `Err(reason)` once the listener has been disconnected for longer than
    /// `readiness_grace`. A process whose listener cannot reconnect still advances its projections
    /// (by polling), but it has lost contact with the database in a way that polling alone may hide,
    /// so the load balancer should prefer other instances.
    pub fn readiness(&self) -> Result<(), String> {
        let health = self.shared.listener.borrow();
        match health.disconnected_for() {
            Some(down) if down > self.shared.config.readiness_grace => {
                Err(format!("listener disconnected for {}s", down.as_secs()))
            }
            _ => Ok(()),
        }
    }

    /// Stops every task: they finish the batch they are applying, release their locks (another
    /// process takes over) and end. Tasks still busy after `shutdown_timeout` (e.g. stuck on an
    /// unreachable database) are aborted; an aborted batch is rolled back by the server. Idempotent.
    pub async fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        let deadline = Instant::now() + self.shared.config.shutdown_timeout;
        for mut task in tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                tracing::warn!("a projection task did not stop in time; aborting it");
                task.abort();
                let _ = task.await;
            }
        }
        tracing::info!("projection runner stopped");
    }
}

struct Shared {
    /// One read of the log for all the projections of this process (`feed.rs`).
    feed: LogFeed,
    pool: PgPool,
    database_url: String,
    config: RunnerConfig,
    slots: Vec<Slot>,
    listener: watch::Sender<ListenerHealth>,
    /// Bumped by the listener on every notification; projection tasks wait on it.
    wake: watch::Sender<u64>,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    fn slot(&self, name: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.projection.name() == name)
    }
}

struct Slot {
    projection: Arc<dyn Projection>,
    hash: String,
    state: watch::Sender<ProjectionState>,
}

/// Runs `run` and runs it again (after a backoff) if it panics, until it returns normally (at
/// shutdown). "The task never dies on its own", even for a bug in a projection's `apply`.
fn spawn_supervised<F, Fut, P>(
    shared: &Arc<Shared>,
    what: String,
    run: F,
    on_panic: P,
) -> JoinHandle<()>
where
    F: Fn(Arc<Shared>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
    P: Fn(&Shared, &str) + Send + 'static,
{
    let shared = shared.clone();
    tokio::spawn(async move {
        let mut shutdown = shared.shutdown.subscribe();
        let mut backoff = Backoff::new(shared.config.backoff_initial, shared.config.backoff_max);
        loop {
            match AssertUnwindSafe(run(shared.clone())).catch_unwind().await {
                Ok(()) => return,
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "(no message)".to_owned());
                    tracing::error!(task = %what, panic = %message, "runner task panicked; restarting it");
                    on_panic(&shared, &message);
                    if sleep_or_shutdown(backoff.next_delay(), &mut shutdown).await {
                        return;
                    }
                }
            }
        }
    })
}
