//! `cim projections status|rebuild`: look at and rebuild the read models (see src/projections/).

use super::DatabaseArgs;
use crate::db::Database;
use crate::log;
use crate::projections::{
    self, LogFeed, Projection, ProjectionLock, ProjectionReport, RebuildOptions, RebuildOutcome,
    RebuildProgress,
};
use crate::store::{Checkpoint, EventStore};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Show every projection: status, checkpoint, and how many events it is behind the log.
    Status,
    /// Rebuild read models from the whole log, with progress. Resumes an interrupted rebuild unless
    /// --restart. Waits while another process (a running `cim serve`) advances the projection:
    /// stop it first, or let `cim serve` rebuild by itself after a version bump.
    Rebuild(RebuildArgs),
}

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// The projection to rebuild; every projection when omitted.
    pub name: Option<String>,
    /// Start from scratch even if an interrupted rebuild could be resumed.
    #[arg(long)]
    pub restart: bool,
}

pub async fn run(db_args: &DatabaseArgs, command: ProjectionsCommand) -> anyhow::Result<()> {
    let db = super::open_database(db_args).await?;
    let result = match command {
        ProjectionsCommand::Status => status(&db).await,
        ProjectionsCommand::Rebuild(args) => rebuild(&db, &args).await,
    };
    // Stop the embedded cluster (if we started it) also after a failure.
    let closed = db.close().await;
    result?;
    closed?;
    Ok(())
}

async fn status(db: &Database) -> anyhow::Result<()> {
    let reports = projections::report(&db.pool, &projections::all())
        .await
        .context("cannot read the projections' checkpoints")?;
    if reports.is_empty() {
        println!("no projections");
        return Ok(());
    }
    print!("{}", status_table(&reports));
    Ok(())
}

/// The table of `cim projections status`, one line per projection.
fn status_table(reports: &[ProjectionReport]) -> String {
    let header = [
        "NAME",
        "STATUS",
        "DEFINITION",
        "CHECKPOINT",
        "APPLIED",
        "BEHIND",
        "UPDATED",
    ];
    let rows: Vec<[String; 7]> = reports
        .iter()
        .map(|r| {
            let stored = r.stored.as_ref();
            [
                r.name.clone(),
                stored.map_or("-".to_owned(), |s| s.phase.to_string()),
                r.definition.as_str().to_owned(),
                stored.map_or("-".to_owned(), |s| s.checkpoint.to_string()),
                stored.map_or("-".to_owned(), |s| s.events_applied.to_string()),
                r.behind.to_string(),
                stored.map_or("-".to_owned(), |s| {
                    s.updated_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
                }),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

async fn rebuild(db: &Database, args: &RebuildArgs) -> anyhow::Result<()> {
    let all = projections::all();
    let chosen: Vec<Arc<dyn Projection>> = match &args.name {
        None => all,
        Some(name) => match all.iter().find(|p| p.name() == name) {
            Some(p) => vec![p.clone()],
            None => {
                let known: Vec<&str> = all.iter().map(|p| p.name()).collect();
                bail!(
                    "no projection named {name:?}; known: {}",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                );
            }
        },
    };
    if chosen.is_empty() {
        println!("no projections to rebuild");
        return Ok(());
    }
    let stop = interrupt_flag();
    // The same upcasters as `cim serve`, so a rebuild equals the live model.
    // Rebuilt one after the other (each with its own progress bar), so each reads the log itself;
    // the feed shares reads only between projections that rebuild at once (as in `cim serve`).
    let feed = LogFeed::new(EventStore::new(db.pool.clone(), log::upcasters()));
    for projection in chosen {
        rebuild_one(db, &feed, projection.as_ref(), args.restart, &stop).await?;
    }
    Ok(())
}

async fn rebuild_one(
    db: &Database,
    feed: &LogFeed,
    projection: &dyn Projection,
    restart: bool,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let name = projection.name();
    let mut lock = ProjectionLock::connect(&db.url, name)
        .await
        .context("cannot open a connection for the projection's lock")?;
    if !take_lock(&mut lock, stop).await? {
        bail!("interrupted while waiting for the lock of projection {name}");
    }
    let total = projections::status::events_after(&db.pool, Checkpoint::START).await?;
    let bar = ProgressBar::new(total.max(0) as u64).with_prefix(name.to_owned());
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} events ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style);
    }
    let mut on_progress = |progress: RebuildProgress| {
        let applied = match progress {
            RebuildProgress::Started {
                resumed_from,
                events_applied,
            } => {
                if let Some(at) = resumed_from {
                    bar.suspend(|| eprintln!(
                        "{name}: resuming an interrupted rebuild at {at} ({events_applied} events already applied; --restart starts over)"
                    ));
                }
                events_applied
            }
            RebuildProgress::Batch { events_applied, .. } => events_applied,
        };
        let applied = applied.max(0) as u64;
        // The log may grow while we rebuild.
        if bar.length().is_some_and(|len| applied > len) {
            bar.set_length(applied);
        }
        bar.set_position(applied);
    };
    let options = RebuildOptions {
        restart,
        ..RebuildOptions::default()
    };
    let outcome = projections::rebuild(
        feed,
        &db.pool,
        &mut lock,
        projection,
        options,
        stop,
        &mut on_progress,
    )
    .await;
    lock.release().await;
    match outcome.with_context(|| {
        format!("rebuilding {name} failed; run the same command again to resume")
    })? {
        RebuildOutcome::Completed {
            checkpoint,
            events_applied,
        } => {
            bar.finish();
            println!("{name}: rebuilt from {events_applied} events, live at {checkpoint}");
            Ok(())
        }
        RebuildOutcome::Interrupted {
            checkpoint,
            events_applied,
        } => {
            bar.abandon();
            bail!(
                "{name}: interrupted at {checkpoint} after {events_applied} events; \
                 run `cim projections rebuild {name}` again to resume"
            )
        }
    }
}

/// Takes the projection's lock, waiting (with a message) while another process holds it. Returns
/// false when interrupted meanwhile.
async fn take_lock(lock: &mut ProjectionLock, stop: &AtomicBool) -> anyhow::Result<bool> {
    if lock.try_acquire().await? {
        return Ok(true);
    }
    eprintln!(
        "projection {} is being advanced by another process (a running `cim serve`?); waiting \
         for it to let go. Stop that process, or press Ctrl-C to give up.",
        lock.name()
    );
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if stop.load(Ordering::SeqCst) {
            return Ok(false);
        }
        if lock.try_acquire().await? {
            eprintln!("got the lock of projection {}", lock.name());
            return Ok(true);
        }
    }
}

/// Set on the first Ctrl-C: the rebuild stops after the batch it is applying (every batch commits
/// with its checkpoint, so the rebuild can resume). A second Ctrl-C exits at once, which is safe
/// too: the batch in flight is rolled back by the server.
fn interrupt_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        flag.store(true, Ordering::SeqCst);
        eprintln!(
            "interrupted: stopping after the batch in progress, if any (Ctrl-C again to quit at once)"
        );
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
    stop
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projections::{Definition, Phase, StoredCheckpoint};
    use chrono::{TimeZone, Utc};

    #[test]
    fn the_status_table_lines_up() {
        let when = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        let reports = vec![
            ProjectionReport {
                name: "portfolio".into(),
                stored: Some(StoredCheckpoint {
                    name: "portfolio".into(),
                    version: 1,
                    definition_hash: "h".into(),
                    checkpoint: Checkpoint {
                        transaction_id: 740,
                        position: 12,
                    },
                    events_applied: 12,
                    phase: Phase::Live,
                    rebuilt_at: when,
                    updated_at: when,
                }),
                definition: Definition::Current,
                behind: 0,
            },
            ProjectionReport {
                name: "review_queue".into(),
                stored: None,
                definition: Definition::NotCreated,
                behind: 12,
            },
        ];
        let table = status_table(&reports);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("NAME          STATUS  DEFINITION   CHECKPOINT"));
        assert!(lines[1].starts_with("portfolio     live    current      740:12"));
        assert!(lines[2].starts_with("review_queue  -       not created  -"));
        assert!(lines[1].ends_with("2026-11-30 12:00:00 UTC"));
    }
}
