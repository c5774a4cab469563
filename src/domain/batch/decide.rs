//! What may be recorded on a batch, and when.

use super::commands::BatchCommand;
use super::events::{
    BatchAcknowledged, BatchCompleted, BatchCreated, BatchEvent, RedeliveryRequested,
};
use super::state::BatchState;
use crate::domain::{CertificateId, DomainError};

/// The events `command` produces on a batch in `state`; none when it is already recorded (a
/// repeated file, delivery or acknowledgement changes nothing).
pub fn decide(state: &BatchState, command: BatchCommand) -> Result<Vec<BatchEvent>, DomainError> {
    if let BatchCommand::Create(created) = command {
        return match state.created {
            Some(_) => Err(DomainError::BatchAlreadyCreated),
            None => Ok(vec![created.into()]),
        };
    }
    let created = state.created.as_ref().ok_or(DomainError::BatchNotCreated)?;
    match command {
        BatchCommand::Create(_) => unreachable!("decided above"),
        BatchCommand::RecordFiles(files) => {
            if state.completed {
                return Err(DomainError::BatchAlreadyComplete);
            }
            // A file recorded as it is changes nothing (a step repeated after a crash).
            Ok(files
                .into_iter()
                .filter(|f| state.written.get(&f.name) != Some(&(f.sha256.clone(), f.size)))
                .map(BatchEvent::from)
                .collect())
        }
        BatchCommand::Complete { files } => Ok(if state.completed {
            Vec::new()
        } else {
            vec![BatchCompleted { files }.into()]
        }),
        BatchCommand::StartWrite(started) => {
            delivering(state, created, &[started.certificate_id])?;
            Ok(vec![started.into()])
        }
        BatchCommand::RecordMerit(merit) => {
            delivering(state, created, &[merit.certificate_id])?;
            Ok(vec![merit.into()])
        }
        BatchCommand::RecordDelivered(delivered) => {
            delivering(state, created, &[delivered.certificate_id])?;
            if state.delivered.get(&delivered.certificate_id) == Some(&delivered.ladok_merit_uid) {
                return Ok(Vec::new());
            }
            Ok(vec![delivered.into()])
        }
        BatchCommand::RecordFailure(failed) => {
            delivering(state, created, &[failed.certificate_id])?;
            Ok(vec![failed.into()])
        }
        BatchCommand::Defer(deferred) => {
            delivering(state, created, &deferred.certificate_ids)?;
            if deferred.certificate_ids.is_empty() {
                return Ok(Vec::new());
            }
            Ok(vec![deferred.into()])
        }
        BatchCommand::Acknowledge { by } => Ok(match state.acknowledged_by {
            Some(_) => Vec::new(),
            None => vec![BatchAcknowledged { by }.into()],
        }),
        BatchCommand::RequestRedelivery { by } => {
            let certificate_ids = failed_for_good(state);
            if certificate_ids.is_empty() {
                return Ok(Vec::new());
            }
            Ok(vec![
                RedeliveryRequested {
                    by,
                    certificate_ids,
                }
                .into(),
            ])
        }
    }
}

/// The certificates whose delivery failed for good (a Ladok rule error) and that are still not
/// delivered: what a re-delivery request queues again.
pub fn failed_for_good(state: &BatchState) -> Vec<CertificateId> {
    state
        .failed
        .iter()
        .filter(|(id, f)| !f.retryable && !state.delivered.contains_key(*id))
        .map(|(id, _)| *id)
        .collect()
}

/// Deliveries are recorded only for a complete batch's own certificates.
fn delivering(
    state: &BatchState,
    created: &BatchCreated,
    ids: &[CertificateId],
) -> Result<(), DomainError> {
    if !state.completed {
        return Err(DomainError::BatchIncomplete);
    }
    let in_batch = |id: &CertificateId| {
        (created.certificates.iter().chain(&created.revocations)).any(|i| i.certificate_id == *id)
    };
    match ids.iter().find(|id| !in_batch(id)) {
        Some(&certificate_id) => Err(DomainError::CertificateNotInBatch { certificate_id }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
