//! Section 6: the export worker on a log of exactly N approved certificates (copies of the template
//! cohort's approvals, each with its own ids and holder), first to files only, then delivered to the
//! fake Ladok over mutual TLS.

use super::corpus::Template;
use super::report::ExportFigure;
use super::stats::rate;
use crate::app;
use crate::export::fake_ladok::FakeLadok;
use crate::export::worker::schedule::run_export;
use crate::export::worker::{RunOutcome, WorkerConfig};
use crate::store::EventStore;
use anyhow::{Context, bail};
use sqlx::PgPool;
use std::path::Path;
use std::time::Instant;

pub async fn run(
    pool: &PgPool,
    approvals: &Template,
    certificates: usize,
    export_dir: &Path,
) -> anyhow::Result<ExportFigure> {
    approvals.copy_into(pool, 1, certificates).await?;
    let store = EventStore::new(pool.clone(), app::upcasters());
    let mut config = WorkerConfig::new(export_dir);
    config.max_events_per_batch = certificates + 1;

    let start = Instant::now();
    let (files_written, _, _) = ran(run_export(&store, &config).await?)?;
    let files_s = start.elapsed();

    let fake = FakeLadok::start().await.context("starting the fake Ladok")?;
    config.ladok = Some(fake.config());
    let start = Instant::now();
    let (_, delivered, failed) = ran(run_export(&store, &config).await?)?;
    let ladok_s = start.elapsed();
    drop(fake);
    let exported: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'CertificateApproved'",
    )
    .fetch_one(pool)
    .await?;
    Ok(ExportFigure {
        certificates: exported as usize,
        files_written,
        files_seconds: files_s.as_secs_f64(),
        files_certificates_per_s: rate(exported as usize, files_s),
        delivered,
        failed,
        ladok_seconds: ladok_s.as_secs_f64(),
        ladok_certificates_per_s: rate(delivered, ladok_s),
    })
}

fn ran(outcome: RunOutcome) -> anyhow::Result<(usize, usize, usize)> {
    match outcome {
        RunOutcome::Busy => bail!("another export worker holds the export lock"),
        RunOutcome::Ran {
            files_written,
            delivered,
            failed,
            ..
        } => Ok((files_written, delivered, failed)),
    }
}
