//! Which messages an event of the log causes: a pure function of the event (read without its
//! personal part) and, for batch events, of which portfolio holds each certificate of the batch.
//!
//! Only decisions that a person acts on or waits for are messages: a returned or approved piece of
//! work, a decision on the application, the certificate recorded in Ladok, an extension; for the
//! registrar a batch to take and a delivery that needs a person. A retryable Ladok failure is not a
//! message (the next run tries again; the operators hear of it if the worker stays stuck).

use std::collections::HashMap;

use serde_json::json;

use super::kind::{Decision, MessageKind, Recipient};
use crate::domain::batch::BatchEvent;
use crate::domain::portfolio::PortfolioEvent;
use crate::domain::{CertificateId, PortfolioId};
use crate::log::codec::{decode_batch, decode_portfolio};
use crate::log::streams::{StreamKind, stream_kind};
use crate::store::RecordedEvent;

/// Where the certificates of one batch come from: their portfolio, and whether the batch carries
/// them as a revocation (a correction) rather than an approval.
pub type BatchHolders = HashMap<CertificateId, (PortfolioId, bool)>;

/// The messages `event` causes. `holders` is consulted for batch events only (the consumer reads
/// it from the batch's `BatchCreated`); an event it cannot decode causes none (the projections
/// report malformed events; a message is not worth stopping the outbox for).
pub fn decide(event: &RecordedEvent, holders: &BatchHolders) -> Vec<Decision> {
    match stream_kind(&event.stream_id) {
        StreamKind::Portfolio(portfolio) => match decode_portfolio(event) {
            Ok(e) => portfolio_messages(event, portfolio, &e),
            Err(_) => Vec::new(),
        },
        StreamKind::Batch(batch) => match decode_batch(event) {
            Ok(e) => batch_messages(event, batch.as_uuid().to_string(), &e, holders),
            Err(_) => Vec::new(),
        },
        StreamKind::Program(_) | StreamKind::Other => Vec::new(),
    }
}

fn portfolio_messages(
    event: &RecordedEvent,
    portfolio: PortfolioId,
    e: &PortfolioEvent,
) -> Vec<Decision> {
    let to_student = |kind, params: serde_json::Value| {
        vec![Decision::for_event(
            event.event_id,
            kind,
            Recipient::Student(portfolio),
            params,
        )]
    };
    let id = portfolio.as_uuid().to_string();
    match e {
        PortfolioEvent::ReflectionApproved(r) => to_student(
            MessageKind::ReflectionApproved,
            json!({ "portfolio_id": id, "attempt": r.attempt }),
        ),
        PortfolioEvent::ReflectionReturned(r) => to_student(
            MessageKind::ReflectionReturned,
            json!({ "portfolio_id": id, "attempt": r.attempt }),
        ),
        PortfolioEvent::FinalReflectionApproved(r) => to_student(
            MessageKind::FinalReflectionApproved,
            json!({ "portfolio_id": id, "attempt": r.attempt }),
        ),
        PortfolioEvent::FinalReflectionReturned(r) => to_student(
            MessageKind::FinalReflectionReturned,
            json!({ "portfolio_id": id, "attempt": r.attempt }),
        ),
        PortfolioEvent::ExtensionGranted(x) => to_student(
            MessageKind::ExtensionGranted,
            json!({ "portfolio_id": id, "until": x.until }),
        ),
        PortfolioEvent::ApplicationRejected(a) => to_student(
            MessageKind::ApplicationRejected,
            json!({ "portfolio_id": id, "application": a.application }),
        ),
        PortfolioEvent::CertificateApproved(c) => to_student(
            MessageKind::CertificateApproved,
            json!({ "portfolio_id": id, "program": c.program_name, "decided_on": c.decided_on }),
        ),
        PortfolioEvent::CertificateRevoked(c) => to_student(
            MessageKind::CertificateRevoked,
            json!({ "portfolio_id": id, "revoked_on": c.revoked_on }),
        ),
        _ => Vec::new(),
    }
}

fn batch_messages(
    event: &RecordedEvent,
    batch: String,
    e: &BatchEvent,
    holders: &BatchHolders,
) -> Vec<Decision> {
    let to_registrar = |kind, params| {
        vec![Decision::for_event(
            event.event_id,
            kind,
            Recipient::Registrar,
            params,
        )]
    };
    match e {
        BatchEvent::BatchCompleted(c) => to_registrar(
            MessageKind::BatchReady,
            json!({ "batch_id": batch, "files": c.files }),
        ),
        BatchEvent::DeliveryFailed(f) if !f.retryable => {
            let kind = if f.reason.starts_with("identity_mismatch") {
                MessageKind::CertificateHeld
            } else {
                MessageKind::LadokRefused
            };
            to_registrar(
                kind,
                json!({
                    "batch_id": batch,
                    "certificate_id": f.certificate_id.as_uuid().to_string(),
                    "reason": f.reason,
                    "felgrupp": f.felgrupp,
                }),
            )
        }
        // A delivered approval is the student's news; a delivered revocation was announced to
        // them when it was decided.
        BatchEvent::CertificateDelivered(d) => match holders.get(&d.certificate_id) {
            Some(&(portfolio, false)) => vec![Decision::for_event(
                event.event_id,
                MessageKind::CertificateRecorded,
                Recipient::Student(portfolio),
                json!({
                    "portfolio_id": portfolio.as_uuid().to_string(),
                    "certificate_id": d.certificate_id.as_uuid().to_string(),
                }),
            )],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::batch::{CertificateDelivered, DeliveryFailed};
    use crate::domain::portfolio::{ActivityLogged, ReflectionReturned};
    use crate::domain::{ActivityId, BatchId, StaffId};
    use crate::store::{ActorRole, Checkpoint};
    use uuid::Uuid;

    fn recorded(
        stream_id: String,
        (event_type, payload): (&str, serde_json::Value),
    ) -> RecordedEvent {
        RecordedEvent {
            checkpoint: Checkpoint::START,
            stream_id,
            version: 2,
            event_id: Uuid::now_v7(),
            event_type: event_type.to_owned(),
            schema_version: 1,
            stored_schema_version: 1,
            payload,
            personal: None,
            data_subject: None,
            actor_id: "coord".into(),
            actor_role: ActorRole::Coordinator,
            correlation_id: Uuid::nil(),
            causation_id: None,
            command_id: Uuid::nil(),
            recorded_at: chrono::Utc::now(),
        }
    }

    fn portfolio_event(portfolio: PortfolioId, e: PortfolioEvent) -> RecordedEvent {
        recorded(portfolio.stream_id(), e.to_payload())
    }

    fn batch_event(batch: BatchId, e: BatchEvent) -> RecordedEvent {
        recorded(batch.stream_id(), e.to_payload())
    }

    #[test]
    fn a_returned_reflection_tells_its_student_keyed_by_the_event() {
        let portfolio = PortfolioId::new(Uuid::now_v7());
        let event = portfolio_event(
            portfolio,
            PortfolioEvent::ReflectionReturned(ReflectionReturned {
                activity_id: ActivityId::new(Uuid::now_v7()),
                attempt: 2,
                by: StaffId::parse("coord").unwrap(),
                personal: None,
            }),
        );
        let decided = decide(&event, &BatchHolders::new());
        assert_eq!(decided.len(), 1);
        assert_eq!(decided[0].kind, MessageKind::ReflectionReturned);
        assert_eq!(decided[0].recipient, Recipient::Student(portfolio));
        assert_eq!(decided[0].params["attempt"], 2);
        assert!(decided[0].dedup_key.contains(&event.event_id.to_string()));
        // The same event decides the same key.
        assert_eq!(decide(&event, &BatchHolders::new()), decided);
    }

    #[test]
    fn what_the_student_does_themselves_tells_nobody() {
        let portfolio = PortfolioId::new(Uuid::now_v7());
        let logged: ActivityLogged = serde_json::from_value(serde_json::json!({
            "activity_id": Uuid::now_v7(), "item": "tedx", "item_name": "TEDx",
            "started_on": "2026-11-01", "ended_on": "2026-11-01", "has_evidence": false
        }))
        .unwrap_or_else(|e| panic!("fixture: {e}"));
        let event = portfolio_event(portfolio, PortfolioEvent::ActivityLogged(logged));
        assert!(decide(&event, &BatchHolders::new()).is_empty());
    }

    #[test]
    fn ladok_outcomes_go_to_the_registrar_or_the_certificates_holder() {
        let batch = BatchId::new(Uuid::now_v7());
        let certificate = CertificateId::new(Uuid::now_v7());
        let failed = |reason: &str, retryable| {
            batch_event(
                batch,
                BatchEvent::DeliveryFailed(DeliveryFailed {
                    certificate_id: certificate,
                    reason: reason.into(),
                    felgrupp: None,
                    retryable,
                    settles_write: true,
                }),
            )
        };
        let none = BatchHolders::new();
        assert!(decide(&failed("unavailable", true), &none).is_empty());
        let held = decide(&failed("identity_mismatch", false), &none);
        assert_eq!(held[0].kind, MessageKind::CertificateHeld);
        assert_eq!(held[0].recipient, Recipient::Registrar);
        let refused = decide(&failed("rule_error", false), &none);
        assert_eq!(refused[0].kind, MessageKind::LadokRefused);

        let delivered = batch_event(
            batch,
            BatchEvent::CertificateDelivered(CertificateDelivered {
                certificate_id: certificate,
                ladok_merit_uid: "m".into(),
            }),
        );
        let portfolio = PortfolioId::new(Uuid::now_v7());
        let approval = BatchHolders::from([(certificate, (portfolio, false))]);
        let told = decide(&delivered, &approval);
        assert_eq!(told[0].kind, MessageKind::CertificateRecorded);
        assert_eq!(told[0].recipient, Recipient::Student(portfolio));
        let correction = BatchHolders::from([(certificate, (portfolio, true))]);
        assert!(decide(&delivered, &correction).is_empty());
    }
}
