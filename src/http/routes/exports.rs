//! The registrar's export API: the batches the export worker wrote, their files, their Ladok
//! delivery outcomes, and the registrar's actions on them (acknowledge, re-deliver, run now).
//!
//! Registrar only. Everything is answered from the `export_batches` table (the list) and the batch
//! streams `export-batch-{id}` (a batch's details), never from the request: a file is served only
//! when its name is, byte for byte, one that the batch's BatchFileWritten events recorded, and the
//! path on disk is built from that recorded name, never from the caller's input.
//!
//! The two commands append to a batch stream. They do it holding the export lock, like the worker,
//! so they never race the worker's exact-version appends: while a run is in progress they answer
//! `409 export_running` and the registrar tries again a moment later.
//!
//! - `POST /exports/batches/{id}/acknowledge`: BatchAcknowledged `{by}`, once per batch; a second
//!   acknowledgement answers the batch unchanged.
//! - `POST /exports/batches/{id}/redeliver`: RedeliveryRequested `{by, certificate_ids}` naming every
//!   item whose last delivery failed with a failure that no run retries by itself (a Ladok rule
//!   error). The batch goes back on the worker's delivery list; the items are delivered by the next
//!   run: `POST /exports/run` or the nightly schedule.
//! - `POST /exports/run`: one export run now ([`run_export`]), answering its summary, or
//!   `409 export_running` when another worker holds the lock.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::app::Write;
use crate::domain::batch::{BatchCommand, BatchEvent, BatchState, failed_for_good};
use crate::domain::{BatchId, CertificateId};
use crate::export::worker::schedule::run_export;
use crate::export::worker::{ExportLock, RunOutcome, WorkerConfig};
use crate::http::auth::{Caller, Role};
use crate::http::command::CommandMeta;
use crate::http::cursor::{self, Page};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::problem::Problem;
use crate::http::state::AppState;

/// The list a batches cursor belongs to.
const BATCHES_LIST: &str = "export-batches";

fn registrar_only(caller: &Caller) -> Result<(), Problem> {
    if caller.role == Role::Registrar {
        Ok(())
    } else {
        Err(Problem::forbidden("export batches are the registrar's"))
    }
}

fn config(state: &AppState) -> Result<Arc<WorkerConfig>, Problem> {
    state.exports.clone().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "exports_not_configured",
            "this server has no export configuration",
        )
    })
}

fn batch_not_found() -> Problem {
    Problem::not_found("batch_not_found", "there is no such export batch")
}

fn export_running() -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "export_running",
        "an export run is in progress; try again when it has finished",
    )
}

/// One batch in the list: the counts as BatchCreated stated them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchSummary {
    pub batch_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub certificates: i32,
    pub revocations: i32,
    /// When the folder was complete; `null` while files are still being written.
    pub completed_at: Option<DateTime<Utc>>,
    /// When every item was delivered or refused by a Ladok rule; `null` while deliveries are open.
    pub deliveries_settled_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
pub struct BatchesQuery {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// `GET /exports/batches?cursor=&limit=` (registrar): the batches, newest first.
#[utoipa::path(
    get,
    path = "/exports/batches",
    tag = "registrar",
    params(
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("limit" = Option<i64>, Query, description = "Page size, 1-200 (default 50)"),
    ),
    responses((status = 200, description = "One page of export batches, newest first", body = Page<BatchSummary>))
)]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    query: Result<ApiQuery<BatchesQuery>, Problem>,
) -> Result<Json<Page<BatchSummary>>, Problem> {
    registrar_only(&caller)?;
    let ApiQuery(query) = query?;
    let limit = cursor::limit(query.limit)?;
    let before: Option<Uuid> = cursor::decode(BATCHES_LIST, query.cursor.as_deref())?;
    // Batch ids are UUID v7: their order is the creation order.
    let items = sqlx::query_as!(
        BatchSummary,
        "SELECT batch_id, created_at, certificates, revocations, completed_at,
                deliveries_settled_at
         FROM export_batches
         WHERE $1::uuid IS NULL OR batch_id < $1
         ORDER BY batch_id DESC
         LIMIT $2",
        before,
        limit,
    )
    .fetch_all(&state.pool)
    .await
    .map_err(|e| Problem::internal(&e))?;
    let next_cursor = match items.last() {
        Some(last) if items.len() as i64 == limit => {
            Some(cursor::encode(BATCHES_LIST, &last.batch_id))
        }
        _ => None,
    };
    Ok(Json(Page { items, next_cursor }))
}

#[derive(Debug, Deserialize)]
pub struct BatchPath {
    pub batch_id: Uuid,
}

/// One file of a batch, as its BatchFileWritten event (and so the manifest) states it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchFile {
    pub name: String,
    pub sha256: String,
    pub size: u64,
    pub content_type: &'static str,
}

/// One item of a batch and what became of it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchItemOutcome {
    pub certificate_id: CertificateId,
    /// `certificate` (an approval to record), `revocation` (a correction) or `refused` (selected
    /// but not exportable; see `reason`).
    pub kind: &'static str,
    /// `delivered`, `failed` (a rule error: waits for the registrar), `retrying` (the next run tries
    /// again: it failed, or a run deferred it because Ladok as a whole had failed), `pending` (not
    /// tried yet, or re-delivery requested) or `not_delivered` (refused).
    pub ladok: &'static str,
    pub ladok_merit_uid: Option<String>,
    /// Our failure or refusal code, e.g. `unavailable`, `rule_error`, `holder_erased`.
    pub reason: Option<String>,
    /// Ladok's error group, when Ladok named one.
    pub felgrupp: Option<String>,
    /// While runs fail to deliver it: when the first of them recorded the failure.
    pub waiting_since: Option<DateTime<Utc>>,
    /// Runs that failed to deliver it since (tried and failed, or deferred); 0 when not waiting.
    pub attempts: u32,
}

/// Counts of a batch's items by outcome.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct BatchCounts {
    pub certificates: usize,
    pub revocations: usize,
    pub refused: usize,
    pub files: usize,
    pub delivered: usize,
    pub failed: usize,
    pub retrying: usize,
    pub pending: usize,
}

/// A batch as its stream tells it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchDetail {
    pub batch_id: Uuid,
    pub created_at: DateTime<Utc>,
    /// Every file is written, the manifest last: the folder is final.
    pub completed: bool,
    /// Who acknowledged the batch, if anyone did.
    pub acknowledged_by: Option<String>,
    pub counts: BatchCounts,
    /// The files in the order they were written (the manifest last).
    pub files: Vec<BatchFile>,
    pub items: Vec<BatchItemOutcome>,
}

/// The batch's state (404 when there is no such batch).
async fn load(state: &AppState, batch_id: Uuid) -> Result<Arc<BatchState>, Problem> {
    let (batch, _) = state.commands.load_batch(BatchId::new(batch_id)).await?;
    if batch.created.is_none() {
        return Err(batch_not_found());
    }
    Ok(batch)
}

fn detail(batch_id: Uuid, batch: &BatchState) -> BatchDetail {
    let order = &batch.file_order;
    let created = batch.created.as_ref().expect("checked by load");
    let mut counts = BatchCounts {
        certificates: created.certificates.len(),
        revocations: created.revocations.len(),
        refused: created.refused.len(),
        files: order.len(),
        ..BatchCounts::default()
    };
    let mut items = Vec::new();
    let taken = created
        .certificates
        .iter()
        .map(|i| (i, "certificate"))
        .chain(created.revocations.iter().map(|i| (i, "revocation")));
    for (item, kind) in taken {
        let id = item.certificate_id;
        let failed = batch.failed.get(&id);
        let waiting = batch.waiting.get(&id);
        let ladok = match (batch.delivered.get(&id), failed, waiting) {
            (Some(_), _, _) => "delivered",
            (None, Some(f), _) if f.retryable => "retrying",
            (None, Some(_), _) => "failed",
            // Deferred: not tried because Ladok had failed in that run.
            (None, None, Some(_)) => "retrying",
            (None, None, None) => "pending",
        };
        match ladok {
            "delivered" => counts.delivered += 1,
            "retrying" => counts.retrying += 1,
            "failed" => counts.failed += 1,
            _ => counts.pending += 1,
        }
        items.push(BatchItemOutcome {
            certificate_id: id,
            kind,
            ladok,
            ladok_merit_uid: batch.delivered.get(&id).cloned(),
            reason: waiting
                .map(|w| w.reason.clone())
                .or_else(|| failed.map(|f| f.reason.clone())),
            felgrupp: failed.and_then(|f| f.felgrupp.clone()),
            waiting_since: waiting.map(|w| w.since),
            attempts: waiting.map_or(0, |w| w.attempts),
        });
    }
    for refused in &created.refused {
        items.push(BatchItemOutcome {
            certificate_id: refused.certificate_id,
            kind: "refused",
            ladok: "not_delivered",
            ladok_merit_uid: None,
            reason: Some(refused.reason.clone()),
            felgrupp: None,
            waiting_since: None,
            attempts: 0,
        });
    }
    let files = order
        .iter()
        .filter_map(|name| {
            batch.written.get(name).map(|(sha256, size)| BatchFile {
                name: name.clone(),
                sha256: sha256.clone(),
                size: *size,
                content_type: content_type(name),
            })
        })
        .collect();
    BatchDetail {
        batch_id,
        created_at: created.created_at,
        completed: batch.completed,
        acknowledged_by: batch.acknowledged_by.clone(),
        counts,
        files,
        items,
    }
}

/// `GET /exports/batches/{batch_id}` (registrar): the batch's files (as the manifest lists them),
/// counts and every item's delivery outcome (`404 batch_not_found`).
#[utoipa::path(
    get,
    path = "/exports/batches/{batch_id}",
    tag = "registrar",
    params(("batch_id" = Uuid, Path, description = "The batch")),
    responses((status = 200, description = "The batch, its files and its delivery outcomes", body = BatchDetail))
)]
pub async fn show(
    caller: Caller,
    State(state): State<AppState>,
    path: Result<ApiPath<BatchPath>, Problem>,
) -> Result<Json<BatchDetail>, Problem> {
    registrar_only(&caller)?;
    let ApiPath(path) = path?;
    let batch = load(&state, path.batch_id).await?;
    Ok(Json(detail(path.batch_id, &batch)))
}

mod actions;
mod files;

pub use actions::*;
pub use files::*;
