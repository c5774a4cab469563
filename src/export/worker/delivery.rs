//! The delivery phase of a run: the next certificate of a complete batch without a
//! CertificateDelivered event goes to Ladok, and the outcome is appended to the batch's stream.
//!
//! How a certificate reaches Ladok exactly once: `merit_writes.rs`.

use uuid::Uuid;

use super::batch;
use super::ladok::{LadokClient, LadokError};
use super::merit_writes::Stop;
use super::{ExportLock, ExportWorker, Step, WorkerError, overtaken_on_conflict, step_id};
use crate::domain::batch::{
    BatchCommand, CertificateDelivered, DeliveriesDeferred, DeliveryFailed,
};
use crate::domain::{BatchId, CertificateId};

/// Marks `batch_id`'s deliveries settled (off the worker's list) after the worker read its stream at
/// `read_version` and found nothing left to deliver. Returns whether it did.
///
/// On the lock's own session, so a worker that lost its lock changes nothing
/// ([`WorkerError::LockLost`]); and only while the stream is as read: a re-delivery request appended
/// since (it sets the column back to NULL with its event) must not be overwritten. Public only so
/// that `tests/it/safety_nets.rs` can put a registrar's request between the read and this update.
#[doc(hidden)]
pub async fn settle_deliveries(
    lock: &mut ExportLock,
    batch_id: BatchId,
    read_version: i32,
) -> Result<bool, WorkerError> {
    let settled = sqlx::query!(
        "UPDATE export_batches SET deliveries_settled_at = now() \
         WHERE batch_id = $1 AND NOT EXISTS \
           (SELECT 1 FROM events WHERE stream_id = $2 AND version > $3)",
        batch_id.as_uuid(),
        batch_id.stream_id(),
        read_version,
    )
    .execute(lock.connection())
    .await
    .map_err(|_| WorkerError::LockLost)?;
    Ok(settled.rows_affected() == 1)
}

impl ExportWorker {
    /// Complete batches with deliveries still open, oldest first.
    async fn unsettled_batches(&self) -> Result<Vec<BatchId>, WorkerError> {
        // Served by the partial index export_batches_undelivered_idx.
        let batches = sqlx::query_scalar!(
            "SELECT batch_id FROM export_batches \
             WHERE completed_at IS NOT NULL AND deliveries_settled_at IS NULL ORDER BY batch_id",
        )
        .fetch_all(self.store().pool())
        .await?;
        Ok(batches.into_iter().map(BatchId::new).collect())
    }

    /// The certificates of the loaded batch still to deliver: neither delivered nor refused by a
    /// Ladok rule (those wait for the registrar).
    fn open_certificates(&self) -> Result<Vec<CertificateId>, WorkerError> {
        let state = &self.state.as_ref().expect("loaded by the caller").1;
        let created = state.created.as_ref().ok_or(WorkerError::Overtaken)?;
        let items = created.certificates.iter().chain(&created.revocations);
        Ok(items
            .map(|item| item.certificate_id)
            .filter(|id| !state.delivered.contains_key(id))
            .filter(|id| state.failed.get(id).is_none_or(|f| f.retryable))
            .collect())
    }

    /// Delivers the next undelivered certificate of the oldest complete batch that has one.
    pub(super) async fn deliver_next(
        &mut self,
        lock: &mut ExportLock,
    ) -> Result<Step, WorkerError> {
        for batch_id in self.unsettled_batches().await? {
            self.batch_state(batch_id).await?;
            let open = self.open_certificates()?;
            let state = &self.state.as_ref().expect("loaded above").1;
            let created = state.created.as_ref().ok_or(WorkerError::Overtaken)?;
            let Some(certificate_id) = open.iter().copied().find(|id| !self.attempted.contains(id))
            else {
                if open.is_empty() {
                    // Everything delivered or refused by a rule: nothing left for the worker.
                    settle_deliveries(lock, batch_id, state.version).await?;
                }
                continue;
            };
            if self.certificates.as_ref().map(|(id, _)| *id) != Some(batch_id) {
                let certificates = batch::load_certificates(self.store(), created).await?;
                self.certificates = Some((batch_id, certificates));
            }
            self.attempted.insert(certificate_id);
            return self.deliver(lock, batch_id, certificate_id).await;
        }
        Ok(Step::Idle)
    }

    /// Delivers one certificate of `batch_id`, whose certificates are loaded, and appends the
    /// outcome.
    async fn deliver(
        &mut self,
        lock: &mut ExportLock,
        batch_id: BatchId,
        certificate_id: CertificateId,
    ) -> Result<Step, WorkerError> {
        let Some(certificate) = self
            .certificates
            .as_ref()
            .and_then(|(_, all)| all.iter().find(|c| c.certificate_id() == certificate_id))
            .cloned()
        else {
            // Its source events cannot be rebuilt (the batch withheld it from its files): recorded
            // on this certificate for the registrar, and the others go on.
            tracing::warn!(%batch_id, %certificate_id, "certificate withheld: not delivered");
            return self
                .record_failure(
                    batch_id,
                    certificate_id,
                    "source_missing",
                    None,
                    false,
                    false,
                )
                .await;
        };
        if self.ladok.is_none() {
            let config = self.config.ladok.clone().expect("checked by step");
            self.ladok = Some(LadokClient::new(config)?);
        }
        let outcome = if certificate.is_revoked() {
            self.withdraw(lock, batch_id, &certificate).await
        } else {
            self.record(lock, batch_id, &certificate).await
        };
        let version = self.batch_state(batch_id).await?.version;
        match outcome {
            Ok(ladok_merit_uid) => {
                let command = BatchCommand::RecordDelivered(CertificateDelivered {
                    certificate_id,
                    ladok_merit_uid,
                });
                let command_id = step_id(batch_id, &format!("delivered:{certificate_id}"));
                self.record_step(batch_id, version, command, command_id, None)
                    .await
                    .map_err(overtaken_on_conflict)?;
                tracing::info!(%batch_id, %certificate_id, "certificate delivered to Ladok");
                Ok(Step::Delivered {
                    batch_id,
                    certificate_id,
                })
            }
            Err(Stop::Worker(e)) => Err(e),
            Err(Stop::InFlight) => {
                tracing::info!(%batch_id, %certificate_id,
                    "an earlier worker's Ladok write may still be in flight; left for a later run");
                Ok(Step::Deferred {
                    batch_id,
                    certificates: 1,
                })
            }
            Err(Stop::Revoked) => {
                tracing::info!(%batch_id, %certificate_id,
                    "certificate revoked before its merit was created: not delivered");
                self.record_failure(batch_id, certificate_id, "revoked", None, false, false)
                    .await
            }
            Err(Stop::Ladok(e)) => self.failed(batch_id, certificate_id, e, false).await,
            Err(Stop::WriteRefused(e)) => self.failed(batch_id, certificate_id, e, true).await,
        }
    }

    /// Records Ladok's failure of a delivery; `settles_write`: see
    /// [`DeliveryFailed::settles_write`].
    async fn failed(
        &mut self,
        batch_id: BatchId,
        certificate_id: CertificateId,
        e: LadokError,
        settles_write: bool,
    ) -> Result<Step, WorkerError> {
        tracing::warn!(%batch_id, %certificate_id, reason = e.reason_code(),
            felgrupp = e.felgrupp().unwrap_or(""), "delivery to Ladok failed");
        if e.stops_the_run() {
            self.ladok_down = Some(e.reason_code());
        }
        let felgrupp = e.felgrupp().map(str::to_owned);
        self.record_failure(
            batch_id,
            certificate_id,
            e.reason_code(),
            felgrupp,
            e.retryable(),
            settles_write,
        )
        .await
    }

    /// Appends a DeliveryFailed. Every failure is its own fact: a fresh command id.
    async fn record_failure(
        &mut self,
        batch_id: BatchId,
        certificate_id: CertificateId,
        reason: &'static str,
        felgrupp: Option<String>,
        retryable: bool,
        settles_write: bool,
    ) -> Result<Step, WorkerError> {
        let version = self.batch_state(batch_id).await?.version;
        let command = BatchCommand::RecordFailure(DeliveryFailed {
            certificate_id,
            reason: reason.to_owned(),
            felgrupp,
            retryable,
            settles_write,
        });
        self.record_step(batch_id, version, command, Uuid::now_v7(), None)
            .await
            .map_err(overtaken_on_conflict)?;
        Ok(Step::DeliveryFailed {
            batch_id,
            certificate_id,
            reason,
        })
    }

    /// After Ladok as a whole failed in this run: records, for the next batch not yet seen, that its
    /// open certificates this run did not try wait for the next run (one DeliveriesDeferred per
    /// batch and run). `Idle` once every batch is seen.
    pub(super) async fn defer_open(&mut self, reason: &'static str) -> Result<Step, WorkerError> {
        for batch_id in self.unsettled_batches().await? {
            if !self.deferred.insert(batch_id) {
                continue;
            }
            self.batch_state(batch_id).await?;
            let certificate_ids: Vec<CertificateId> = self
                .open_certificates()?
                .into_iter()
                .filter(|id| !self.attempted.contains(id))
                .collect();
            if certificate_ids.is_empty() {
                continue;
            }
            let version = self.state.as_ref().expect("loaded above").1.version;
            let certificates = certificate_ids.len();
            let command = BatchCommand::Defer(DeliveriesDeferred {
                certificate_ids,
                reason: reason.to_owned(),
            });
            // Every run's deferral is its own fact: a fresh command id.
            self.record_step(batch_id, version, command, Uuid::now_v7(), None)
                .await
                .map_err(overtaken_on_conflict)?;
            return Ok(Step::Deferred {
                batch_id,
                certificates,
            });
        }
        Ok(Step::Idle)
    }
}
