//! The registrar's actions on batches (acknowledge, re-deliver) and an export run now, holding the
//! export lock like the worker.

use super::*;

/// Appends `event` to the batch stream under the export lock (so it never races the worker).
async fn append_locked(
    state: &AppState,
    caller: &Caller,
    meta: &CommandMeta,
    batch_id: Uuid,
    version: i32,
    event: BatchEvent,
    settle_again: bool,
) -> Result<(), Problem> {
    let pool = &state.pool;
    let ctx = meta.context(pool, caller).await?;
    let lock = ExportLock::try_acquire(pool)
        .await
        .map_err(|e| Problem::internal(&e))?
        .ok_or_else(export_running)?;
    let metadata = Metadata {
        actor_id: ctx.actor_id,
        actor_role: ctx.role,
        correlation_id: ctx.correlation_id,
        causation_id: None,
        command_id: ctx.command_id,
    };
    let result = async {
        let mut tx = pool.begin().await?;
        if settle_again {
            // Back on the worker's delivery list.
            sqlx::query(
                "UPDATE export_batches SET deliveries_settled_at = NULL WHERE batch_id = $1",
            )
            .bind(batch_id)
            .execute(&mut *tx)
            .await?;
        }
        let appended = state
            .commands
            .store()
            .append_in(
                &mut tx,
                &events::stream_id(BatchId::new(batch_id)),
                ExpectedVersion::Exact(version),
                &[event.to_new_event()],
                &metadata,
            )
            .await;
        match appended {
            Ok(_) => {
                tx.commit().await?;
                state.commands.store().announce();
                Ok(Ok(()))
            }
            Err(e) => Ok(Err(e)),
        }
    }
    .await;
    lock.release().await;
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(crate::store::AppendError::Conflict { .. })) => Err(Problem::new(
            StatusCode::CONFLICT,
            "concurrent_change",
            "the batch changed meanwhile; reload it and try again",
        )),
        Ok(Err(e)) => Err(Problem::internal(&e)),
        Err(e) => Err(Problem::internal(&e as &sqlx::Error)),
    }
}

/// `POST /exports/batches/{batch_id}/acknowledge` (registrar): records that the registrar took the
/// batch (BatchAcknowledged). Idempotent: an acknowledged batch is answered as it is.
#[utoipa::path(
    post,
    path = "/exports/batches/{batch_id}/acknowledge",
    tag = "registrar",
    params(("batch_id" = Uuid, Path, description = "The batch")),
    responses((status = 200, description = "The acknowledged batch", body = BatchDetail))
)]
pub async fn acknowledge(
    caller: Caller,
    State(state): State<AppState>,
    meta: CommandMeta,
    path: Result<ApiPath<BatchPath>, Problem>,
) -> Result<Json<BatchDetail>, Problem> {
    registrar_only(&caller)?;
    let ApiPath(path) = path?;
    let (batch, _) = load(&state, path.batch_id).await?;
    if batch.acknowledged_by.is_none() {
        let event = BatchEvent::BatchAcknowledged(BatchAcknowledged {
            by: caller.subject.clone(),
        });
        append_locked(
            &state,
            &caller,
            &meta,
            path.batch_id,
            batch.version,
            event,
            false,
        )
        .await?;
    }
    let (batch, order) = load(&state, path.batch_id).await?;
    Ok(Json(detail(path.batch_id, &batch, &order)))
}

/// What a re-delivery request queued.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Redelivery {
    /// The items queued for the next run (empty: nothing had failed for good).
    pub certificate_ids: Vec<CertificateId>,
    pub batch: BatchDetail,
}

/// `POST /exports/batches/{batch_id}/redeliver` (registrar): queues every item whose delivery failed
/// for good (a Ladok rule error) for the next export run (RedeliveryRequested). Answers the queued
/// ids (none: nothing to do, no event).
#[utoipa::path(
    post,
    path = "/exports/batches/{batch_id}/redeliver",
    tag = "registrar",
    params(("batch_id" = Uuid, Path, description = "The batch")),
    responses((status = 200, description = "The items queued for the next run, and the batch", body = Redelivery))
)]
pub async fn redeliver(
    caller: Caller,
    State(state): State<AppState>,
    meta: CommandMeta,
    path: Result<ApiPath<BatchPath>, Problem>,
) -> Result<Json<Redelivery>, Problem> {
    registrar_only(&caller)?;
    let ApiPath(path) = path?;
    let (batch, _) = load(&state, path.batch_id).await?;
    let certificate_ids: Vec<CertificateId> = batch
        .failed
        .iter()
        .filter(|(id, f)| !f.retryable && !batch.delivered.contains_key(*id))
        .map(|(id, _)| *id)
        .collect();
    if !certificate_ids.is_empty() {
        let event = BatchEvent::RedeliveryRequested(RedeliveryRequested {
            by: caller.subject.clone(),
            certificate_ids: certificate_ids.clone(),
        });
        append_locked(
            &state,
            &caller,
            &meta,
            path.batch_id,
            batch.version,
            event,
            true,
        )
        .await?;
    }
    let (batch, order) = load(&state, path.batch_id).await?;
    Ok(Json(Redelivery {
        certificate_ids,
        batch: detail(path.batch_id, &batch, &order),
    }))
}

/// What an on-demand run did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunSummary {
    /// Batches completed by the run (including one it resumed).
    pub completed: Vec<Uuid>,
    pub files_written: usize,
    pub delivered: usize,
    pub failed: usize,
}

/// `POST /exports/run` (registrar): one export run now: new batches, unfinished files, Ladok
/// deliveries. `409 export_running` when another worker holds the export lock.
#[utoipa::path(
    post,
    path = "/exports/run",
    tag = "registrar",
    responses((status = 200, description = "What the run did", body = RunSummary))
)]
pub async fn run(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<RunSummary>, Problem> {
    registrar_only(&caller)?;
    let config = config(&state)?;
    match run_export(state.commands.store(), &config).await {
        Ok(RunOutcome::Busy) => Err(export_running()),
        Ok(RunOutcome::Ran {
            completed,
            files_written,
            delivered,
            failed,
        }) => Ok(Json(RunSummary {
            completed: completed.iter().map(|b| *b.as_uuid()).collect(),
            files_written,
            delivered,
            failed,
        })),
        Err(e) => Err(Problem::internal(&e)),
    }
}
