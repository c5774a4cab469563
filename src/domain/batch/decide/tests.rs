use super::*;
use crate::domain::BatchId;
use crate::domain::batch::{
    BatchFileWritten, BatchItem, CertificateDelivered, DeliveriesDeferred, DeliveryFailed,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

fn cid(n: u128) -> CertificateId {
    CertificateId::new(Uuid::from_u128(n))
}

fn created() -> BatchCreated {
    BatchCreated {
        batch_id: BatchId::new(Uuid::from_u128(9)),
        created_at: DateTime::<Utc>::UNIX_EPOCH,
        certificates: vec![BatchItem {
            certificate_id: cid(1),
            stream_id: "portfolio-x".to_owned(),
        }],
        revocations: vec![BatchItem {
            certificate_id: cid(2),
            stream_id: "portfolio-y".to_owned(),
        }],
        refused: Vec::new(),
    }
}

/// The state after `commands`, each decided and folded in turn.
fn after(commands: Vec<BatchCommand>) -> BatchState {
    commands
        .into_iter()
        .fold(BatchState::default(), |state, c| {
            let version = state.version;
            decide(&state, c).unwrap().iter().fold(state, |s, e| {
                crate::domain::batch::evolve(s, e, version + 1, DateTime::UNIX_EPOCH)
            })
        })
}

fn file(name: &str, sha: &str) -> BatchCommand {
    BatchCommand::RecordFiles(vec![BatchFileWritten {
        name: name.to_owned(),
        sha256: sha.to_owned(),
        size: 1,
    }])
}

fn failure(id: CertificateId, retryable: bool) -> BatchCommand {
    BatchCommand::RecordFailure(DeliveryFailed {
        certificate_id: id,
        reason: "rule_error".to_owned(),
        felgrupp: None,
        retryable,
        settles_write: true,
    })
}

#[test]
fn a_batch_is_created_once_and_nothing_is_recorded_before() {
    let empty = BatchState::default();
    assert!(matches!(
        decide(&empty, file("a", "1")),
        Err(DomainError::BatchNotCreated)
    ));
    let state = after(vec![BatchCommand::Create(created())]);
    assert!(matches!(
        decide(&state, BatchCommand::Create(created())),
        Err(DomainError::BatchAlreadyCreated)
    ));
}

#[test]
fn files_are_recorded_once_and_not_after_completion() {
    let state = after(vec![BatchCommand::Create(created()), file("a", "1")]);
    assert_eq!(decide(&state, file("a", "1")).unwrap(), vec![]);
    assert_eq!(decide(&state, file("b", "2")).unwrap().len(), 1);
    // A chunk of files: only those not yet recorded as they are.
    let chunk = |names: &[&str]| {
        BatchCommand::RecordFiles(
            names
                .iter()
                .map(|n| BatchFileWritten {
                    name: (*n).to_owned(),
                    sha256: "1".to_owned(),
                    size: 1,
                })
                .collect(),
        )
    };
    assert_eq!(decide(&state, chunk(&["a", "b", "c"])).unwrap().len(), 2);
    let done = after(vec![
        BatchCommand::Create(created()),
        file("a", "1"),
        BatchCommand::Complete { files: 1 },
    ]);
    assert!(matches!(
        decide(&done, file("b", "2")),
        Err(DomainError::BatchAlreadyComplete)
    ));
    assert_eq!(
        decide(&done, BatchCommand::Complete { files: 1 }).unwrap(),
        vec![]
    );
}

#[test]
fn deliveries_need_a_complete_batch_and_its_own_certificates() {
    let delivered = |id| {
        BatchCommand::RecordDelivered(CertificateDelivered {
            certificate_id: id,
            ladok_merit_uid: "m".to_owned(),
        })
    };
    let open = after(vec![BatchCommand::Create(created())]);
    assert!(matches!(
        decide(&open, delivered(cid(1))),
        Err(DomainError::BatchIncomplete)
    ));
    let done = after(vec![
        BatchCommand::Create(created()),
        BatchCommand::Complete { files: 0 },
    ]);
    assert!(matches!(
        decide(&done, delivered(cid(3))),
        Err(DomainError::CertificateNotInBatch { certificate_id }) if certificate_id == cid(3)
    ));
    let deferred = BatchCommand::Defer(DeliveriesDeferred {
        certificate_ids: vec![cid(2), cid(4)],
        reason: "unavailable".to_owned(),
    });
    assert!(decide(&done, deferred).is_err());
    let once = after(vec![
        BatchCommand::Create(created()),
        BatchCommand::Complete { files: 0 },
        delivered(cid(2)),
    ]);
    assert_eq!(decide(&once, delivered(cid(2))).unwrap(), vec![]);
}

#[test]
fn redelivery_queues_only_what_failed_for_good() {
    let by = || "registrar".to_owned();
    let state = after(vec![
        BatchCommand::Create(created()),
        BatchCommand::Complete { files: 0 },
        failure(cid(1), false),
        failure(cid(2), true),
    ]);
    let events = decide(&state, BatchCommand::RequestRedelivery { by: by() }).unwrap();
    assert_eq!(
        events,
        vec![BatchEvent::RedeliveryRequested(RedeliveryRequested {
            by: by(),
            certificate_ids: vec![cid(1)],
        })]
    );
    let queued = after(vec![
        BatchCommand::Create(created()),
        BatchCommand::Complete { files: 0 },
        failure(cid(1), false),
        BatchCommand::RequestRedelivery { by: by() },
    ]);
    assert_eq!(
        decide(&queued, BatchCommand::RequestRedelivery { by: by() }).unwrap(),
        vec![]
    );
}

#[test]
fn a_batch_is_acknowledged_once() {
    let state = after(vec![
        BatchCommand::Create(created()),
        BatchCommand::Acknowledge {
            by: "first".to_owned(),
        },
    ]);
    assert_eq!(state.acknowledged_by.as_deref(), Some("first"));
    let again = BatchCommand::Acknowledge {
        by: "second".to_owned(),
    };
    assert_eq!(decide(&state, again).unwrap(), vec![]);
}
