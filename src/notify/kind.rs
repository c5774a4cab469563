//! What a message is about and who receives it: the vocabulary shared by the deciders (the log
//! consumer and the schedules), the outbox and the templates.

use serde_json::Value;

use crate::domain::PortfolioId;

/// Every message the service sends. The string form is stored in `outbox.kind` and names the
/// template (`templates/email/{language}/{kind}.txt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    // To the student.
    ReflectionApproved,
    ReflectionReturned,
    FinalReflectionApproved,
    FinalReflectionReturned,
    ExtensionGranted,
    ApplicationRejected,
    CertificateApproved,
    CertificateRecorded,
    CertificateRevoked,
    FinalReflectionDue,
    Inactive,
    // To a coordinator.
    CoordinatorDigest,
    // To the registrar's office.
    BatchReady,
    LadokRefused,
    CertificateHeld,
    // To the operators.
    ServiceStuck,
}

impl MessageKind {
    pub const ALL: [MessageKind; 16] = [
        MessageKind::ReflectionApproved,
        MessageKind::ReflectionReturned,
        MessageKind::FinalReflectionApproved,
        MessageKind::FinalReflectionReturned,
        MessageKind::ExtensionGranted,
        MessageKind::ApplicationRejected,
        MessageKind::CertificateApproved,
        MessageKind::CertificateRecorded,
        MessageKind::CertificateRevoked,
        MessageKind::FinalReflectionDue,
        MessageKind::Inactive,
        MessageKind::CoordinatorDigest,
        MessageKind::BatchReady,
        MessageKind::LadokRefused,
        MessageKind::CertificateHeld,
        MessageKind::ServiceStuck,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::ReflectionApproved => "reflection_approved",
            MessageKind::ReflectionReturned => "reflection_returned",
            MessageKind::FinalReflectionApproved => "final_reflection_approved",
            MessageKind::FinalReflectionReturned => "final_reflection_returned",
            MessageKind::ExtensionGranted => "extension_granted",
            MessageKind::ApplicationRejected => "application_rejected",
            MessageKind::CertificateApproved => "certificate_approved",
            MessageKind::CertificateRecorded => "certificate_recorded",
            MessageKind::CertificateRevoked => "certificate_revoked",
            MessageKind::FinalReflectionDue => "final_reflection_due",
            MessageKind::Inactive => "inactive",
            MessageKind::CoordinatorDigest => "coordinator_digest",
            MessageKind::BatchReady => "batch_ready",
            MessageKind::LadokRefused => "ladok_refused",
            MessageKind::CertificateHeld => "certificate_held",
            MessageKind::ServiceStuck => "service_stuck",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Who a message is for. Never an address: addresses are looked up when the message is sent, so
/// the outbox holds nothing an erasure would have to reach.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Recipient {
    /// The student of a portfolio (their address is the portfolio's).
    Student(PortfolioId),
    /// A staff member by their token subject (their address is in `notification_preferences`).
    Staff(String),
    /// The registrar's office: the configured functional mailbox.
    Registrar,
    /// The operators: the configured functional mailbox.
    Operations,
}

impl Recipient {
    /// The `(recipient_kind, recipient)` columns of the outbox.
    pub fn columns(&self) -> (&'static str, String) {
        match self {
            Recipient::Student(p) => ("student", p.as_uuid().to_string()),
            Recipient::Staff(s) => ("staff", s.clone()),
            Recipient::Registrar => ("registrar", String::new()),
            Recipient::Operations => ("operations", String::new()),
        }
    }

    pub fn from_columns(kind: &str, recipient: &str) -> Option<Self> {
        match kind {
            "student" => recipient
                .parse()
                .ok()
                .map(|id| Recipient::Student(PortfolioId::new(id))),
            "staff" => Some(Recipient::Staff(recipient.to_owned())),
            "registrar" => Some(Recipient::Registrar),
            "operations" => Some(Recipient::Operations),
            _ => None,
        }
    }
}

/// One message decided: stored in the outbox unless its key is there already.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// `(source, recipient, kind)` as one string: the same message decided twice has the same key.
    pub dedup_key: String,
    pub kind: MessageKind,
    pub recipient: Recipient,
    /// Ids, dates and counts the template shows; never personal data.
    pub params: Value,
}

impl Decision {
    /// A message caused by one event: keyed by the event, the recipient and the kind.
    pub fn for_event(
        event_id: uuid::Uuid,
        kind: MessageKind,
        recipient: Recipient,
        params: Value,
    ) -> Self {
        let (rk, r) = recipient.columns();
        Decision {
            dedup_key: format!("event:{event_id}:{rk}:{r}:{}", kind.as_str()),
            kind,
            recipient,
            params,
        }
    }

    /// A scheduled message: keyed by what it is about (`source`, e.g. a deadline or a day).
    pub fn scheduled(source: &str, kind: MessageKind, recipient: Recipient, params: Value) -> Self {
        let (rk, r) = recipient.columns();
        Decision {
            dedup_key: format!("schedule:{source}:{rk}:{r}:{}", kind.as_str()),
            kind,
            recipient,
            params,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_recipients_round_trip_through_their_columns() {
        for kind in MessageKind::ALL {
            assert_eq!(MessageKind::parse(kind.as_str()), Some(kind));
        }
        let portfolio = PortfolioId::new(uuid::Uuid::now_v7());
        for r in [
            Recipient::Student(portfolio),
            Recipient::Staff("coord-1".into()),
            Recipient::Registrar,
            Recipient::Operations,
        ] {
            let (k, v) = r.columns();
            assert_eq!(Recipient::from_columns(k, &v), Some(r));
        }
    }
}
