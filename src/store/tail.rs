//! Following the global order without ever skipping an event.
//!
//! # Why not `WHERE position > $last ORDER BY position`
//!
//! Positions come from a sequence when a row is inserted, but transactions commit in their own order.
//! Writer A draws position 10 and is still busy; writer B draws 11 and commits. A consumer reading
//! "after 9" now sees 11, moves its checkpoint to 11, and never sees 10 once A commits. Waiting at a
//! gap for a while does not fix it either: Marten did that and silently lost slow appends.
//!
//! # The technique: transaction ids below the snapshot's xmin
//!
//! Every event row carries the 64-bit id of the transaction that appended it (`xid8`, set by
//! `pg_current_xact_id()`). `pg_snapshot_xmin(pg_current_snapshot())` is the oldest transaction id that
//! was still running when our query's snapshot was taken: every transaction with a smaller id has ended,
//! committed or rolled back. So the set of visible events with `transaction_id < xmin` is final: no
//! later commit can add a row to it. We read only that set, ordered by `(transaction_id, position)`,
//! and the consumer checkpoints both parts. Because the bound only ever moves forward and everything
//! below it is final, a consumer that has read up to checkpoint C has seen every event ordered before C.
//!
//! We chose this over a high-water mark with gap detection (no timers, nothing to tune, nothing that
//! can give up waiting) and over an advisory lock that serialises every append (that caps write
//! throughput at one transaction at a time). The price: a long-running transaction anywhere in the
//! cluster holds the bound back, so consumers lag (never skip) while it runs. Appends are single
//! statements, so our own transactions are short.

use super::row::EventRow;
use super::{Checkpoint, EventStore, RecordedEvent, StoreError};

impl EventStore {
    /// Up to `limit` events after `after` in the global order, considering only transactions that
    /// have ended. An empty result means "nothing new that is final yet", never "nothing will come".
    pub async fn read_after(
        &self,
        after: Checkpoint,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.tail(after, limit, true).await
    }

    /// [`EventStore::read_after`] for consumers that never use personal data: the projections,
    /// whose read models hold none. Sealed parts are not opened (no key look-up, no decryption),
    /// and every event reads as if its personal part were absent, exactly as the projections'
    /// `Personal::Omit` folds read a stream, so a state folded from the tail and one folded from
    /// the log are the same, and no copy of a text, name or identity number lingers in their
    /// caches (where an erasure could not reach it).
    pub async fn read_after_omitting_personal(
        &self,
        after: Checkpoint,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.tail(after, limit, false).await
    }

    async fn tail(
        &self,
        after: Checkpoint,
        limit: i64,
        open_personal: bool,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query_as!(
            EventRow,
            r#"
            SELECT position, transaction_id::text::bigint AS "xid!", stream_id, version, event_id,
                   event_type, schema_version, payload,
                   -- Not even sent when the reader omits it: it is most of an event's bytes.
                   CASE WHEN $4::boolean THEN personal END AS personal,
                   data_subject, actor_id, actor_role,
                   correlation_id, causation_id, command_id, recorded_at
            FROM events
            -- Row comparison: a range scan on events_tail_idx (transaction_id, position).
            WHERE (transaction_id, position) > ($1::bigint::text::xid8, $2::bigint)
              -- Only transactions that have ended: see the module documentation.
              AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
            ORDER BY transaction_id, position
            LIMIT $3
            "#,
            after.transaction_id,
            after.position,
            limit,
            open_personal
        )
        .fetch_all(&self.pool)
        .await?;
        let keys = if open_personal {
            super::row::keys_for(&self.pool, &rows).await?
        } else {
            super::keys::SubjectKeys::default()
        };
        rows.into_iter()
            .map(|row| row.into_recorded(&self.upcasters, &keys))
            .collect()
    }

    /// The checkpoint of the last event that a consumer could read right now: the head of the
    /// readable log. Used to report a consumer's lag.
    pub async fn head(&self) -> Result<Checkpoint, StoreError> {
        let row = sqlx::query!(
            r#"
            SELECT transaction_id::text::bigint AS "xid!", position
            FROM events
            WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
            ORDER BY transaction_id DESC, position DESC
            LIMIT 1
            "#
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map_or(Checkpoint::START, |r| Checkpoint {
            transaction_id: r.xid,
            position: r.position,
        }))
    }
}

/// The cluster counts transactions below the log's last one: the database was restored into
/// another cluster (a `pg_dump` keeps the old ids, a new cluster starts from a few hundred). Until
/// that is fixed every consumer of the tail would skip what is appended next (`docs/backup.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "this database's transaction ids ({next}) are behind the event log's ({last}): it was restored into another cluster; stop it and run `pg_resetwal --epoch={epoch}` on its data directory before starting (docs/backup.md, restore step 3)"
)]
pub struct TransactionIdsBehind {
    pub next: i64,
    pub last: i64,
    /// The transaction-id epoch that puts the cluster past the log.
    pub epoch: i64,
}

/// Checks that the next transaction id of the cluster is past every event's: run at start-up,
/// before anything reads or appends. Reads the snapshot's bound, so it assigns no id itself.
pub async fn check_transaction_ids(
    pool: &sqlx::PgPool,
) -> Result<Result<(), TransactionIdsBehind>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS "next!",
                  (SELECT transaction_id FROM events ORDER BY transaction_id DESC LIMIT 1)::text::bigint
                      AS last"#
    )
    .fetch_one(pool)
    .await?;
    Ok(match row.last {
        Some(last) if row.next <= last => Err(TransactionIdsBehind {
            next: row.next,
            last,
            epoch: (last >> 32) + 1,
        }),
        _ => Ok(()),
    })
}
