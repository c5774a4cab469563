//! The registrar's actions on batches (acknowledge, re-deliver) and an export run now, holding the
//! export lock like the worker.

use super::*;

/// A registrar's action on a batch: `command` turns the batch as it is into the command to run (none:
/// nothing to do, answered at once), which runs holding the export lock, so it never races the
/// worker's steps (which expect the exact version they read). Answers the batch afterwards and the
/// events recorded.
async fn act(
    state: &AppState,
    caller: &Caller,
    meta: &CommandMeta,
    path: Result<ApiPath<BatchPath>, Problem>,
    command: impl FnOnce(&BatchState) -> Option<BatchCommand>,
) -> Result<(BatchDetail, Vec<BatchEvent>), Problem> {
    registrar_only(caller)?;
    let ApiPath(path) = path?;
    let batch = load(state, path.batch_id).await?;
    let Some(command) = command(&batch) else {
        return Ok((detail(path.batch_id, &batch), Vec::new()));
    };
    let ctx = meta.context(&state.pool, caller).await?;
    let lock = ExportLock::try_acquire(&state.pool)
        .await
        .map_err(|e| Problem::internal(&e))?
        .ok_or_else(export_running)?;
    let handled = state
        .commands
        .batch(BatchId::new(path.batch_id), command, &ctx, Write::default())
        .await;
    lock.release().await;
    match handled {
        Ok(handled) => Ok((detail(path.batch_id, &handled.state), handled.events)),
        // Rare: the handler decides on the state under the lock and retries once.
        Err(crate::app::CommandError::Conflict { .. }) => Err(Problem::new(
            StatusCode::CONFLICT,
            "concurrent_change",
            "the batch changed meanwhile; reload it and try again",
        )),
        Err(e) => Err(e.into()),
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
    let by = caller.subject.clone();
    let (batch, _) = act(&state, &caller, &meta, path, |batch| {
        // Acknowledged already: answered as it is.
        batch
            .acknowledged_by
            .is_none()
            .then_some(BatchCommand::Acknowledge { by })
    })
    .await?;
    Ok(Json(batch))
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
    let by = caller.subject.clone();
    let (batch, events) = act(&state, &caller, &meta, path, |batch| {
        // Nothing failed for good: nothing to queue, no event, no wait for a run's lock. Under the
        // lock the batch decides again which items failed for good.
        (!failed_for_good(batch).is_empty()).then_some(BatchCommand::RequestRedelivery { by })
    })
    .await?;
    let certificate_ids = events
        .into_iter()
        .find_map(|e| match e {
            BatchEvent::RedeliveryRequested(r) => Some(r.certificate_ids),
            _ => None,
        })
        .unwrap_or_default();
    Ok(Json(Redelivery {
        certificate_ids,
        batch,
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
