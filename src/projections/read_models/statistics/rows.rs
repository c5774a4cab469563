//! Writing the rows of `rm_stats_portfolios` a batch changed: one statement per batch.

use super::super::ReadError;
use super::super::batch::Pending;
use super::PortfolioStats;
use crate::domain::PortfolioId;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgConnection;

/// Each changed portfolio's row and the time of the event that last changed it.
pub(super) type Changed = Pending<PortfolioId, (PortfolioStats, DateTime<Utc>)>;

/// Writes `rows` (inserting or replacing each portfolio's row) and forgets them.
pub(super) async fn write(conn: &mut PgConnection, rows: &mut Changed) -> Result<(), ReadError> {
    if rows.is_empty() {
        return Ok(());
    }
    let rows = rows.take_json_with(|id, (stats, at), out| {
        serde_json::to_writer(out, &Row::of(*id, stats, *at))
    })?;
    sqlx::query!(
        "INSERT INTO rm_stats_portfolios
             (portfolio_id, program_id, opened_at, last_event_at, last_student_event_at,
              reached_activity_logged, reached_activities_logged, reached_reflections_submitted,
              reached_reflections_approved, reached_final_reflection_submitted,
              reached_final_reflection_approved, reached_applied, reached_certified,
              furthest_step, current_step, activities_logged, activities_withdrawn,
              reflections_submitted, reflections_returned, reflections_approved,
              written_reflections, oral_reflections, instagram_reflections,
              final_submitted, final_returned, final_format, applications, rejections,
              catalog_items, first_activity_on, approved_on, days_to_approval, revoked_on,
              updated_at)
         SELECT portfolio_id, program_id, opened_at, last_event_at, last_student_event_at,
              reached[2], reached[3], reached[4], reached[5], reached[6], reached[7], reached[8],
              reached[9], furthest_step, current_step, activities_logged, activities_withdrawn,
              reflections_submitted, reflections_returned, reflections_approved,
              written_reflections, oral_reflections, instagram_reflections,
              final_submitted, final_returned, final_format, applications, rejections,
              catalog_items, first_activity_on, approved_on, days_to_approval, revoked_on,
              updated_at
         FROM jsonb_to_recordset($1::text::jsonb) AS r(
             portfolio_id UUID, program_id UUID, opened_at TIMESTAMPTZ,
             last_event_at TIMESTAMPTZ, last_student_event_at TIMESTAMPTZ,
             -- Step::ALL's flags; PostgreSQL counts from 1, so reached[2] is Step::ALL[1]
             -- (reached[1], opened, every row has and no column keeps).
             reached BOOLEAN[], furthest_step TEXT, current_step TEXT,
             activities_logged INTEGER, activities_withdrawn INTEGER,
             reflections_submitted INTEGER, reflections_returned INTEGER,
             reflections_approved INTEGER, written_reflections INTEGER,
             oral_reflections INTEGER, instagram_reflections INTEGER, final_submitted INTEGER,
             final_returned INTEGER, final_format TEXT, applications INTEGER,
             rejections INTEGER, catalog_items TEXT[], first_activity_on DATE,
             approved_on DATE, days_to_approval INTEGER, revoked_on DATE,
             updated_at TIMESTAMPTZ)
         ON CONFLICT (portfolio_id) DO UPDATE SET
             program_id = EXCLUDED.program_id, opened_at = EXCLUDED.opened_at,
             last_event_at = EXCLUDED.last_event_at,
             last_student_event_at = EXCLUDED.last_student_event_at,
             reached_activity_logged = EXCLUDED.reached_activity_logged,
             reached_activities_logged = EXCLUDED.reached_activities_logged,
             reached_reflections_submitted = EXCLUDED.reached_reflections_submitted,
             reached_reflections_approved = EXCLUDED.reached_reflections_approved,
             reached_final_reflection_submitted = EXCLUDED.reached_final_reflection_submitted,
             reached_final_reflection_approved = EXCLUDED.reached_final_reflection_approved,
             reached_applied = EXCLUDED.reached_applied,
             reached_certified = EXCLUDED.reached_certified,
             furthest_step = EXCLUDED.furthest_step, current_step = EXCLUDED.current_step,
             activities_logged = EXCLUDED.activities_logged,
             activities_withdrawn = EXCLUDED.activities_withdrawn,
             reflections_submitted = EXCLUDED.reflections_submitted,
             reflections_returned = EXCLUDED.reflections_returned,
             reflections_approved = EXCLUDED.reflections_approved,
             written_reflections = EXCLUDED.written_reflections,
             oral_reflections = EXCLUDED.oral_reflections,
             instagram_reflections = EXCLUDED.instagram_reflections,
             final_submitted = EXCLUDED.final_submitted,
             final_returned = EXCLUDED.final_returned, final_format = EXCLUDED.final_format,
             applications = EXCLUDED.applications, rejections = EXCLUDED.rejections,
             catalog_items = EXCLUDED.catalog_items,
             first_activity_on = EXCLUDED.first_activity_on,
             approved_on = EXCLUDED.approved_on, days_to_approval = EXCLUDED.days_to_approval,
             revoked_on = EXCLUDED.revoked_on, updated_at = EXCLUDED.updated_at",
        rows,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A row under its column names (`reached` whole, unpacked into its columns by the statement).
#[derive(Serialize)]
struct Row<'a> {
    portfolio_id: PortfolioId,
    program_id: crate::domain::ProgramId,
    opened_at: DateTime<Utc>,
    last_event_at: DateTime<Utc>,
    last_student_event_at: Option<DateTime<Utc>>,
    reached: &'a [bool],
    furthest_step: &'static str,
    current_step: &'static str,
    activities_logged: i32,
    activities_withdrawn: i32,
    reflections_submitted: i32,
    reflections_returned: i32,
    reflections_approved: i32,
    written_reflections: i32,
    oral_reflections: i32,
    instagram_reflections: i32,
    final_submitted: i32,
    final_returned: i32,
    final_format: Option<&'a str>,
    applications: i32,
    rejections: i32,
    catalog_items: &'a [String],
    first_activity_on: Option<NaiveDate>,
    approved_on: Option<NaiveDate>,
    days_to_approval: Option<i32>,
    revoked_on: Option<NaiveDate>,
    updated_at: DateTime<Utc>,
}

fn int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl<'a> Row<'a> {
    fn of(portfolio_id: PortfolioId, s: &'a PortfolioStats, at: DateTime<Utc>) -> Self {
        Row {
            portfolio_id,
            program_id: s.program_id,
            opened_at: s.opened_at,
            last_event_at: s.last_event_at,
            last_student_event_at: s.last_student_event_at,
            reached: &s.reached,
            furthest_step: s.furthest_step().as_str(),
            current_step: s.current_step.as_str(),
            activities_logged: int(s.activities_logged),
            activities_withdrawn: int(s.activities_withdrawn),
            reflections_submitted: int(s.reflections_submitted),
            reflections_returned: int(s.reflections_returned),
            reflections_approved: int(s.reflections_approved),
            written_reflections: int(s.written_reflections),
            oral_reflections: int(s.oral_reflections),
            instagram_reflections: int(s.instagram_reflections),
            final_submitted: int(s.final_submitted),
            final_returned: int(s.final_returned),
            final_format: s.final_format.as_deref(),
            applications: int(s.applications),
            rejections: int(s.rejections),
            catalog_items: &s.catalog_items,
            first_activity_on: s.first_activity_on,
            approved_on: s.approved_on,
            days_to_approval: s
                .days_to_approval()
                .map(|d| i32::try_from(d).unwrap_or(i32::MAX)),
            revoked_on: s.revoked_on,
            updated_at: at,
        }
    }
}
