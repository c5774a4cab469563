//! Opening a portfolio claims the student's identity number (`store::identity`, one number, one
//! student across the service) in the transaction that appends the opening event. Ladok's
//! correcting a typed number claims Ladok's and frees the typed one, the same way.

use super::CommandContext;
use super::handler::CommandError;
use crate::domain::StudentUid;
use crate::domain::portfolio::{IdentityCheck, Portfolio, PortfolioEvent};
use crate::media::uploads;
use crate::store::{
    AppendError, AppendOutcome, EventStore, ExpectedVersion, IdentityClaim, NewEvent, StoreError,
};

/// A number entering a portfolio: claimed for its student, and the number it replaces (if any)
/// freed from them.
#[derive(Debug)]
pub(super) struct NumberChange {
    pub claim: IdentityClaim,
    pub release: Option<IdentityClaim>,
}

/// The number that `events`, decided against the portfolio `before`, bring in: the opening's, or
/// Ladok's correction of the typed one.
pub(super) fn claim_of(
    before: Option<&Portfolio>,
    events: &[PortfolioEvent],
) -> Option<NumberChange> {
    events.iter().find_map(|event| match (event, before) {
        (PortfolioEvent::PortfolioOpened(e), None) => {
            let student = e.personal.as_ref()?;
            Some(NumberChange {
                claim: IdentityClaim {
                    digits: student.identity_number.as_str().to_owned(),
                    student_uid: *e.student_uid.as_uuid(),
                },
                release: None,
            })
        }
        (PortfolioEvent::IdentityCheckedInLadok(e), Some(p))
            if e.outcome == IdentityCheck::Corrected =>
        {
            let ladok = e.personal.as_ref()?;
            let uid = *p.student_uid.as_uuid();
            Some(NumberChange {
                claim: IdentityClaim {
                    digits: ladok.identity_number.as_str().to_owned(),
                    student_uid: uid,
                },
                release: p.student.as_ref().map(|s| IdentityClaim {
                    digits: s.identity_number.as_str().to_owned(),
                    student_uid: uid,
                }),
            })
        }
        _ => None,
    })
}

/// Claims the identity number and appends, in one transaction: a portfolio never exists whose
/// number another student holds, and a refused claim leaves nothing behind. The outer `Result`
/// is the refusal (or a failure of the claim), the inner one the append's answer.
pub(super) async fn append_claiming(
    store: &EventStore,
    stream_id: &str,
    expected: ExpectedVersion,
    new: &[NewEvent],
    ctx: &CommandContext,
    change: &NumberChange,
) -> Result<Result<AppendOutcome, AppendError>, CommandError> {
    let claim = &change.claim;
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
    // The typed number Ladok replaced is no longer this student's (it may be another's), unless
    // another of their portfolios still carries it as typed: that one's own correction frees it.
    if let Some(release) = &change.release
        && !store
            .typed_elsewhere(&mut tx, release.student_uid, stream_id)
            .await?
    {
        store.release_identity_number(&mut tx, release).await?;
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
