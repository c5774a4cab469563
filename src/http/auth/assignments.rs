//! Coordinator access from the program's own stream: a coordinator may act on a program only while
//! the program's stream assigns them (`CoordinatorAssigned` not followed by `CoordinatorUnassigned`).
//! Read from the log on every request of a coordinator, so an unassignment revokes access at once,
//! also for tokens that are still valid. The token's programs still bound what the caller may claim:
//! access is the programs both say.

use std::collections::BTreeSet;

use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::ProgramId;

/// The programs whose stream assigns `staff` as a coordinator now.
pub async fn assigned_programs(
    pool: &PgPool,
    staff: &str,
) -> Result<BTreeSet<ProgramId>, sqlx::Error> {
    // The last assignment event of each program stream for this staff id decides (served by
    // events_coordinator_assignments_idx). Stream ids are `program-{uuid}`.
    let streams: Vec<String> = sqlx::query_scalar(
        "SELECT stream_id FROM (
             SELECT DISTINCT ON (stream_id) stream_id, event_type
             FROM events
             WHERE event_type IN ('CoordinatorAssigned', 'CoordinatorUnassigned')
               AND payload->>'staff' = $1
             ORDER BY stream_id, version DESC
         ) last
         WHERE event_type = 'CoordinatorAssigned'",
    )
    .bind(staff)
    .fetch_all(pool)
    .await?;
    Ok(streams
        .iter()
        .filter_map(|s| s.strip_prefix("program-")?.parse::<Uuid>().ok())
        .map(ProgramId::new)
        .collect())
}
