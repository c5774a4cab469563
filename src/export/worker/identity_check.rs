//! Completing identity numbers typed while Ladok could not be asked (`docs/identity.md`).
//!
//! A portfolio opened while Ladok was unreachable carries the number the student typed and no
//! `identity_check`. Every export run with Ladok delivery switched on first asks Ladok for those
//! students (oldest first, at most [`PER_RUN`]) and records the answer as a portfolio command through
//! the one command handler: Ladok's number replaces a different typed one (and is claimed for the
//! student in the same transaction), or the reason it could not be checked is recorded. Ladok being
//! unreachable ends the pass; the next run goes on where it stopped.
//!
//! No lock is needed: the domain refuses a second check of one portfolio, so two runs at once cost
//! a Ladok read at most. Nothing personal is logged.

use uuid::Uuid;

use super::ladok::{LadokClient, LadokError};
use crate::app::{CommandContext, CommandError, CommandHandler};
use crate::domain::portfolio::{LadokRecord, PortfolioCommand};
use crate::domain::values::IdentityNumber;
use crate::domain::{DomainError, PortfolioId, StudentUid};
use crate::store::{EventStore, StoreError};

/// At most this many students are asked per run, so a backlog never delays the export much.
pub const PER_RUN: i64 = 200;

/// The actor id on the events this pass appends.
pub const IDENTITY_CHECK_ACTOR: &str = "identity-check";

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IdentityCheckPass {
    /// Portfolios whose check was recorded.
    pub recorded: usize,
    /// Whether Ladok stopped answering before the pass was through.
    pub interrupted: bool,
}

/// Asks Ladok for the students whose numbers were typed and records each answer.
pub async fn check_typed_numbers(
    store: &EventStore,
    client: &LadokClient,
) -> Result<IdentityCheckPass, StoreError> {
    let handler = CommandHandler::new(store.clone());
    let mut pass = IdentityCheckPass::default();
    for (portfolio, student) in unchecked(store).await? {
        let record = match client.student(&student.to_string()).await {
            Ok(found) if found.uid.eq_ignore_ascii_case(&student.to_string()) => {
                match found
                    .personnummer
                    .map(|d| IdentityNumber::from_normalized(&d))
                {
                    None => LadokRecord::Student {
                        identity_number: None,
                    },
                    Some(Ok(number)) => LadokRecord::Student {
                        identity_number: Some(number),
                    },
                    Some(Err(_)) => {
                        tracing::warn!(%portfolio, "Ladok's identity number for the student cannot be read");
                        LadokRecord::Unusable
                    }
                }
            }
            // Recorded, not skipped: a record asked again every run would hold back the ones after.
            Ok(_) => {
                tracing::warn!(%portfolio, "Ladok answered the identity check with another student's record");
                LadokRecord::Unusable
            }
            Err(LadokError::StudentNotFound) => LadokRecord::NoSuchStudent,
            Err(e) => {
                tracing::warn!(
                    error = e.reason_code(),
                    "Ladok did not answer the identity check; the next export run goes on"
                );
                pass.interrupted = true;
                break;
            }
        };
        if record_check(&handler, portfolio, record).await? {
            pass.recorded += 1;
        }
    }
    Ok(pass)
}

/// Records one answer; `false` when another run recorded one first.
async fn record_check(
    handler: &CommandHandler,
    portfolio: PortfolioId,
    record: LadokRecord,
) -> Result<bool, StoreError> {
    let mut record = record;
    loop {
        let ctx = CommandContext::system(IDENTITY_CHECK_ACTOR, Uuid::now_v7(), Uuid::now_v7());
        let command = PortfolioCommand::CheckIdentityInLadok {
            record: record.clone(),
        };
        match handler.portfolio(portfolio, command, &ctx).await {
            Ok(_) => return Ok(true),
            // Ladok's number is another student's here: recorded as such, nothing else changes.
            Err(CommandError::IdentityNumberTaken)
                if record != LadokRecord::NumberHeldByAnother =>
            {
                record = LadokRecord::NumberHeldByAnother;
            }
            Err(CommandError::Domain(DomainError::NoChange { .. })) => return Ok(false),
            Err(CommandError::Store(e)) => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, %portfolio, "identity check not recorded");
                return Ok(false);
            }
        }
    }
}

/// Portfolios opened with a typed number, neither checked nor erased since, oldest first.
async fn unchecked(store: &EventStore) -> Result<Vec<(PortfolioId, StudentUid)>, StoreError> {
    // An opening without `identity_check` had a typed number (events from before the field
    // included); a later check or erasure settles it. The partial index of migration
    // 20261207000002 serves the outer scan; the inner one reads one stream.
    let rows = sqlx::query!(
        r#"SELECT (o.payload->>'portfolio_id')::uuid AS "portfolio_id!",
                  (o.payload->>'student_uid')::uuid AS "student_uid!"
         FROM events o
         WHERE o.event_type = 'PortfolioOpened' AND NOT (o.payload ? 'identity_check')
           AND NOT EXISTS (
               SELECT 1 FROM events c
               WHERE c.stream_id = o.stream_id
                 AND c.event_type IN ('IdentityCheckedInLadok', 'PersonalDataErased'))
         ORDER BY o.position
         LIMIT $1"#,
        PER_RUN
    )
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let portfolio = PortfolioId::new(row.portfolio_id);
            (portfolio, StudentUid::new(row.student_uid))
        })
        .collect())
}
