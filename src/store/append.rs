//! Appending: one command's events land together, at the version the writer expected, exactly once.

use super::error::unique_violation;
use super::group::{Reply, Request};
use super::sealing::KeyGuard;
use super::{
    AppendError, AppendOutcome, EventStore, ExpectedVersion, Metadata, NewEvent, StoreError,
};
use sqlx::{PgConnection, PgExecutor};
use std::sync::Arc;
use uuid::Uuid;

/// Stand-ins for "no value" inside the arrays sent to `unnest`: typed arrays with NULL elements are
/// awkward to bind, so the statement turns these back into NULL with NULLIF.
const NO_SUBJECT: Uuid = Uuid::nil();

impl EventStore {
    /// Appends `events` to `stream_id` as one atomic unit.
    ///
    /// - With `Exact(v)`/`NoStream`, the stream must be at exactly that version; otherwise
    ///   [`AppendError::Conflict`] is returned and nothing is written.
    /// - A `metadata.command_id` that was already appended returns that first outcome with
    ///   `duplicate: true` and writes nothing, also when the two attempts race.
    pub async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
        metadata: &Metadata,
    ) -> Result<AppendOutcome, AppendError> {
        if events.is_empty() {
            return Err(AppendError::Empty);
        }
        // Events with personal data need their subject's key, which may have to be created: the key
        // and the events then commit in one transaction, so an event can never be stored without
        // the key that opens it (a key written on its own could be lost, say on a connection that a
        // cancelled request left inside a transaction, while the event commits elsewhere).
        let sealing = events
            .iter()
            .any(|e| e.personal.is_some() && e.data_subject.is_some());
        loop {
            let attempt = if sealing {
                self.append_personal(stream_id, expected, events, metadata)
                    .await
            } else {
                let none = KeyGuard::default();
                match self
                    .write(stream_id, expected, events.to_vec(), none, metadata)
                    .await
                {
                    Ok(written) => self.or_conflict(written, stream_id, expected).await,
                    Err(e) => Err(e),
                }
            };
            match attempt {
                // `Any` has no stated expectation to defend: another writer getting in between is
                // not a conflict for the caller, just a reason to go again at the new end.
                Err(AppendError::Conflict { .. }) if expected == ExpectedVersion::Any => continue,
                Ok(outcome) => {
                    if !outcome.duplicate {
                        self.announce();
                    }
                    return Ok(outcome);
                }
                other => return other,
            }
        }
    }

    /// Appends inside the caller's transaction, for work that must commit together with the events
    /// (and for tests that hold a transaction open). On any error the transaction is aborted and the
    /// caller must roll it back; `ExpectedVersion::Any` is not retried here. After committing, the
    /// caller calls [`EventStore::announce`] (until then the events are invisible anyway).
    pub async fn append_in(
        &self,
        conn: &mut PgConnection,
        stream_id: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
        metadata: &Metadata,
    ) -> Result<AppendOutcome, AppendError> {
        if events.is_empty() {
            return Err(AppendError::Empty);
        }
        let sealed = self.seal(Some(&mut *conn), events).await?;
        let none = &KeyGuard::default();
        let written = self
            .try_append(conn, stream_id, expected, &sealed.events, none, metadata)
            .await?;
        self.or_conflict(written, stream_id, expected).await
    }

    /// Appends events with personal data: in one statement when this process holds their subjects'
    /// keys (`sealing.rs`), else sealed and appended in one transaction.
    async fn append_personal(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
        metadata: &Metadata,
    ) -> Result<AppendOutcome, AppendError> {
        if let Some(sealed) = self.seal_cached(events) {
            let guard = KeyGuard::of(&sealed.keys);
            let subjects = guard.subjects.clone();
            match self
                .write(stream_id, expected, sealed.events, guard, metadata)
                .await?
            {
                Some(outcome) => return Ok(outcome),
                // A stale key or an expectation beyond the stream's end: the full path tells which.
                None => self.sealing.forget(&subjects),
            }
        }
        self.append_sealed(stream_id, expected, events, metadata)
            .await
    }

    /// Seals `events` and appends them in one transaction (see [`Self::append`]).
    async fn append_sealed(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
        metadata: &Metadata,
    ) -> Result<AppendOutcome, AppendError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let sealed = self.seal(Some(&mut *tx), events).await?;
        let none = &KeyGuard::default();
        let written = self
            .try_append(
                &mut *tx,
                stream_id,
                expected,
                &sealed.events,
                none,
                metadata,
            )
            .await?;
        let outcome = self.or_conflict(written, stream_id, expected).await?;
        if outcome.duplicate {
            // The first attempt's events are stored already; nothing of this one is kept (nor are
            // its keys remembered: a key it created is rolled back with it).
            return Ok(outcome);
        }
        tx.commit().await.map_err(StoreError::from)?;
        self.sealing.remember(&sealed.keys);
        Ok(outcome)
    }

    /// Writes outside a caller's transaction: a one-event append through the group committer
    /// (`group.rs`), others alone. `None` when nothing was written because the expectation lies
    /// beyond the stream's end or the key guard failed.
    async fn write(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        mut events: Vec<NewEvent>,
        guard: KeyGuard,
        metadata: &Metadata,
    ) -> Result<Option<AppendOutcome>, AppendError> {
        if events.len() == 1 {
            let request = Arc::new(Request {
                stream_id: stream_id.to_owned(),
                expected,
                event: events.pop().expect("one event"),
                guard,
                metadata: metadata.clone(),
            });
            let reply = self.committer.submit(self, request.clone()).await;
            return match reply {
                Reply::Done(result) => result,
                Reply::Written(outcome) => Ok(Some(outcome)),
                Reply::Alone => self.write_alone(&request).await,
            };
        }
        self.try_append(&self.pool, stream_id, expected, &events, &guard, metadata)
            .await
    }

    pub(super) async fn try_append<'c>(
        &self,
        executor: impl PgExecutor<'c>,
        stream_id: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
        guard: &KeyGuard,
        metadata: &Metadata,
    ) -> Result<Option<AppendOutcome>, AppendError> {
        let event_ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        let types: Vec<String> = events.iter().map(|e| e.event_type.clone()).collect();
        let versions: Vec<i16> = events.iter().map(|e| e.schema_version).collect();
        let payloads: Vec<serde_json::Value> = events.iter().map(|e| e.payload.clone()).collect();
        let personal: Vec<serde_json::Value> = events
            .iter()
            .map(|e| e.personal.clone().unwrap_or(serde_json::Value::Null))
            .collect();
        let subjects: Vec<Uuid> = events
            .iter()
            .map(|e| e.data_subject.unwrap_or(NO_SUBJECT))
            .collect();

        // One statement, so one round trip and an implicit transaction: the events and the
        // command's idempotency row are written together or not at all.
        let result = sqlx::query!(
            r#"
            WITH base AS (
                -- The version this append builds on. A stated expectation must match the stream's
                -- end exactly: if the expected version does not exist yet this yields no row and
                -- nothing is inserted (an expectation *behind* the end fails on the unique key).
                SELECT COALESCE($2::int, (SELECT max(version) FROM events WHERE stream_id = $1), 0) AS v
                WHERE ($2::int IS NULL OR $2::int = 0
                       OR EXISTS (SELECT 1 FROM events WHERE stream_id = $1 AND version = $2::int))
                  -- Sealed with keys held in memory (sealing.rs): each must still be stored as it
                  -- was, else nothing is written.
                  AND (SELECT count(*) FROM subject_keys k
                       JOIN unnest($15::uuid[], $16::bytea[]) AS g(data_subject, wrapped_key)
                         ON k.data_subject = g.data_subject AND k.wrapped_key = g.wrapped_key)
                      = cardinality($15::uuid[])
            ),
            appended AS (
                INSERT INTO events (stream_id, version, event_id, event_type, schema_version, payload,
                                    personal, data_subject, actor_id, actor_role, correlation_id,
                                    causation_id, command_id)
                SELECT $1, base.v + e.ord::int, e.event_id, e.event_type, e.schema_version, e.payload,
                       NULLIF(e.personal, 'null'::jsonb), NULLIF(e.data_subject, $14::uuid),
                       $9, $10, $11, $12, $13
                FROM base,
                     unnest($3::uuid[], $4::text[], $5::int2[], $6::jsonb[], $7::jsonb[], $8::uuid[])
                         WITH ORDINALITY AS e(event_id, event_type, schema_version, payload, personal,
                                              data_subject, ord)
                RETURNING version, position
            )
            INSERT INTO commands (command_id, stream_id, first_version, last_version, first_position,
                                  last_position, transaction_id)
            SELECT $13, $1, min(version), max(version), min(position), max(position), pg_current_xact_id()
            FROM appended
            HAVING count(*) > 0
            RETURNING first_version, last_version, first_position, last_position,
                      transaction_id::text::bigint AS "xid!"
            "#,
            stream_id,
            expected.as_version(),
            &event_ids,
            &types,
            &versions,
            &payloads,
            &personal,
            &subjects,
            metadata.actor_id,
            metadata.actor_role.as_str(),
            metadata.correlation_id,
            metadata.causation_id,
            metadata.command_id,
            NO_SUBJECT,
            &guard.subjects,
            &guard.wrapped,
        )
        .fetch_optional(executor)
        .await;

        match result {
            Ok(Some(row)) => Ok(Some(AppendOutcome::recorded(
                (row.first_version, row.last_version),
                (row.first_position, row.last_position),
                row.xid,
                false,
            ))),
            // The expected version lies beyond the stream's end, or the guard failed.
            Ok(None) => Ok(None),
            Err(err) => match unique_violation(&err) {
                // Whatever key collided, a command that already landed makes this a harmless retry.
                // That covers the concurrent case too: the loser waited on the winner's row lock and
                // sees its commit here.
                Some(_) => match self.command_outcome(metadata.command_id).await? {
                    Some(first) => Ok(Some(first)),
                    None => Err(self.conflict(stream_id, expected).await),
                },
                None => Err(StoreError::Database(err).into()),
            },
        }
    }

    /// What nothing written means where no guard can fail: the expected version lies beyond the
    /// stream's end.
    async fn or_conflict(
        &self,
        written: Option<AppendOutcome>,
        stream_id: &str,
        expected: ExpectedVersion,
    ) -> Result<AppendOutcome, AppendError> {
        match written {
            Some(outcome) => Ok(outcome),
            None => Err(self.conflict(stream_id, expected).await),
        }
    }

    async fn conflict(&self, stream_id: &str, expected: ExpectedVersion) -> AppendError {
        match self.stream_version(stream_id).await {
            Ok(actual) => AppendError::Conflict {
                stream_id: stream_id.to_owned(),
                expected: expected.as_version().unwrap_or(-1),
                actual,
            },
            Err(e) => e.into(),
        }
    }

    /// The stored outcome of a command that was already appended, if any. The command handler also
    /// asks this when a retried command is refused by the rules (it may be refused *because* its
    /// first attempt already took effect).
    pub async fn command_outcome(
        &self,
        command_id: Uuid,
    ) -> Result<Option<AppendOutcome>, StoreError> {
        let row = sqlx::query!(
            r#"
            SELECT first_version, last_version, first_position, last_position,
                   transaction_id::text::bigint AS "xid!"
            FROM commands WHERE command_id = $1
            "#,
            command_id
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| {
            AppendOutcome::recorded(
                (row.first_version, row.last_version),
                (row.first_position, row.last_position),
                row.xid,
                true,
            )
        }))
    }

    /// The version of the stream's last event; 0 for a stream that does not exist.
    pub async fn stream_version(&self, stream_id: &str) -> Result<i32, StoreError> {
        let version = sqlx::query_scalar!(
            r#"SELECT COALESCE(max(version), 0) AS "v!" FROM events WHERE stream_id = $1"#,
            stream_id
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(version)
    }
}
