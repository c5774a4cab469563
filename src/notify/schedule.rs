//! The notification schedule inside `cim serve`: once a day (by default 07:00 Europe/Stockholm)
//! the students' reminders and the coordinators' digests, and every few minutes the operators'
//! health watch. Several instances may fire together: each job runs in a transaction that first
//! takes a transaction-level advisory lock, so one does the work and the others skip; the
//! messages' keys would keep a second run from sending anything twice anyway.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use super::kind::Decision;
use super::outbox;
use super::reminders::{self, ReminderSettings};
use super::{digest, watch};
use crate::domain::stockholm_date;
use crate::export::worker::schedule::Schedule;
use crate::projections::lock::lock_key;

/// The default time of the daily job: 07:00, before people start their day.
pub const DEFAULT_DAILY: &str = "0 0 7 * * *";
/// The health watch: every five minutes.
pub const WATCH: &str = "0 */5 * * * *";

/// What a daily run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DailyOutcome {
    /// Another instance holds the job's lock and runs it.
    Busy,
    /// Messages decided, and how many of them were new.
    Decided { decided: usize, new: u64 },
}

/// The daily job for `today` (a Stockholm date): reminders and digests, stored in one transaction.
pub async fn daily(
    pool: &PgPool,
    settings: &ReminderSettings,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<DailyOutcome, sqlx::Error> {
    let mut decisions: Vec<Decision> = Vec::new();
    for p in reminders::collecting(pool).await? {
        decisions.extend(reminders::decide(
            &p,
            settings.rule(p.program_code.as_deref()),
            today,
        ));
    }
    decisions.extend(digest::decide(pool, settings, today, now).await?);
    store_once(pool, "notify_daily", &today.to_string(), &decisions).await
}

/// Stores `decisions` under the job's lock and records the period as done.
pub(super) async fn store_once(
    pool: &PgPool,
    job: &str,
    period: &str,
    decisions: &[Decision],
) -> Result<DailyOutcome, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let locked: bool = sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock($1) AS "locked!""#,
        lock_key(job)
    )
    .fetch_one(&mut *tx)
    .await?;
    if !locked {
        return Ok(DailyOutcome::Busy);
    }
    let new = outbox::insert(&mut tx, decisions, None).await?;
    sqlx::query!(
        "INSERT INTO scheduled_runs (job, last_period, finished_at) VALUES ($1, $2, now())
         ON CONFLICT (job) DO UPDATE SET last_period = EXCLUDED.last_period, finished_at = now()",
        job,
        period,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(DailyOutcome::Decided {
        decided: decisions.len(),
        new,
    })
}

/// The running schedule; [`NotifyScheduler::shutdown`] stops it.
pub struct NotifyScheduler {
    scheduler: JobScheduler,
}

impl std::fmt::Debug for NotifyScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyScheduler").finish_non_exhaustive()
    }
}

impl NotifyScheduler {
    pub async fn start(
        pool: PgPool,
        settings: ReminderSettings,
        daily_at: &Schedule,
        watch_settings: crate::ops::Thresholds,
    ) -> Result<Self, JobSchedulerError> {
        let scheduler = JobScheduler::new().await?;
        let daily_pool = pool.clone();
        let job = Job::new_async_tz(daily_at.cron.as_str(), daily_at.timezone, move |_, _| {
            let pool = daily_pool.clone();
            let settings = settings.clone();
            Box::pin(async move {
                let now = Utc::now();
                match daily(&pool, &settings, stockholm_date(now), now).await {
                    Ok(outcome) => tracing::info!(?outcome, "daily notifications decided"),
                    // Tomorrow's run decides again; a reminder missed today is caught up then.
                    Err(e) => tracing::error!(error = %e, "daily notifications failed"),
                }
            })
        })?;
        scheduler.add(job).await?;
        let watch_job = Job::new_async(WATCH, move |_, _| {
            let pool = pool.clone();
            let settings = watch_settings.clone();
            Box::pin(async move {
                if let Err(e) = watch::run(&pool, &settings, Utc::now()).await {
                    tracing::warn!(error = %e, "health watch failed");
                }
            })
        })?;
        scheduler.add(watch_job).await?;
        scheduler.start().await?;
        Ok(Self { scheduler })
    }

    pub async fn shutdown(mut self) {
        if let Err(e) = self.scheduler.shutdown().await {
            tracing::warn!(error = %e, "notification scheduler did not shut down cleanly");
        }
    }
}
