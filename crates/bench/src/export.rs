//! Section 6: the export worker on a log of exactly N approved certificates (copies of the template
//! cohort's approvals, each with its own ids and holder), first to files only, then delivered to the
//! fake Ladok over mutual TLS.
//!
//! The worker is driven step by step (`ExportWorker::step`, under the export lock, exactly as
//! `run_once` does) so that each phase can stop at a time budget and report how far it got: a
//! phase whose cost grows faster than its size must not hold the whole bench hostage.

use super::corpus::Template;
use super::report::{ExportFigure, ExportPhase};
use super::stats::rate;
use anyhow::Context;
use cim::export::worker::{ExportLock, ExportWorker, Step, WorkerConfig};
use cim::log;
use cim::store::EventStore;
use cim_fake_ladok::FakeLadok;
use sqlx::PgPool;
use std::path::Path;
use std::time::{Duration, Instant};

/// Exports `certificates` certificates to files and, when that completed, delivers them to a fake
/// Ladok; each phase stops after `budget`.
pub async fn run(
    pool: &PgPool,
    approvals: &Template,
    certificates: usize,
    export_dir: &Path,
    budget: Duration,
) -> anyhow::Result<ExportFigure> {
    approvals.copy_into(pool, 1, certificates).await?;
    let store = EventStore::new(pool.clone(), log::upcasters());
    let mut config = WorkerConfig::new(export_dir);
    config.max_events_per_batch = certificates + 1;
    // A record file and an ELMO document per certificate, the Ladok CSV and the manifest.
    let files_total = 2 * certificates + 2;

    let files = phase(&store, &config, budget, files_total).await?;
    let ladok = if files.complete {
        let fake = FakeLadok::start()
            .await
            .context("starting the fake Ladok")?;
        config.ladok = Some(fake.config());
        let delivered = phase(&store, &config, budget, certificates).await?;
        drop(fake);
        Some(delivered)
    } else {
        None
    };
    Ok(ExportFigure {
        certificates,
        files_total,
        files,
        ladok,
    })
}

/// Steps one worker until it is idle or `budget` has passed; counts files written, or deliveries
/// when Ladok is configured.
async fn phase(
    store: &EventStore,
    config: &WorkerConfig,
    budget: Duration,
    total: usize,
) -> anyhow::Result<ExportPhase> {
    let mut lock = ExportLock::try_acquire(store.pool())
        .await?
        .context("another export worker holds the export lock")?;
    let mut worker = ExportWorker::new(store.clone(), config.clone());
    let start = Instant::now();
    let (mut done, mut failed, mut complete) = (0usize, 0usize, false);
    let result = loop {
        if start.elapsed() > budget {
            break Ok(());
        }
        match worker.step(&mut lock).await {
            // Idle before the work is done: the approvals just copied in are not yet visible to
            // the log's gap-safe tail (a transaction elsewhere on the server still holds the
            // snapshot horizon back); look again shortly, within the budget.
            Ok(Step::Idle) if done + failed < total => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(Step::Idle) => {
                complete = true;
                break Ok(());
            }
            Ok(Step::FilesWritten { names, .. }) => done += names.len(),
            Ok(Step::Delivered { .. }) => done += 1,
            Ok(Step::DeliveryFailed { .. }) => failed += 1,
            Ok(Step::Created { .. } | Step::Completed { .. } | Step::Deferred { .. }) => {}
            Err(e) => break Err(e),
        }
    };
    let elapsed = start.elapsed();
    lock.release().await;
    result?;
    let certificates = if config.ladok.is_some() {
        done
    } else {
        // Two files per certificate; the CSV and the manifest are counted with the last one.
        done.min(total.saturating_sub(2)) / 2
    };
    Ok(ExportPhase {
        done,
        failed,
        total,
        complete,
        seconds: elapsed.as_secs_f64(),
        certificates_per_s: rate(certificates, elapsed),
    })
}
