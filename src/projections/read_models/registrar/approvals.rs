//! The approvals a batch brings, written to `rm_certificates` together.

use super::super::batch::json_rows;
use super::super::{ReadError, serde_name};
use crate::domain::portfolio::{CertificateApproved, CertifiedActivity};
use crate::domain::{CertificateId, PortfolioId, ProgramId, StudentUid};
use crate::store::RecordedEvent;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgConnection;

/// The approvals noted since the last write, in log order.
#[derive(Debug, Default)]
pub(super) struct Approvals {
    rows: Vec<Row>,
}

/// A new row of `rm_certificates` under its column names. `c.personal` (the holder's identity
/// number and name) is deliberately not among them.
#[derive(Debug, Serialize)]
struct Row {
    certificate_id: CertificateId,
    portfolio_id: PortfolioId,
    program_id: ProgramId,
    program_code: String,
    program_name: String,
    student_uid: StudentUid,
    application: i32,
    decided_on: NaiveDate,
    decided_by: String,
    activity_names: Vec<String>,
    activities: Vec<CertifiedActivity>,
    final_format: String,
    approved_transaction_id: i64,
    approved_position: i64,
    approved_at: DateTime<Utc>,
}

impl Approvals {
    pub(super) fn add(&mut self, event: &RecordedEvent, c: &CertificateApproved) {
        self.rows.push(Row {
            certificate_id: c.certificate_id,
            portfolio_id: c.portfolio_id,
            program_id: c.program_id,
            program_code: c.program_code.as_str().to_owned(),
            program_name: c.program_name.clone(),
            student_uid: c.student_uid,
            application: i32::try_from(c.application).unwrap_or(i32::MAX),
            decided_on: c.decided_on,
            decided_by: c.decided_by.as_str().to_owned(),
            activity_names: c.activities.iter().map(|a| a.item_name.clone()).collect(),
            activities: c.activities.clone(),
            final_format: serde_name(c.final_format),
            approved_transaction_id: event.checkpoint.transaction_id,
            approved_position: event.position(),
            approved_at: event.recorded_at,
        });
    }

    /// Inserts the approvals noted so far, in one statement, and forgets them.
    pub(super) async fn write(&mut self, conn: &mut PgConnection) -> Result<(), ReadError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = json_rows(&std::mem::take(&mut self.rows))?;
        sqlx::query!(
            "INSERT INTO rm_certificates
                 (certificate_id, portfolio_id, program_id, program_code, program_name,
                  student_uid, application, decided_on, decided_by, activity_names, activities,
                  final_format, status, approved_transaction_id, approved_position, approved_at,
                  updated_at)
             SELECT certificate_id, portfolio_id, program_id, program_code, program_name,
                    student_uid, application, decided_on, decided_by, activity_names, activities,
                    final_format, 'approved', approved_transaction_id, approved_position,
                    approved_at, approved_at
             FROM jsonb_to_recordset($1::text::jsonb) AS r(
                 certificate_id UUID, portfolio_id UUID, program_id UUID, program_code TEXT,
                 program_name TEXT, student_uid UUID, application INTEGER, decided_on DATE,
                 decided_by TEXT, activity_names TEXT[], activities JSONB, final_format TEXT,
                 approved_transaction_id BIGINT, approved_position BIGINT,
                 approved_at TIMESTAMPTZ)",
            rows,
        )
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}
