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
//! Nothing is created without first looking for the merit: by the UID the log holds, else by its
//! marker among all the student's merits (every page). A write started and not settled by Ladok's
//! answer (`MeritCreated`, `CertificateDelivered`) may still be in flight until the bound it was
//! recorded with ([`LadokConfig::in_flight_bound`] of its writer: the writer sends only within its
//! request timeout of recording it, and the request lasts at most that again): until then nobody
//! writes for that certificate, whatever else was recorded about it.
//! An approval revoked after its batch took it gets no merit.
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
    /// Ladok's answer, or no answer, recorded on the certificate.
    Ladok(LadokError),
    /// A write Ladok refused with an answer, or that was never sent: it settles the write.
    WriteRefused(LadokError),
    /// Another worker's write for it may still be in flight: left for a later run.
    InFlight,
    /// Revoked after its batch took it: no merit is created; the revocation's batch withdraws any.
    Revoked,
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

impl Stop {
    /// The failure of a write: refused with an answer (settled), or without one (in doubt).
    fn of_write(e: LadokError) -> Self {
        match e {
            LadokError::Unavailable(_) => Stop::Ladok(e),
            refused => Stop::WriteRefused(refused),
        }
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
        let event = BatchEvent::DeliveryFailed(DeliveryFailed {
            certificate_id,
            reason: reason.to_owned(),
            felgrupp,
            retryable,
            settles_write,
        });
        self.append(&events::stream_id(batch_id), version, event, Uuid::now_v7())
            .await?;
        Ok(Step::DeliveryFailed {
            batch_id,
            certificate_id,
            reason,
        })
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

    /// The checked student's Ladok UID, once no earlier write for the certificate can still be in
    /// flight: what every delivery first makes sure of.
    async fn may_write_for(&self, certificate: &ExportCertificate) -> Result<String, Stop> {
        let student_uid = self.checked_student(certificate).await?;
        if self.write_in_flight(certificate.certificate_id()) {
            return Err(Stop::InFlight);
        }
        Ok(student_uid)
    }

    /// Whether a write for `certificate_id`, by any worker, may still be in flight: started, not
    /// settled by Ladok's answer, and its bound not passed (whatever was recorded about it since).
    fn write_in_flight(&self, certificate_id: CertificateId) -> bool {
        let state = &self.state.as_ref().expect("loaded by the caller").1;
        state
            .in_doubt
            .get(&certificate_id)
            .is_some_and(|started| Utc::now() < started.in_flight_until)
    }

    /// The certificate's merit as Ladok has it now, if any: by the UID the log recorded, else by
    /// its marker among all the student's merits. Nothing is ever created without this look: a
    /// merit whose UID we never learnt (a lost answer, a crash) or whose read fails (a wrong path)
    /// is still found by its marker.
    async fn find_merit(
        &self,
        certificate: &ExportCertificate,
        student_uid: &str,
    ) -> Result<Option<LadokMerit>, Stop> {
        let certificate_id = certificate.certificate_id();
        let state = &self.state.as_ref().expect("loaded by the caller").1;
        if let Some(uid) = state.merits.get(&certificate_id)
            && let Some(found) = self.client().merit(uid).await?
        {
            return Ok(Some(found));
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

    /// Whether the approval of `certificate_id` was revoked after its batch took it: its merit
    /// must then not be created (the revocation's own batch withdraws whatever exists).
    async fn revoked_since(&self, certificate_id: CertificateId) -> Result<bool, Stop> {
        let state = &self.state.as_ref().expect("loaded by the caller").1;
        let created = state.created.as_ref().ok_or(WorkerError::Overtaken)?;
        let Some(item) = created
            .certificates
            .iter()
            .find(|i| i.certificate_id == certificate_id)
        else {
            return Ok(false);
        };
        let id = certificate_id.to_string();
        let events = self
            .store
            .read_stream(&item.stream_id, 0)
            .await
            .map_err(WorkerError::from)?;
        Ok(events.iter().any(|e| {
            e.event_type == "CertificateRevoked"
                && e.payload.get("certificate_id").and_then(|v| v.as_str()) == Some(id.as_str())
        }))
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
        let student_uid = self.may_write_for(certificate).await?;
        let content = MeritContent::new(certificate, &self.config.settings);
        let merit = match self.find_merit(certificate, &student_uid).await? {
            Some(found) => found,
            None => {
                if self.revoked_since(certificate_id).await? {
                    return Err(Stop::Revoked);
                }
                let fenced = self
                    .start_write(lock, batch_id, certificate_id, "create", None)
                    .await?;
                self.still_fenced(fenced)?;
                let created = self
                    .client()
                    .create_merit(&student_uid, &content.create_body())
                    .await
                    .map_err(Stop::of_write)?;
                let event = BatchEvent::MeritCreated(MeritCreated {
                    certificate_id,
                    ladok_merit_uid: created.uid.clone(),
                });
                let version = self.batch_state(batch_id).await?.version;
                // The merit's UID in the id: a merit created again later (after the first was
                // deleted in Ladok) is another fact, not a repeat.
                let command_id =
                    step_id(batch_id, &format!("merit:{certificate_id}:{}", created.uid));
                self.append(&events::stream_id(batch_id), version, event, command_id)
                    .await?;
                self.batch_state(batch_id).await?;
                created
            }
        };
        if merit.attested {
            if content.differs_from(&merit.body) {
                let fenced = self
                    .start_write(lock, batch_id, certificate_id, "correct", Some(&merit.uid))
                    .await?;
                self.still_fenced(fenced)?;
                let body = content.correction_body(merit.last_saved.as_deref());
                self.client()
                    .correct(&merit.uid, &body)
                    .await
                    .map_err(Stop::of_write)?;
            }
            return Ok(merit.uid);
        }
        let fenced = self
            .start_write(lock, batch_id, certificate_id, "attest", Some(&merit.uid))
            .await?;
        self.still_fenced(fenced)?;
        let body = merit::attest_body(&merit.uid, certificate);
        self.client().attest(&body).await.map_err(Stop::of_write)?;
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
        let student_uid = self.may_write_for(certificate).await?;
        let found = self.find_merit(certificate, &student_uid).await?;
        let state = &self.state.as_ref().expect("loaded above").1;
        let Some(merit) = found else {
            // A withdrawal that was sent and is now gone from the student's merits took effect.
            return match state.merits.get(&certificate_id) {
                Some(uid) if state.in_doubt.contains_key(&certificate_id) => Ok(uid.clone()),
                _ => Err(LadokError::MeritNotFound.into()),
            };
        };
        let decision = merit::withdrawal_decision(certificate).expect("a revoked certificate");
        let fenced = self
            .start_write(lock, batch_id, certificate_id, "withdraw", Some(&merit.uid))
            .await?;
        self.still_fenced(fenced)?;
        self.client()
            .withdraw(&merit.uid, &decision)
            .await
            .map_err(Stop::of_write)?;
        Ok(merit.uid)
    }

    /// A write is sent only within its request timeout of being recorded as started: together
    /// with the request's own timeout that bounds how long it may be in flight
    /// ([`LadokConfig::in_flight_bound`]).
    fn still_fenced(&self, fenced: std::time::Instant) -> Result<(), Stop> {
        if fenced.elapsed() < self.ladok_config().timeout {
            Ok(())
        } else {
            // Not sent: settled, and retried by the next run.
            Err(Stop::WriteRefused(LadokError::Unavailable(
                "too late after the fence".to_owned(),
            )))
        }
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
    ) -> Result<std::time::Instant, Stop> {
        let version = self.batch_state(batch_id).await?.version;
        let bound = self.ladok_config().in_flight_bound();
        let event = BatchEvent::DeliveryStarted(DeliveryStarted {
            certificate_id,
            operation: operation.to_owned(),
            ladok_merit_uid: ladok_merit_uid.map(str::to_owned),
            in_flight_secs: bound.as_secs() + u64::from(bound.subsec_nanos() > 0),
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
        let fenced = std::time::Instant::now();
        self.store.announce();
        // The cached state is brought up to date by the next append's read, after the request.
        Ok(fenced)
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
