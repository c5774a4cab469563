//! Why a certificate is not in Ladok yet, as the registrar sees it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::projections::read_models::ReadError;

/// A certificate waiting for Ladok: e.g. "unavailable since 02:00, 3 runs, next attempt with the
/// next run".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LadokWait {
    /// The last failure's code, as in `delivery_error`: `unavailable`, `authentication`,
    /// `rule_error:<Felgrupp>`, ….
    pub reason: String,
    /// When the first run that failed to deliver it recorded the failure.
    pub since: DateTime<Utc>,
    /// Export runs that failed to deliver it: tried it and failed, or did not try it because Ladok
    /// as a whole had already failed in that run.
    pub attempts: u32,
    pub next_attempt: NextAttempt,
}

/// What happens next to a waiting certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NextAttempt {
    /// The next export run (the nightly schedule, `POST /exports/run` or `cim export run`) tries
    /// again by itself.
    NextRun,
    /// A Ladok rule refused it: only `POST /exports/batches/{id}/redeliver` queues it again, once
    /// the data in Ladok is fixed.
    RedeliveryRequest,
}

/// The wait of a row: there is one while a run failed it and it is neither delivered nor queued.
pub(super) fn ladok_wait(row: &PgRow) -> Result<Option<LadokWait>, ReadError> {
    let since: Option<DateTime<Utc>> = row.try_get("ladok_waiting_since")?;
    let status: String = row.try_get("ladok_status")?;
    let reason: Option<String> = row.try_get("delivery_error")?;
    let (Some(since), Some(reason)) = (since, reason) else {
        return Ok(None);
    };
    let next_attempt = match status.as_str() {
        "retrying" => NextAttempt::NextRun,
        "failed" => NextAttempt::RedeliveryRequest,
        _ => return Ok(None),
    };
    Ok(Some(LadokWait {
        reason,
        since,
        attempts: u32::try_from(row.try_get::<i32, _>("delivery_attempts")?).unwrap_or(0),
        next_attempt,
    }))
}
