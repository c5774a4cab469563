//! Read model `registrar` (`rm_certificates`): approved and revoked certificates of every program,
//! for the registrar's office and, later, the export worker. DDL: `projections/registrar.sql`.
//!
//! `CertificateApproved` carries everything the certificate states, so no fold is needed: the
//! projection copies its non-personal part and `CertificateRevoked` marks the row.
//!
//! The delivery columns come from the export worker's batch streams (`export-batch-{id}`, see
//! [`crate::domain::batch`]):
//! - `BatchCreated`: every certificate and revocation it took gets `export_status = 'exported'`,
//!   `last_batch_id` = the batch and `delivery_error = NULL` (Ladok delivery is still `pending`); an
//!   approval it refused gets `export_status = 'refused'` and the refusal code in `delivery_error`.
//!   An approval only marks a row that is still `approved`: if a revocation came in between, the
//!   revocation (a later batch's correction) is what is still outstanding.
//! - `CertificateDelivered`: `ladok_status = 'delivered'`, `delivery_error = NULL`.
//! - `DeliveryFailed`: `ladok_status = 'retrying'` (the next run tries again) or `'failed'` (a rule
//!   error: waits for the registrar), `delivery_error` = our reason code, followed by `:` and Ladok's
//!   error group when Ladok named one (e.g. `rule_error:commons.fel.grupp.domanregel`). Ladok's free
//!   text is never copied.
//!
//! - `DeliveriesDeferred`: Ladok as a whole failed earlier in the run, which stopped delivering; the
//!   named rows it did not try get `ladok_status = 'retrying'` and the failure's code, exactly as if
//!   each had been tried, so every waiting row says why and not only the one that was tried.
//! - `RedeliveryRequested`: the named rows that are not delivered go back to `ladok_status =
//!   'pending'` (the last error stays until the next outcome replaces it).
//!
//! `ladok_waiting_since` and `delivery_attempts` describe the current wait: the first failed or
//! deferred run since the row last changed batch, was delivered or was queued again, and how many
//! runs failed it since; shown to the registrar as [`LadokWait`].
//!
//! An outcome only touches a row whose `last_batch_id` is the outcome's batch and whose
//! `export_status` is `exported`: the late outcome of an earlier batch never overwrites the state of
//! a revocation that is still pending or was taken by a newer batch.

mod approvals;
mod wait;
use approvals::Approvals;
use wait::ladok_wait;
pub use wait::{LadokWait, NextAttempt};

use super::stream::decode_portfolio_event;
use super::{ReadError, clamp_limit, from_serde_name, serde_name, undecodable};
use crate::domain::batch::{BatchEvent, BatchItem};
use crate::domain::portfolio::{
    CertificateRevoked, CertifiedActivity, FinalFormat, PortfolioEvent,
};
use crate::domain::{CertificateId, PortfolioId, ProgramId, StaffId, StudentUid};
use crate::log::{StreamKind, stream_kind};
use crate::store::{Checkpoint, RecordedEvent};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

/// The `registrar` projection.
#[derive(Debug)]
pub struct RegistrarProjection;

impl RegistrarProjection {
    pub fn new() -> Self {
        Self
    }

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ReadError> {
        // Approvals are most of this read model's writes: they go in together. Every other change
        // is an UPDATE of rows an approval may have made, so the approvals noted so far are
        // written before it.
        let mut approvals = Approvals::default();
        for event in events {
            if let Some(batch_id) = batch_stream(&event.stream_id) {
                approvals.write(conn).await?;
                apply_batch_event(conn, event, batch_id).await?;
                continue;
            }
            if !matches!(stream_kind(&event.stream_id), StreamKind::Portfolio(_))
                || !matches!(
                    event.event_type.as_str(),
                    "CertificateApproved" | "CertificateRevoked"
                )
            {
                continue;
            }
            match decode_portfolio_event(event)? {
                PortfolioEvent::CertificateApproved(c) => approvals.add(event, &c),
                PortfolioEvent::CertificateRevoked(r) => {
                    approvals.write(conn).await?;
                    revoked(conn, event, &r).await?;
                }
                _ => {}
            }
        }
        approvals.write(conn).await
    }
}

async fn revoked(
    conn: &mut PgConnection,
    event: &RecordedEvent,
    r: &CertificateRevoked,
) -> Result<(), ReadError> {
    // The reason (`r.personal`) is personal and stays in the log.
    sqlx::query!(
        "UPDATE rm_certificates
         SET status = 'revoked', revoked_on = $2, revoked_by = $3, updated_at = $4,
             export_status = 'pending', ladok_status = 'pending',
             ladok_waiting_since = NULL, delivery_attempts = 0
         WHERE certificate_id = $1",
        r.certificate_id.as_uuid(),
        r.revoked_on,
        r.by.as_str(),
        event.recorded_at,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The batch id of an export batch stream (`export-batch-{id}`).
fn batch_stream(stream_id: &str) -> Option<Uuid> {
    stream_id.strip_prefix("export-batch-")?.parse().ok()
}

async fn apply_batch_event(
    conn: &mut PgConnection,
    event: &RecordedEvent,
    batch_id: Uuid,
) -> Result<(), ReadError> {
    if !matches!(
        event.event_type.as_str(),
        "BatchCreated"
            | "CertificateDelivered"
            | "DeliveryFailed"
            | "DeliveriesDeferred"
            | "RedeliveryRequested"
    ) {
        return Ok(());
    }
    let decoded = crate::log::decode_batch(event).map_err(|e| ReadError::Corrupt {
        position: event.position(),
        event_type: event.event_type.clone(),
        reason: e.to_string(),
    })?;
    match decoded {
        BatchEvent::BatchCreated(created) => {
            let ids = |items: &[BatchItem]| -> Vec<Uuid> {
                items.iter().map(|i| *i.certificate_id.as_uuid()).collect()
            };
            // Approvals: only rows still approved (a revocation in between is still outstanding).
            // Revocations: the correction is in this batch.
            sqlx::query!(
                "UPDATE rm_certificates
                 SET export_status = 'exported', ladok_status = 'pending', last_batch_id = $3,
                     delivery_error = NULL, ladok_waiting_since = NULL, delivery_attempts = 0,
                     updated_at = $4
                 WHERE (certificate_id = ANY($1) AND status = 'approved')
                    OR (certificate_id = ANY($2) AND status = 'revoked')",
                &ids(&created.certificates),
                &ids(&created.revocations),
                batch_id,
                event.recorded_at,
            )
            .execute(&mut *conn)
            .await?;
            for refused in &created.refused {
                sqlx::query!(
                    "UPDATE rm_certificates
                     SET export_status = 'refused', last_batch_id = $2, delivery_error = $3,
                         updated_at = $4
                     WHERE certificate_id = $1 AND status = 'approved'",
                    refused.certificate_id.as_uuid(),
                    batch_id,
                    &refused.reason,
                    event.recorded_at,
                )
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        }
        BatchEvent::CertificateDelivered(d) => {
            outcome(conn, event, batch_id, d.certificate_id, "delivered", None).await
        }
        BatchEvent::DeliveriesDeferred(d) => {
            let ids: Vec<Uuid> = d.certificate_ids.iter().map(|id| *id.as_uuid()).collect();
            // The rows the run did not try, on the same condition as an outcome of their own.
            sqlx::query!(
                "UPDATE rm_certificates
                 SET ladok_status = 'retrying', delivery_error = $3,
                     ladok_waiting_since = COALESCE(ladok_waiting_since, $4),
                     delivery_attempts = delivery_attempts + 1, updated_at = $4
                 WHERE certificate_id = ANY($1) AND last_batch_id = $2
                   AND export_status = 'exported' AND ladok_status <> 'delivered'",
                &ids,
                batch_id,
                &d.reason,
                event.recorded_at,
            )
            .execute(&mut *conn)
            .await?;
            Ok(())
        }
        BatchEvent::DeliveryFailed(f) => {
            let status = if f.retryable { "retrying" } else { "failed" };
            let error = match &f.felgrupp {
                Some(group) => format!("{}:{group}", f.reason),
                None => f.reason.clone(),
            };
            outcome(conn, event, batch_id, f.certificate_id, status, Some(error)).await
        }
        BatchEvent::RedeliveryRequested(r) => {
            // Queued again: the error stays visible until the next outcome replaces it.
            for id in r.certificate_ids {
                outcome_status(conn, event, batch_id, id, "pending").await?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Sets `ladok_status` alone (a re-delivery request), on the same condition as [`outcome`].
async fn outcome_status(
    conn: &mut PgConnection,
    event: &RecordedEvent,
    batch_id: Uuid,
    certificate_id: CertificateId,
    ladok_status: &str,
) -> Result<(), ReadError> {
    sqlx::query!(
        "UPDATE rm_certificates
         SET ladok_status = $3, ladok_waiting_since = NULL, delivery_attempts = 0, updated_at = $4
         WHERE certificate_id = $1 AND last_batch_id = $2 AND export_status = 'exported'
           AND ladok_status <> 'delivered'",
        certificate_id.as_uuid(),
        batch_id,
        ladok_status,
        event.recorded_at,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records a Ladok delivery outcome on the row, if the row is still waiting for this batch: an
/// error starts or continues the row's wait, a delivery ends it.
async fn outcome(
    conn: &mut PgConnection,
    event: &RecordedEvent,
    batch_id: Uuid,
    certificate_id: CertificateId,
    ladok_status: &str,
    error: Option<String>,
) -> Result<(), ReadError> {
    // `$4::text`: a bare `$4 IS NULL` gives the server no type to infer for the parameter.
    sqlx::query!(
        "UPDATE rm_certificates
         SET ladok_status = $3, delivery_error = $4, updated_at = $5,
             ladok_waiting_since = CASE WHEN $4::text IS NULL THEN NULL
                                        ELSE COALESCE(ladok_waiting_since, $5) END,
             delivery_attempts = CASE WHEN $4::text IS NULL THEN 0 ELSE delivery_attempts + 1 END
         WHERE certificate_id = $1 AND last_batch_id = $2 AND export_status = 'exported'",
        certificate_id.as_uuid(),
        batch_id,
        ladok_status,
        error,
        event.recorded_at,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

read_model! {
    RegistrarProjection {
        name: "registrar",
        version: 3,
        definition: "registrar.sql",
        tables: ["rm_certificates"],
    }
}

/// A certificate's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CertificateStatus {
    Approved,
    Revoked,
}

/// One certificate as the registrar sees it: no identity number, no name (the export worker takes
/// those from the log when it writes a batch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CertificateRecord {
    pub certificate_id: CertificateId,
    pub portfolio_id: PortfolioId,
    pub program_id: ProgramId,
    pub program_code: String,
    pub program_name: String,
    pub student_uid: StudentUid,
    pub application: u32,
    pub decided_on: NaiveDate,
    pub decided_by: StaffId,
    pub activity_names: Vec<String>,
    pub activities: Vec<CertifiedActivity>,
    pub final_format: FinalFormat,
    pub status: CertificateStatus,
    pub revoked_on: Option<NaiveDate>,
    pub revoked_by: Option<StaffId>,
    /// Where the approval sits in the log: the keyset cursor of [`certificates`].
    pub approved: Checkpoint,
    pub approved_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// `pending`, `exported` or `refused`; `ladok_status`: `pending`, `delivered`, `retrying` or
    /// `failed` (see `projections/registrar.sql` and the module documentation).
    pub export_status: String,
    pub ladok_status: String,
    pub last_batch_id: Option<Uuid>,
    pub delivery_error: Option<String>,
    /// Why the certificate is not in Ladok yet, while runs have failed to deliver it; `null` once
    /// delivered, and before any run tried.
    pub ladok_wait: Option<LadokWait>,
    /// What the registrar's office must still do by hand in Ladok for it (e.g. allow the merit in
    /// the degree certificate, which Ladok leaves to an administrator).
    pub ladok_manual_steps: Vec<crate::domain::batch::manual::ManualStep>,
}

fn staff(s: String) -> Result<StaffId, ReadError> {
    StaffId::parse(&s).map_err(|_| undecodable("invalid staff id in rm_certificates".into()))
}

fn record(row: &PgRow) -> Result<CertificateRecord, ReadError> {
    let status: String = row.try_get("status")?;
    let final_format: String = row.try_get("final_format")?;
    let Json(activities) = row.try_get::<Json<Vec<CertifiedActivity>>, _>("activities")?;
    Ok(CertificateRecord {
        certificate_id: CertificateId::new(row.try_get("certificate_id")?),
        portfolio_id: PortfolioId::new(row.try_get("portfolio_id")?),
        program_id: ProgramId::new(row.try_get("program_id")?),
        program_code: row.try_get("program_code")?,
        program_name: row.try_get("program_name")?,
        student_uid: StudentUid::new(row.try_get("student_uid")?),
        application: u32::try_from(row.try_get::<i32, _>("application")?).unwrap_or(0),
        decided_on: row.try_get("decided_on")?,
        decided_by: staff(row.try_get("decided_by")?)?,
        activity_names: row.try_get("activity_names")?,
        activities,
        final_format: from_serde_name(&final_format)?,
        status: from_serde_name(&status)?,
        revoked_on: row.try_get("revoked_on")?,
        revoked_by: row
            .try_get::<Option<String>, _>("revoked_by")?
            .map(staff)
            .transpose()?,
        approved: Checkpoint {
            transaction_id: row.try_get("approved_transaction_id")?,
            position: row.try_get("approved_position")?,
        },
        approved_at: row.try_get("approved_at")?,
        updated_at: row.try_get("updated_at")?,
        export_status: row.try_get("export_status")?,
        ladok_status: row.try_get("ladok_status")?,
        last_batch_id: row.try_get("last_batch_id")?,
        delivery_error: row.try_get("delivery_error")?,
        ladok_wait: ladok_wait(row)?,
        ladok_manual_steps: crate::domain::batch::manual::manual_steps(
            status == "revoked",
            row.try_get::<Option<String>, _>("delivery_error")?
                .as_deref(),
        ),
    })
}

const COLUMNS: &str = "certificate_id, portfolio_id, program_id, program_code, program_name, \
     student_uid, application, decided_on, decided_by, activity_names, activities, final_format, \
     status, revoked_on, revoked_by, approved_transaction_id, approved_position, approved_at, updated_at, export_status, \
     ladok_status, last_batch_id, delivery_error, ladok_waiting_since, delivery_attempts";

/// Which certificates to list. Empty fields do not filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CertificateFilter {
    pub program_id: Option<ProgramId>,
    pub status: Option<CertificateStatus>,
}

/// One page of certificates; pass `next` back as `after` for the following page (`None`: last).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CertificatePage {
    pub certificates: Vec<CertificateRecord>,
    pub next: Option<Checkpoint>,
}

/// Certificates in the order they were approved, filtered, `limit` per page after the cursor
/// `after` (the `approved` checkpoint of the last certificate of the previous page).
pub async fn certificates(
    pool: &PgPool,
    filter: &CertificateFilter,
    after: Option<Checkpoint>,
    limit: i64,
) -> Result<CertificatePage, ReadError> {
    let limit = clamp_limit(limit);
    let after = after.unwrap_or(Checkpoint::START);
    // Runtime-checked: the shared column list `COLUMNS`, decoded by name in `record`.
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM rm_certificates
         WHERE (approved_transaction_id, approved_position) > ($1, $5)
           AND ($2::uuid IS NULL OR program_id = $2)
           AND ($3::text IS NULL OR status = $3)
         ORDER BY approved_transaction_id, approved_position
         LIMIT $4"
    ))
    .bind(after.transaction_id)
    .bind(filter.program_id.map(|p| *p.as_uuid()))
    .bind(filter.status.map(serde_name))
    .bind(limit)
    .bind(after.position)
    .fetch_all(pool)
    .await?;
    let certificates = rows.iter().map(record).collect::<Result<Vec<_>, _>>()?;
    let next = match certificates.last() {
        Some(last) if certificates.len() as i64 == limit => Some(last.approved),
        _ => None,
    };
    Ok(CertificatePage { certificates, next })
}

/// One certificate by id.
pub async fn certificate(
    pool: &PgPool,
    id: CertificateId,
) -> Result<Option<CertificateRecord>, ReadError> {
    // Runtime-checked: the shared column list `COLUMNS`, decoded by name in `record`.
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM rm_certificates WHERE certificate_id = $1"
    ))
    .bind(id.as_uuid())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(record).transpose()
}
