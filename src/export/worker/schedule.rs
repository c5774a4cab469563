//! When the worker runs inside `cim serve`: a cron job (tokio-cron-scheduler) in a configured time
//! zone, by default every night at 02:00 Europe/Stockholm. The job body is [`run_export`], a plain
//! async function that `cim export run` and the tests call directly.
//!
//! Several processes may all fire at 02:00: the export lock lets one of them work and the others
//! return [`RunOutcome::Busy`] at once.
//!
//! Known limit of tokio-cron-scheduler 0.15: the job's UTC offset is fixed when the job is created,
//! so after a daylight-saving change a long-running process fires an hour early or late (01:00 or
//! 03:00 local) until it is restarted. Harmless for a nightly export; restart on deploy fixes it.

use std::str::FromStr;

use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use chrono::Utc;

use super::identity_check::check_typed_numbers;
use super::ladok::LadokClient;
use super::runs::{RunRecord, record_run};
use super::{ExportWorker, RunOutcome, WorkerConfig, WorkerError};
use crate::store::EventStore;

/// The default schedule: seconds, minutes, hours, day of month, month, day of week.
pub const DEFAULT_SCHEDULE: &str = "0 0 2 * * *";
/// The default time zone of the schedule.
pub const DEFAULT_TIMEZONE: &str = "Europe/Stockholm";

/// When the job fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// A six-field cron expression (with seconds), e.g. `0 0 2 * * *`.
    pub cron: String,
    pub timezone: chrono_tz::Tz,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            cron: DEFAULT_SCHEDULE.to_owned(),
            timezone: chrono_tz::Tz::from_str(DEFAULT_TIMEZONE).expect("a known time zone"),
        }
    }
}

impl Schedule {
    /// Whether the scheduler accepts the cron expression (checked at start-up, before anything runs).
    pub fn validate(&self) -> Result<(), JobSchedulerError> {
        Job::new_async_tz(self.cron.as_str(), self.timezone, |_, _| Box::pin(async {})).map(|_| ())
    }
}

/// One export run: what the scheduled job, `cim export run` and the tests all call. With Ladok
/// delivery switched on, identity numbers typed while Ladok was unreachable are checked first
/// (`identity_check`), so that a certificate approved since carries Ladok's number.
///
/// Every run, also a failed or a busy one, is recorded in `export_runs` ([`runs`](super::runs)):
/// here and not in the cron job, so that a run by hand counts as the export's last success too.
pub async fn run_export(
    store: &EventStore,
    config: &WorkerConfig,
) -> Result<RunOutcome, WorkerError> {
    let started_at = Utc::now();
    let result = run_checked(store, config).await;
    let record = RunRecord::of(&result);
    if let Err(e) = record_run(store.pool(), started_at, record).await {
        // The run's own outcome stands; the missing row shows as "no success lately".
        tracing::warn!(error = %e, ?record, "the export run could not be recorded");
    }
    result
}

/// The identity check and the worker's run (see [`run_export`]).
async fn run_checked(store: &EventStore, config: &WorkerConfig) -> Result<RunOutcome, WorkerError> {
    if let Some(ladok) = &config.ladok {
        // A failure here never holds the export back: the delivery checks identities anyway.
        match LadokClient::new(ladok.clone()) {
            Ok(client) => match check_typed_numbers(store, &client).await {
                Ok(pass) if pass.recorded > 0 || pass.interrupted => {
                    tracing::info!(
                        recorded = pass.recorded,
                        interrupted = pass.interrupted,
                        "identity check against Ladok"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "identity check against Ladok failed"),
            },
            Err(e) => tracing::warn!(
                error = e.reason_code(),
                "no Ladok client for the identity check"
            ),
        }
    }
    ExportWorker::new(store.clone(), config.clone())
        .run_once()
        .await
}

/// The scheduler of a `cim serve` process. [`ExportScheduler::shutdown`] stops it.
pub struct ExportScheduler {
    scheduler: JobScheduler,
}

impl std::fmt::Debug for ExportScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportScheduler").finish_non_exhaustive()
    }
}

impl ExportScheduler {
    /// Starts firing [`run_export`] on `schedule`. A bad cron expression is an error here, at start-up.
    pub async fn start(
        store: EventStore,
        config: WorkerConfig,
        schedule: &Schedule,
    ) -> Result<Self, JobSchedulerError> {
        let scheduler = JobScheduler::new().await?;
        let job = Job::new_async_tz(schedule.cron.as_str(), schedule.timezone, move |_, _| {
            let store = store.clone();
            let config = config.clone();
            Box::pin(async move {
                match run_export(&store, &config).await {
                    Ok(outcome) => tracing::info!(?outcome, "scheduled export run finished"),
                    // The next run starts over from the log; nothing is lost by failing here.
                    Err(e) => tracing::error!(error = %e, "scheduled export run failed"),
                }
            })
        })?;
        scheduler.add(job).await?;
        scheduler.start().await?;
        tracing::info!(cron = %schedule.cron, timezone = %schedule.timezone, "export scheduler started");
        Ok(Self { scheduler })
    }

    /// Stops firing. A run in progress finishes on its own task.
    pub async fn shutdown(mut self) {
        if let Err(e) = self.scheduler.shutdown().await {
            tracing::warn!(error = %e, "export scheduler did not shut down cleanly");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_is_valid_and_nonsense_is_not() {
        assert_eq!(Schedule::default().timezone, chrono_tz::Europe::Stockholm);
        Schedule::default().validate().unwrap();
        let bad = Schedule {
            cron: "at two every night".to_owned(),
            ..Schedule::default()
        };
        assert!(bad.validate().is_err());
    }
}
