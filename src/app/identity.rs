//! Opening a portfolio claims the student's identity number (`store::identity`, one number, one
//! student across the service) in the transaction that appends the opening event.

use super::CommandContext;
use super::handler::CommandError;
use crate::domain::StudentUid;
use crate::media::uploads;
use crate::store::{
    AppendError, AppendOutcome, EventStore, ExpectedVersion, IdentityClaim, NewEvent, StoreError,
};

/// Claims the identity number and appends, in one transaction: a portfolio never exists whose
/// number another student holds, and a refused claim leaves nothing behind. The outer `Result`
/// is the refusal (or a failure of the claim), the inner one the append's answer.
pub(super) async fn append_claiming(
    store: &EventStore,
    stream_id: &str,
    expected: ExpectedVersion,
    new: &[NewEvent],
    ctx: &CommandContext,
    claim: &IdentityClaim,
) -> Result<Result<AppendOutcome, AppendError>, CommandError> {
    let mut tx = store.pool().begin().await.map_err(StoreError::from)?;
    // The student's erasure lock (`media::uploads`), held until commit: an erasure of this student
    // runs wholly before this open or wholly after it, never between its claim and its commit, so it
    // cannot miss the claimed row (docs/erasure.md).
    uploads::lock_subject(&mut tx, StudentUid::new(claim.student_uid))
        .await
        .map_err(StoreError::from)?;
    if store.claim_identity_number(&mut tx, claim).await?.is_some() {
        // A retry of a command that took effect is answered with its outcome, not refused.
        return match store.command_outcome(ctx.command_id).await? {
            Some(outcome) => Ok(Ok(outcome)),
            None => Err(CommandError::IdentityNumberTaken),
        };
    }
    let appended = store
        .append_in(&mut tx, stream_id, expected, new, &ctx.metadata())
        .await;
    // A conflict or a duplicate leaves nothing of this attempt: the transaction rolls back.
    if let Ok(outcome) = &appended
        && !outcome.duplicate
    {
        tx.commit().await.map_err(StoreError::from)?;
        store.announce();
    }
    Ok(appended)
}
