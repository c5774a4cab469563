//! Loading one stream, in version order, for the command handler and the audit.

use super::row::EventRow;
use super::{EventStore, RecordedEvent, StoreError};

impl EventStore {
    /// Every event of `stream_id` after version `after_version` (0 for all), oldest first.
    pub async fn read_stream(
        &self,
        stream_id: &str,
        after_version: i32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query_as!(
            EventRow,
            r#"
            SELECT position, transaction_id::text::bigint AS "xid!", stream_id, version, event_id,
                   event_type, schema_version, payload, personal, data_subject, actor_id, actor_role,
                   correlation_id, causation_id, command_id, recorded_at
            FROM events
            WHERE stream_id = $1 AND version > $2   -- served by the (stream_id, version) unique index
            ORDER BY version
            "#,
            stream_id,
            after_version
        )
        .fetch_all(&self.pool)
        .await?;
        let keys = super::row::keys_for(&self.pool, &rows).await?;
        rows.into_iter()
            .map(|row| row.into_recorded(&self.upcasters, &keys))
            .collect()
    }

    /// The event of `stream_id` at `version` (e.g. 1, the event that opened the stream), upcast;
    /// `None` when the stream has no such version. Its personal part is not opened.
    pub async fn read_one(
        &self,
        stream_id: &str,
        version: i32,
    ) -> Result<Option<RecordedEvent>, StoreError> {
        let row = sqlx::query_as!(
            EventRow,
            r#"
            SELECT position, transaction_id::text::bigint AS "xid!", stream_id, version, event_id,
                   event_type, schema_version, payload, personal, data_subject, actor_id, actor_role,
                   correlation_id, causation_id, command_id, recorded_at
            FROM events
            WHERE stream_id = $1 AND version = $2   -- the (stream_id, version) unique index
            "#,
            stream_id,
            version
        )
        .fetch_optional(&self.pool)
        .await?;
        let keys = super::keys::SubjectKeys::default();
        row.map(|mut row| {
            row.personal = None;
            row.into_recorded(&self.upcasters, &keys)
        })
        .transpose()
    }
}
