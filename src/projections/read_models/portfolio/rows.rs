//! Writing the rows of `rm_portfolios` a batch changed: one statement per batch.

use super::super::ReadError;
use super::super::batch::Pending;
use super::super::view::PortfolioView;
use super::StoredPortfolio;
use crate::domain::{PortfolioId, ProgramId, StudentUid};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgConnection;

/// Writes the rows a batch changed, in one statement, and forgets them.
pub(super) async fn write(
    conn: &mut PgConnection,
    rows: &mut Pending<PortfolioId, StoredPortfolio>,
) -> Result<(), ReadError> {
    if rows.is_empty() {
        return Ok(());
    }
    let rows = rows.take_json_with(|_, row, out| serde_json::to_writer(out, &Row::of(row)))?;
    sqlx::query!(
        "INSERT INTO rm_portfolios
             (portfolio_id, program_id, student_uid, version, phase, deadline, deadline_extended,
              deadline_binding, view, updated_at)
         SELECT portfolio_id, program_id, student_uid, version, phase, deadline,
                deadline_extended, deadline_binding, view, updated_at
         FROM jsonb_to_recordset($1::text::jsonb) AS r(
             portfolio_id UUID, program_id UUID, student_uid UUID, version INTEGER, phase TEXT,
             deadline DATE, deadline_extended BOOLEAN, deadline_binding BOOLEAN, view JSONB,
             updated_at TIMESTAMPTZ)
         ON CONFLICT (portfolio_id) DO UPDATE
             SET program_id = EXCLUDED.program_id, student_uid = EXCLUDED.student_uid,
                 version = EXCLUDED.version, phase = EXCLUDED.phase,
                 deadline = EXCLUDED.deadline, deadline_extended = EXCLUDED.deadline_extended,
                 deadline_binding = EXCLUDED.deadline_binding, view = EXCLUDED.view,
                 updated_at = EXCLUDED.updated_at",
        rows,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A row of `rm_portfolios` under its column names, for [`write`].
#[derive(Serialize)]
struct Row<'a> {
    portfolio_id: PortfolioId,
    program_id: ProgramId,
    student_uid: StudentUid,
    version: i32,
    phase: &'static str,
    deadline: NaiveDate,
    deadline_extended: bool,
    deadline_binding: bool,
    view: &'a PortfolioView,
    updated_at: DateTime<Utc>,
}

impl<'a> Row<'a> {
    fn of(row: &'a StoredPortfolio) -> Self {
        let view = &row.view;
        Row {
            portfolio_id: view.portfolio_id,
            program_id: view.program_id,
            student_uid: view.student_uid,
            version: row.version,
            phase: view.phase.as_str(),
            deadline: view.deadline.date,
            deadline_extended: view.deadline.extended,
            deadline_binding: view.deadline.binding,
            view,
            updated_at: row.updated_at,
        }
    }
}
