//! Group commit: one-event appends that arrive together share one statement and one transaction,
//! so one WAL flush and one round trip serve many commands.
//!
//! How a group forms, with no task of its own and no timer:
//! - an append that finds nobody queued and fewer than `ALONE_PER_LEADER` × leaders appends being
//!   written alone is written alone, in the single statement of `append.rs`, at once. At moderate
//!   load that is fastest: parallel statements, whose WAL flushes PostgreSQL merges itself;
//! - any other append is queued and waits for either its answer or a leader's permit. Whoever gets a
//!   permit leads: it takes everything queued and writes it as one group. Under load the requests
//!   that arrive while the leaders' statements run queue up and go together next. There are as many
//!   permits as cores (at least two), so groups never wait for each other's CPU.
//!
//! What each request keeps, inside a group of many:
//! - its own expected version: a request whose expectation does not hold writes nothing;
//! - its idempotency: a command already stored writes nothing; a retry racing its first attempt
//!   collides on `commands`' key, which fails the group and sends every request back alone;
//! - its atomicity: only one-event appends are grouped (a multi-event append is one statement
//!   alone), so a request is written whole or not at all;
//! - its key guard (`sealing.rs`).
//!
//! A request the group did not write, for whatever reason (a conflict, a duplicate, a stale key, a
//! failed group), is answered "alone" and its appender runs the single statement, which tells a
//! conflict from a duplicate exactly as before. Rows are inserted in stream order, so two groups
//! that touch the same streams wait for each other in one order and never deadlock. A group runs in
//! a task of its own, so an appender that is cancelled (a client that went away) cannot strand the
//! others it leads.

use super::sealing::KeyGuard;
use super::{AppendError, AppendOutcome, EventStore, ExpectedVersion, Metadata, NewEvent};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, oneshot};
use uuid::Uuid;

/// At most this many requests in one statement: a group of the most writers we measure (32) fits.
const MAX_GROUP: usize = 64;

/// Appends written alone at once, per leader: enough to keep both cores and the WAL busy at
/// moderate load, where groups of two or three would only serialise work (measured in
/// `docs/performance.md`).
const ALONE_PER_LEADER: usize = 4;

/// Stand-in for "no value" in the typed arrays (as in `append.rs`).
const NONE: Uuid = Uuid::nil();

/// One one-event append waiting to be written.
#[derive(Debug)]
pub(super) struct Request {
    pub stream_id: String,
    pub expected: ExpectedVersion,
    pub event: NewEvent,
    pub guard: KeyGuard,
    pub metadata: Metadata,
}

/// What a request's appender is told.
pub(super) enum Reply {
    /// Written alone by a leader: the single statement's own answer.
    Done(Result<Option<AppendOutcome>, AppendError>),
    /// Written in a group.
    Written(AppendOutcome),
    /// Not written: the appender runs the single statement itself.
    Alone,
}

struct Pending {
    request: Arc<Request>,
    reply: oneshot::Sender<Reply>,
}

/// The queue and the leaders' permits, shared by the clones of an `EventStore`.
pub(super) struct Committer {
    /// Appends written alone right now, and how many may be.
    alone: AtomicUsize,
    max_alone: usize,
    queue: Mutex<Vec<Pending>>,
    leaders: Arc<Semaphore>,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer").finish_non_exhaustive()
    }
}

impl Default for Committer {
    fn default() -> Self {
        let leaders = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
        Self {
            alone: AtomicUsize::new(0),
            max_alone: ALONE_PER_LEADER * leaders,
            queue: Mutex::new(Vec::new()),
            leaders: Arc::new(Semaphore::new(leaders)),
        }
    }
}

impl Committer {
    /// Queues `request` and waits for its reply, leading groups while it waits.
    pub async fn submit(&self, store: &EventStore, request: Arc<Request>) -> Reply {
        if let Some(_slot) = self.alone_slot() {
            return Reply::Done(store.write_alone(&request).await);
        }
        let (reply, mut answer) = oneshot::channel();
        self.queue
            .lock()
            .expect("append queue lock")
            .push(Pending { request, reply });
        loop {
            tokio::select! {
                biased;
                // A leader that died without answering leaves the request to its appender.
                got = &mut answer => return got.unwrap_or(Reply::Alone),
                permit = self.leaders.clone().acquire_owned() => {
                    let permit = permit.expect("the leaders' semaphore is never closed");
                    let group: Vec<Pending> = {
                        let mut queue = self.queue.lock().expect("append queue lock");
                        let n = queue.len().min(MAX_GROUP);
                        queue.drain(..n).collect()
                    };
                    if group.is_empty() {
                        // Another leader took this request; its answer is on the way.
                        drop(permit);
                        return answer.await.unwrap_or(Reply::Alone);
                    }
                    let store = store.clone();
                    let _ = tokio::spawn(async move {
                        store.write_group(group).await;
                        drop(permit);
                    })
                    .await;
                }
            }
        }
    }

    /// A place among the appends written alone, when one is free and nobody is queued (a request
    /// that arrives behind others joins their group instead).
    fn alone_slot(&self) -> Option<AloneSlot<'_>> {
        if !self.queue.lock().expect("append queue lock").is_empty() {
            return None;
        }
        // Counted first and given back on drop, so a full count is never exceeded.
        let taken = self.alone.fetch_add(1, Ordering::AcqRel);
        let slot = AloneSlot(&self.alone);
        (taken < self.max_alone).then_some(slot)
    }
}

/// Holds a place among the appends written alone; gives it back when dropped, also on cancellation.
struct AloneSlot<'a>(&'a AtomicUsize);

impl Drop for AloneSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl EventStore {
    /// The single statement for one request.
    pub(super) async fn write_alone(
        &self,
        r: &Request,
    ) -> Result<Option<AppendOutcome>, AppendError> {
        let events = std::slice::from_ref(&r.event);
        self.try_append(
            &self.pool,
            &r.stream_id,
            r.expected,
            events,
            &r.guard,
            &r.metadata,
        )
        .await
    }

    /// Writes `group` and answers each request.
    async fn write_group(&self, mut group: Vec<Pending>) {
        if group.len() == 1 {
            let Pending { request, reply } = group.pop().expect("one request");
            let _ = reply.send(Reply::Done(self.write_alone(&request).await));
            return;
        }
        let mut written = match self.insert_group(&group).await {
            Ok(written) => written,
            Err(err) => {
                // Most likely a retry racing its first attempt; each request finds out alone.
                tracing::debug!(code = ?err.as_database_error().and_then(|e| e.code()),
                    requests = group.len(), "a group append failed; its requests go alone");
                HashMap::new()
            }
        };
        for Pending { request, reply } in group {
            let _ = reply.send(match written.remove(&request.metadata.command_id) {
                Some(outcome) => Reply::Written(outcome),
                None => Reply::Alone,
            });
        }
    }

    /// One statement for all of `group`; the outcomes of the requests it wrote, by command id.
    async fn insert_group(
        &self,
        group: &[Pending],
    ) -> Result<HashMap<Uuid, AppendOutcome>, sqlx::Error> {
        let requests: Vec<&Request> = group.iter().map(|p| &*p.request).collect();
        let column = |f: &dyn Fn(&Request) -> Uuid| requests.iter().map(|r| f(r)).collect();
        let stream_ids: Vec<&str> = requests.iter().map(|r| r.stream_id.as_str()).collect();
        let expected: Vec<i32> = requests
            .iter()
            .map(|r| r.expected.as_version().unwrap_or(-1))
            .collect();
        let event_ids: Vec<Uuid> = column(&|r| r.event.event_id);
        let types: Vec<&str> = requests
            .iter()
            .map(|r| r.event.event_type.as_str())
            .collect();
        let versions: Vec<i16> = requests.iter().map(|r| r.event.schema_version).collect();
        let payloads: Vec<&serde_json::Value> = requests.iter().map(|r| &r.event.payload).collect();
        let personal: Vec<&serde_json::Value> = requests
            .iter()
            .map(|r| {
                r.event
                    .personal
                    .as_ref()
                    .unwrap_or(&serde_json::Value::Null)
            })
            .collect();
        let subjects: Vec<Uuid> = column(&|r| r.event.data_subject.unwrap_or(NONE));
        let actors: Vec<&str> = requests
            .iter()
            .map(|r| r.metadata.actor_id.as_str())
            .collect();
        let roles: Vec<&str> = requests
            .iter()
            .map(|r| r.metadata.actor_role.as_str())
            .collect();
        let correlations: Vec<Uuid> = column(&|r| r.metadata.correlation_id);
        let causations: Vec<Uuid> = column(&|r| r.metadata.causation_id.unwrap_or(NONE));
        let commands: Vec<Uuid> = column(&|r| r.metadata.command_id);
        // The key guards, flattened: request number (1-based, as WITH ORDINALITY counts), subject,
        // wrapped key.
        let (mut guard_of, mut guard_subjects, mut guard_keys) = (vec![], vec![], vec![]);
        for (i, r) in requests.iter().enumerate() {
            for (subject, wrapped) in r.guard.subjects.iter().zip(&r.guard.wrapped) {
                guard_of.push(i as i64 + 1);
                guard_subjects.push(*subject);
                guard_keys.push(wrapped.as_slice());
            }
        }

        let rows = sqlx::query!(
            r#"
            WITH req AS (
                SELECT * FROM unnest($1::text[], $2::int[], $3::uuid[], $4::text[], $5::int2[],
                                     $6::jsonb[], $7::jsonb[], $8::uuid[], $9::text[], $10::text[],
                                     $11::uuid[], $12::uuid[], $13::uuid[])
                    WITH ORDINALITY AS r(stream_id, expected, event_id, event_type, schema_version,
                                         payload, personal, data_subject, actor_id, actor_role,
                                         correlation_id, causation_id, command_id, i)
            ),
            guard AS (
                SELECT g.i, count(*) AS wanted, count(k.data_subject) AS held
                FROM unnest($14::bigint[], $15::uuid[], $16::bytea[]) AS g(i, data_subject, wrapped_key)
                LEFT JOIN subject_keys k
                       ON k.data_subject = g.data_subject AND k.wrapped_key = g.wrapped_key
                GROUP BY g.i
            ),
            ready AS (
                -- The requests whose expectation, keys and command id allow them to be written,
                -- with the version they build on (-1 is "any": the stream's end).
                SELECT r.*, CASE WHEN r.expected >= 0 THEN r.expected
                                 ELSE COALESCE((SELECT max(version) FROM events e
                                                WHERE e.stream_id = r.stream_id), 0) END AS base
                FROM req r LEFT JOIN guard g ON g.i = r.i
                WHERE (r.expected <= 0
                       OR EXISTS (SELECT 1 FROM events e
                                  WHERE e.stream_id = r.stream_id AND e.version = r.expected))
                  AND COALESCE(g.wanted = g.held, true)
                  AND NOT EXISTS (SELECT 1 FROM commands c WHERE c.command_id = r.command_id)
            ),
            appended AS (
                -- A request that lost its version to another writer (or to an earlier request of
                -- this group) is skipped, not an error; the group goes on without it.
                INSERT INTO events (stream_id, version, event_id, event_type, schema_version, payload,
                                    personal, data_subject, actor_id, actor_role, correlation_id,
                                    causation_id, command_id)
                SELECT stream_id, base + 1, event_id, event_type, schema_version, payload,
                       NULLIF(personal, 'null'::jsonb), NULLIF(data_subject, $17::uuid), actor_id,
                       actor_role, correlation_id, NULLIF(causation_id, $17::uuid), command_id
                FROM ready
                ORDER BY stream_id, i
                ON CONFLICT DO NOTHING
                RETURNING command_id, stream_id, version, position
            )
            INSERT INTO commands (command_id, stream_id, first_version, last_version, first_position,
                                  last_position, transaction_id)
            SELECT command_id, stream_id, version, version, position, position, pg_current_xact_id()
            FROM appended
            ORDER BY command_id
            RETURNING command_id, first_version, last_version, first_position, last_position,
                      transaction_id::text::bigint AS "xid!"
            "#,
            &stream_ids as &[&str],
            &expected,
            &event_ids,
            &types as &[&str],
            &versions,
            &payloads as &[&serde_json::Value],
            &personal as &[&serde_json::Value],
            &subjects,
            &actors as &[&str],
            &roles as &[&str],
            &correlations,
            &causations,
            &commands,
            &guard_of,
            &guard_subjects,
            &guard_keys as &[&[u8]],
            NONE,
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let outcome = AppendOutcome::recorded(
                    (row.first_version, row.last_version),
                    (row.first_position, row.last_position),
                    row.xid,
                    false,
                );
                (row.command_id, outcome)
            })
            .collect())
    }
}
