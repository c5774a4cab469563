//! Turning a stored row into a [`RecordedEvent`], upcasting on the way. Every read path shares this,
//! so an upcaster can never be applied on one path and forgotten on another.

use super::keys::SubjectKeys;
use super::{ActorRole, Checkpoint, RecordedEvent, StoreError, Upcasters};
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

/// One row of `events`, as the read queries select it (see `read.rs` and `tail.rs`).
#[derive(Debug)]
pub(crate) struct EventRow {
    pub position: i64,
    pub xid: i64,
    pub stream_id: String,
    pub version: i32,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: i16,
    pub payload: Value,
    pub personal: Option<Value>,
    pub data_subject: Option<Uuid>,
    pub actor_id: String,
    pub actor_role: String,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub command_id: Uuid,
    pub recorded_at: DateTime<Utc>,
}

impl EventRow {
    /// Opens the sealed personal part with `keys` (loaded for these rows), then upcasts: upcasters
    /// see plaintext, as they always have.
    pub(crate) fn into_recorded(
        self,
        upcasters: &Upcasters,
        keys: &SubjectKeys,
    ) -> Result<RecordedEvent, StoreError> {
        let personal = keys.open(
            self.position,
            self.event_id,
            self.data_subject,
            self.personal,
        )?;
        let actor_role =
            ActorRole::parse(&self.actor_role).ok_or_else(|| StoreError::UnknownRole {
                position: self.position,
                role: self.actor_role.clone(),
            })?;
        let (schema_version, payload, personal) = upcasters
            .upcast(
                &self.event_type,
                self.schema_version,
                self.payload,
                personal,
            )
            .map_err(|reason| StoreError::Upcast {
                position: self.position,
                event_type: self.event_type.clone(),
                schema_version: self.schema_version,
                reason,
            })?;
        Ok(RecordedEvent {
            checkpoint: Checkpoint {
                transaction_id: self.xid,
                position: self.position,
            },
            stream_id: self.stream_id,
            version: self.version,
            event_id: self.event_id,
            event_type: self.event_type,
            schema_version,
            stored_schema_version: self.schema_version,
            payload,
            personal,
            data_subject: self.data_subject,
            actor_id: self.actor_id,
            actor_role,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            command_id: self.command_id,
            recorded_at: self.recorded_at,
        })
    }
}

/// The keys the sealed rows among `rows` need, in one query.
pub(crate) async fn keys_for(
    pool: &sqlx::PgPool,
    rows: &[EventRow],
) -> Result<SubjectKeys, StoreError> {
    let subjects =
        super::keys::sealed_subjects(rows.iter().map(|r| (r.data_subject, r.personal.as_ref())));
    SubjectKeys::load(pool, &subjects).await
}
