//! The delivery phase of a run: the next certificate of a complete batch without a
//! CertificateDelivered event goes to Ladok, and the outcome is appended to the batch's stream.
//!
//! # Exactly once without a field for our id
//! Ladok's `AnnanMerit` has no field for an external reference, so a merit is recognised as ours by
//! its marker (`ladok::merit`), and the log records every write around the call:
//! 1. `DeliveryStarted` is appended *through the export lock's own session* before a write is sent
//!    (the fence: a worker whose lock session died cannot record it, and so never sends);
//! 2. the write is sent once (never retried blindly: its answer may be lost after it took effect);
//! 3. Ladok's answer is recorded at once: `MeritCreated` (the merit's `Uid`), then
//!    `CertificateDelivered` after the attestation (or the withdrawal).
//!
//! Whoever resumes a certificate with a write in doubt (started, and not settled by a later event)
//! reads the student's merits, every page, and takes the one carrying the marker instead of
//! creating another. A write whose worker died before any outcome was recorded may still be in
//! flight: it is left alone until [`LadokConfig::in_flight_bound`] has passed since it was started.
//!
//! Before anything is written, the student record Ladok returns for the portfolio's Ladok UID must
//! be that student: the same UID and, where both are known, the same identity number.

use chrono::Utc;
use uuid::Uuid;

use super::batch;
use super::events::{
    self, BatchEvent, CertificateDelivered, DeliveriesDeferred, DeliveryFailed, DeliveryStarted,
    MeritCreated,
};
use super::ladok::merit::{self, MeritContent};
use super::ladok::{LadokClient, LadokConfig, LadokError, LadokMerit};
use super::{ExportLock, ExportWorker, Step, WorkerError, overtaken_on_conflict, step_id};
use crate::domain::ids::CertificateId;
use crate::export::{BatchId, ExportCertificate};
use crate::store::ExpectedVersion;

/// Why one certificate's delivery stopped.
enum Stop {
    /// The run must stop (lock lost, overtaken, database).
    Worker(WorkerError),
    /// Ladok's answer, recorded on the certificate.
    Ladok(LadokError),
    /// Another worker's write for it may still be in flight: left for a later run.
    InFlight,
}

impl From<WorkerError> for Stop {
    fn from(e: WorkerError) -> Self {
        Stop::Worker(e)
    }
}

impl From<LadokError> for Stop {
    fn from(e: LadokError) -> Self {
        Stop::Ladok(e)
    }
}

impl From<sqlx::Error> for Stop {
    fn from(e: sqlx::Error) -> Self {
        Stop::Worker(e.into())
    }
}

impl ExportWorker {
    /// Complete batches with deliveries still open, oldest first.
    async fn unsettled_batches(&self) -> Result<Vec<BatchId>, WorkerError> {
        let batches: Vec<Uuid> = sqlx::query_scalar(
            // Served by the partial index export_batches_undelivered_idx.
            "SELECT batch_id FROM export_batches \
             WHERE completed_at IS NOT NULL AND deliveries_settled_at IS NULL ORDER BY batch_id",
        )
        .fetch_all(self.store.pool())
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
                    // Everything delivered or refused by a rule: nothing left for the worker. On
                    // the lock's own session (a worker that lost its lock changes nothing), and only
                    // while the stream is as read: a re-delivery request appended since (it sets the
                    // column back to NULL with its event) must not be overwritten.
                    sqlx::query(
                        "UPDATE export_batches SET deliveries_settled_at = now() \
                         WHERE batch_id = $1 AND NOT EXISTS \
                           (SELECT 1 FROM events WHERE stream_id = $2 AND version > $3)",
                    )
                    .bind(batch_id.as_uuid())
                    .bind(events::stream_id(batch_id))
                    .bind(state.version)
                    .execute(lock.connection())
                    .await
                    .map_err(|_| WorkerError::LockLost)?;
                }
                continue;
            };
            if self.certificates.as_ref().map(|(id, _)| *id) != Some(batch_id) {
                let certificates = batch::load_certificates(&self.store, created).await?;
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
        let stream = events::stream_id(batch_id);
        let Some(certificate) = self
            .certificates
            .as_ref()
            .and_then(|(_, all)| all.iter().find(|c| c.certificate_id() == certificate_id))
            .cloned()
        else {
            // Its source events cannot be rebuilt (the batch withheld it from its files): recorded
            // on this certificate for the registrar, and the others go on.
            tracing::warn!(%batch_id, %certificate_id, "certificate withheld: not delivered");
            let version = self.batch_state(batch_id).await?.version;
            let event = BatchEvent::DeliveryFailed(DeliveryFailed {
                certificate_id,
                reason: "source_missing".to_owned(),
                felgrupp: None,
                retryable: false,
            });
            self.append(&stream, version, event, Uuid::now_v7()).await?;
            return Ok(Step::DeliveryFailed {
                batch_id,
                certificate_id,
                reason: "source_missing",
            });
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
                let event = BatchEvent::CertificateDelivered(CertificateDelivered {
                    certificate_id,
                    ladok_merit_uid,
                });
                let command_id = step_id(batch_id, &format!("delivered:{certificate_id}"));
                self.append(&stream, version, event, command_id).await?;
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
            Err(Stop::Ladok(e)) => {
                tracing::warn!(%batch_id, %certificate_id, reason = e.reason_code(),
                    felgrupp = e.felgrupp().unwrap_or(""), "delivery to Ladok failed");
                if e.stops_the_run() {
                    self.ladok_down = Some(e.reason_code());
                }
                let event = BatchEvent::DeliveryFailed(DeliveryFailed {
                    certificate_id,
                    reason: e.reason_code().to_owned(),
                    felgrupp: e.felgrupp().map(str::to_owned),
                    retryable: e.retryable(),
                });
                // Every failure is its own fact: a fresh command id.
                self.append(&stream, version, event, Uuid::now_v7()).await?;
                Ok(Step::DeliveryFailed {
                    batch_id,
                    certificate_id,
                    reason: e.reason_code(),
                })
            }
        }
    }

    fn client(&self) -> &LadokClient {
        self.ladok.as_ref().expect("built by deliver")
    }

    fn ladok_config(&self) -> &LadokConfig {
        self.client().config()
    }

    /// Ladok's student for the certificate's Ladok UID, checked to be the certificate's student.
    async fn checked_student(&self, certificate: &ExportCertificate) -> Result<String, Stop> {
        let uid = certificate.student_uid().to_string();
        let student = self.client().student(&uid).await?;
        let same_number = match (certificate.holder(), &student.personnummer) {
            (Some(holder), Some(number)) => holder.identity_number.as_str() == number,
            // An erased holder, or a Ladok that did not say: the UID alone decides.
            _ => true,
        };
        if !student.uid.eq_ignore_ascii_case(&uid) || !same_number {
            return Err(LadokError::IdentityMismatch.into());
        }
        Ok(uid)
    }

    /// Whether a write for `certificate_id` started by another worker may still be in flight.
    fn write_in_flight(&self, batch_id: BatchId, certificate_id: CertificateId) -> bool {
        let Some((id, state)) = &self.state else {
            return false;
        };
        let Some(started) = state.in_doubt.get(&certificate_id) else {
            return false;
        };
        let bound = chrono::Duration::from_std(self.ladok_config().in_flight_bound())
            .unwrap_or(chrono::Duration::MAX);
        *id == batch_id
            && !started.ended
            && !self.own_writes.contains(&certificate_id)
            && Utc::now() - started.at < bound
    }

    /// The certificate's merit as Ladok has it now, if any: by the UID the log recorded, else, when
    /// a write is in doubt or `always_look` is set, by its marker among all the student's merits.
    async fn find_merit(
        &self,
        batch_id: BatchId,
        certificate: &ExportCertificate,
        student_uid: &str,
        always_look: bool,
    ) -> Result<Option<LadokMerit>, Stop> {
        let certificate_id = certificate.certificate_id();
        let state = &self.state.as_ref().expect("loaded by the caller").1;
        if let Some(uid) = state.merits.get(&certificate_id)
            && let Some(found) = self.client().merit(uid).await?
        {
            return Ok(Some(found));
        }
        if !always_look && !state.in_doubt.contains_key(&certificate_id) {
            return Ok(None);
        }
        if self.write_in_flight(batch_id, certificate_id) {
            return Err(Stop::InFlight);
        }
        let ours: Vec<LadokMerit> = self
            .client()
            .merits(student_uid)
            .await?
            .into_iter()
            .filter(|m| merit::is_ours(&m.body, certificate_id))
            .collect();
        if ours.len() > 1 {
            // Not ours to delete: the registrar sees the certificate delivered to the first and
            // the log says how many there were.
            tracing::warn!(%certificate_id, merits = ours.len(),
                "Ladok holds more than one merit with this certificate's marker");
        }
        Ok(ours.into_iter().next())
    }

    /// Records an approved certificate: the merit created (once), corrected when it says something
    /// else, and attested with the program's decision. Returns the merit's UID.
    async fn record(
        &mut self,
        lock: &mut ExportLock,
        batch_id: BatchId,
        certificate: &ExportCertificate,
    ) -> Result<String, Stop> {
        let certificate_id = certificate.certificate_id();
        let student_uid = self.checked_student(certificate).await?;
        let content = MeritContent::new(certificate, &self.config.settings);
        let merit = match self
            .find_merit(batch_id, certificate, &student_uid, false)
            .await?
        {
            Some(found) => found,
            None => {
                self.start_write(lock, batch_id, certificate_id, "create", None)
                    .await?;
                let created = self
                    .client()
                    .create_merit(&student_uid, &content.create_body())
                    .await?;
                let event = BatchEvent::MeritCreated(MeritCreated {
                    certificate_id,
                    ladok_merit_uid: created.uid.clone(),
                });
                let version = self.batch_state(batch_id).await?.version;
                let command_id = step_id(batch_id, &format!("merit:{certificate_id}"));
                self.append(&events::stream_id(batch_id), version, event, command_id)
                    .await?;
                self.batch_state(batch_id).await?;
                created
            }
        };
        if merit.attested {
            if content.differs_from(&merit.body) {
                self.start_write(lock, batch_id, certificate_id, "correct", Some(&merit.uid))
                    .await?;
                let body = content.correction_body(merit.last_saved.as_deref());
                self.client().correct(&merit.uid, &body).await?;
            }
            return Ok(merit.uid);
        }
        self.start_write(lock, batch_id, certificate_id, "attest", Some(&merit.uid))
            .await?;
        let body = merit::attest_body(&merit.uid, certificate);
        self.client().attest(&body).await?;
        Ok(merit.uid)
    }

    /// Withdraws a revoked certificate's merit with the program's decision. Returns its UID.
    async fn withdraw(
        &mut self,
        lock: &mut ExportLock,
        batch_id: BatchId,
        certificate: &ExportCertificate,
    ) -> Result<String, Stop> {
        let certificate_id = certificate.certificate_id();
        let student_uid = self.checked_student(certificate).await?;
        let found = self
            .find_merit(batch_id, certificate, &student_uid, true)
            .await?;
        let state = &self.state.as_ref().expect("loaded above").1;
        let Some(merit) = found else {
            // A withdrawal that was sent and is now gone from the student's merits took effect.
            return match state.merits.get(&certificate_id) {
                Some(uid) if state.in_doubt.contains_key(&certificate_id) => Ok(uid.clone()),
                _ => Err(LadokError::MeritNotFound.into()),
            };
        };
        let decision = merit::withdrawal_decision(certificate).expect("a revoked certificate");
        self.start_write(lock, batch_id, certificate_id, "withdraw", Some(&merit.uid))
            .await?;
        self.client().withdraw(&merit.uid, &decision).await?;
        Ok(merit.uid)
    }

    /// Records that a write is about to be sent, through the lock's own session: if that session is
    /// gone, so is the lock, and nothing is sent.
    async fn start_write(
        &mut self,
        lock: &mut ExportLock,
        batch_id: BatchId,
        certificate_id: CertificateId,
        operation: &str,
        ladok_merit_uid: Option<&str>,
    ) -> Result<(), Stop> {
        let version = self.batch_state(batch_id).await?.version;
        let event = BatchEvent::DeliveryStarted(DeliveryStarted {
            certificate_id,
            operation: operation.to_owned(),
            ladok_merit_uid: ladok_merit_uid.map(str::to_owned),
        })
        .to_new_event();
        let metadata = self.metadata(Uuid::now_v7());
        let stream = events::stream_id(batch_id);
        let store = &self.store;
        let fenced = async {
            let mut tx = sqlx::Connection::begin(lock.connection()).await?;
            let appended = store
                .append_in(
                    &mut tx,
                    &stream,
                    ExpectedVersion::Exact(version),
                    &[event],
                    &metadata,
                )
                .await;
            match appended {
                Ok(_) => tx.commit().await.map(|()| Ok(())),
                Err(e) => Ok(Err(e)),
            }
        }
        .await;
        match fenced {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(match overtaken_on_conflict(e) {
                    WorkerError::Append(_) => WorkerError::LockLost,
                    other => other,
                }
                .into());
            }
            Err(_) => return Err(WorkerError::LockLost.into()),
        }
        self.store.announce();
        self.own_writes.insert(certificate_id);
        self.batch_state(batch_id).await?;
        Ok(())
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
            let event = BatchEvent::DeliveriesDeferred(DeliveriesDeferred {
                certificate_ids,
                reason: reason.to_owned(),
            });
            // Every run's deferral is its own fact: a fresh command id.
            self.append(&events::stream_id(batch_id), version, event, Uuid::now_v7())
                .await?;
            return Ok(Step::Deferred {
                batch_id,
                certificates,
            });
        }
        Ok(Step::Idle)
    }
}
