//! Between domain events and stored events: the `personal` part of a payload goes to its own column
//! (with the person it belongs to), everything else stays in the payload.

use crate::domain::batch::BatchEvent;
use crate::domain::{PERSONAL_FIELD, PayloadError, PortfolioEvent, ProgramEvent};
use crate::store::{NewEvent, RecordedEvent, Upcasters};
use serde_json::Value;
use std::borrow::Cow;
use uuid::Uuid;

/// Every upcaster of the production event types. Each event type is at schema version 1 so far, so
/// this is empty; when a type's shape changes, its step from the old version is registered here (see
/// `store::Upcasters`), and old logs stay readable.
pub fn upcasters() -> Upcasters {
    Upcasters::new()
}

/// A domain event as the store takes it. `data_subject` is the person whose data sits in `personal`.
pub fn encode(
    event_type: &str,
    schema_version: i16,
    mut payload: Value,
    data_subject: Option<Uuid>,
) -> NewEvent {
    let personal = payload
        .as_object_mut()
        .and_then(|fields| fields.remove(PERSONAL_FIELD))
        .filter(|p| !p.is_null());
    NewEvent {
        // Time-ordered ids keep the unique index on event_id append-friendly.
        event_id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        schema_version,
        data_subject: personal.as_ref().and(data_subject),
        payload,
        personal,
    }
}

/// The stored payload with its personal part put back (absent when erased).
/// The payload with the personal part back in its field; borrowed as stored when there is no
/// personal part (always, for the projections), so nothing is copied.
fn rejoin(event: &RecordedEvent) -> Cow<'_, Value> {
    match &event.personal {
        Some(personal) if event.payload.is_object() => {
            let mut payload = event.payload.clone();
            if let Some(fields) = payload.as_object_mut() {
                fields.insert(PERSONAL_FIELD.to_owned(), personal.clone());
            }
            Cow::Owned(payload)
        }
        _ => Cow::Borrowed(&event.payload),
    }
}

pub fn decode_portfolio(event: &RecordedEvent) -> Result<PortfolioEvent, PayloadError> {
    PortfolioEvent::from_payload(&event.event_type, &rejoin(event))
}

pub fn decode_program(event: &RecordedEvent) -> Result<ProgramEvent, PayloadError> {
    ProgramEvent::from_payload(&event.event_type, &rejoin(event))
}

/// A batch event as the store takes it (batch events hold nothing personal).
pub fn encode_batch(event: &BatchEvent) -> NewEvent {
    let (kind, payload) = event.to_payload();
    encode(kind, event.schema_version(), payload, None)
}

/// A batch stream's event.
pub fn decode_batch(event: &RecordedEvent) -> Result<BatchEvent, PayloadError> {
    BatchEvent::from_payload(&event.event_type, &event.payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn personal_data_moves_to_its_own_column_and_back() {
        let subject = Uuid::now_v7();
        let e = encode(
            "T",
            1,
            json!({"a": 1, "personal": {"name": "Ada"}}),
            Some(subject),
        );
        assert_eq!(e.payload, json!({"a": 1}));
        assert_eq!(e.personal, Some(json!({"name": "Ada"})));
        assert_eq!(e.data_subject, Some(subject));

        let none = encode("T", 1, json!({"a": 1, "personal": null}), Some(subject));
        assert_eq!((none.personal, none.data_subject), (None, None));
    }
}
