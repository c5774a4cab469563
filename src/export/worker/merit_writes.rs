//! One certificate's Ladok side: the student checked, the merit looked for, and every write fenced
//! and recorded around the call. The delivery phase (`delivery.rs`) calls [`ExportWorker::record`]
//! and [`ExportWorker::withdraw`] and records what they return.
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

use super::ladok::merit::{self, MeritContent};
use super::ladok::{LadokClient, LadokConfig, LadokError, LadokMerit};
use super::{ExportLock, ExportWorker, WorkerError, overtaken_on_conflict, step_id};
use crate::app::CommandError;
use crate::domain::batch::{BatchCommand, DeliveryStarted, MeritCreated};
use crate::domain::{BatchId, CertificateId};
use crate::export::ExportCertificate;

/// Why one certificate's delivery stopped.
pub(super) enum Stop {
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
            .store()
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
    pub(super) async fn record(
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
                let command = BatchCommand::RecordMerit(MeritCreated {
                    certificate_id,
                    ladok_merit_uid: created.uid.clone(),
                });
                let version = self.batch_state(batch_id).await?.version;
                // The merit's UID in the id: a merit created again later (after the first was
                // deleted in Ladok) is another fact, not a repeat.
                let command_id =
                    step_id(batch_id, &format!("merit:{certificate_id}:{}", created.uid));
                self.record_step(batch_id, version, command, command_id, None)
                    .await
                    .map_err(overtaken_on_conflict)?;
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
    pub(super) async fn withdraw(
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
        let command = BatchCommand::StartWrite(DeliveryStarted {
            certificate_id,
            operation: operation.to_owned(),
            ladok_merit_uid: ladok_merit_uid.map(str::to_owned),
            in_flight_secs: bound.as_secs() + u64::from(bound.subsec_nanos() > 0),
        });
        // Taken before the event is inserted, so never later than its recorded time, from which
        // the in-flight bound runs: the request is sent within `timeout` of this instant.
        let fenced = std::time::Instant::now();
        let recorded = self
            .record_step(
                batch_id,
                version,
                command,
                Uuid::now_v7(),
                Some(lock.connection()),
            )
            .await;
        match recorded {
            Ok(()) => {}
            Err(e @ (CommandError::Conflict { .. } | CommandError::VersionMismatch { .. })) => {
                return Err(overtaken_on_conflict(e).into());
            }
            Err(CommandError::Domain(refusal)) => {
                return Err(WorkerError::Command(refusal.into()).into());
            }
            // The lock's session is gone, and the lock with it.
            Err(_) => return Err(WorkerError::LockLost.into()),
        }
        // The handler announced the event after its commit.
        Ok(fenced)
    }
}
