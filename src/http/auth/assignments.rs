//! Coordinator access from the program's own stream: a coordinator may act on a program only while
//! the program's stream assigns them (`CoordinatorAssigned` not followed by `CoordinatorUnassigned`).
//! Read from the log on every request of a coordinator, so an unassignment revokes access at once,
//! also for tokens that are still valid. Program groups in the token, when it carries any, narrow
//! this further (see `claims.rs`).

use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::ProgramId;

/// The programs whose stream assigns `staff` as a coordinator now, with their codes.
pub async fn assigned_programs(
    pool: &PgPool,
    staff: &str,
) -> Result<Vec<(ProgramId, String)>, sqlx::Error> {
    // The last assignment event of each program stream for this staff id decides (served by
    // events_coordinator_assignments_idx); the code is the program's registration's (the stream's
    // first event, found through the stream's own index). Stream ids are `program-{uuid}`.
    let rows = sqlx::query!(
        r#"SELECT last.stream_id AS "stream_id!", registered.payload->>'code' AS code
         FROM (
             SELECT DISTINCT ON (stream_id) stream_id, event_type
             FROM events
             WHERE event_type IN ('CoordinatorAssigned', 'CoordinatorUnassigned')
               AND payload->>'staff' = $1
             ORDER BY stream_id, version DESC
         ) last
         LEFT JOIN events registered
           ON registered.stream_id = last.stream_id AND registered.version = 1
         WHERE last.event_type = 'CoordinatorAssigned'"#,
        staff
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let id = row
                .stream_id
                .strip_prefix("program-")?
                .parse::<Uuid>()
                .ok()?;
            Some((ProgramId::new(id), row.code.unwrap_or_default()))
        })
        .collect())
}
