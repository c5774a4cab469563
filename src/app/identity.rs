//! Opening a portfolio claims the student's identity number (`store::identity`, one number, one
//! student across the service) in the transaction that appends the opening event. Ladok's
//! correcting a typed number claims Ladok's and frees the typed one, the same way.

use sqlx::PgConnection;

use crate::domain::StudentUid;
use crate::domain::portfolio::{IdentityCheck, Portfolio, PortfolioEvent};
use crate::media::uploads;
use crate::store::{EventStore, IdentityClaim, StoreError};

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

/// Claims the identity number inside the transaction that appends the events: a portfolio never
/// exists whose number another student holds, and a refused claim leaves nothing behind. Returns
/// whether the number was free for the student (`false`: another student holds it).
pub(super) async fn claim_in(
    tx: &mut PgConnection,
    store: &EventStore,
    stream_id: &str,
    change: &NumberChange,
) -> Result<bool, StoreError> {
    let claim = &change.claim;
    // The student's erasure lock (`media::uploads`), held until commit: an erasure of this student
    // runs wholly before this open or wholly after it, never between its claim and its commit, so it
    // cannot miss the claimed row (docs/personal-data.md).
    uploads::lock_subject(&mut *tx, StudentUid::new(claim.student_uid)).await?;
    if store
        .claim_identity_number(&mut *tx, claim)
        .await?
        .is_some()
    {
        return Ok(false);
    }
    // The typed number Ladok replaced is no longer this student's (it may be another's), unless
    // another of their portfolios still carries it as typed: that one's own correction frees it.
    if let Some(release) = &change.release
        && !store
            .typed_elsewhere(&mut *tx, release.student_uid, stream_id)
            .await?
    {
        store.release_identity_number(&mut *tx, release).await?;
    }
    Ok(true)
}
