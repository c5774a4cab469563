//! `cim-bench soak`: minutes of mixed traffic against a real `cim serve` child, reported window by
//! window, to show that nothing fails and that throughput, latency and the server's memory stay flat.
//!
//! The traffic ([`traffic`]) is what the service sees in term time: students open portfolios, log
//! activities, submit reflections, the final reflection and their application, reading their
//! portfolio between the steps; coordinators read their review queue, look at the portfolio and
//! approve what waits; the registrar runs an export now and then and reads the certificates and
//! batches; and every student also sends requests that must be refused (a reflection outside its
//! band, malformed JSON, no token, a role that may not, an unknown or unreadable portfolio id), each
//! with the one status it must get. Any other status, and any 5xx, is an error; the command prints
//! the first few and exits non-zero when there was one.
//!
//! Every window prints requests/s, errors, p50/p99 latency and the child's resident memory
//! (`VmRSS` from `/proc/<pid>/status`, read once a second: a few hundred bytes, nothing the child
//! notices); the end compares the last window with the first.

mod figures;
mod traffic;

use super::serve::ServeChild;
use super::{Scratch, fixtures, progress};
use anyhow::{Context, bail};
use chrono::Utc;
use cim::app::{self, CommandContext, pilot_program_id};
use cim::domain::program::pilot_programs;
use cim::domain::{ProgramCommand, ProgramId, StaffId};
use cim::store::ActorRole;
use clap::Args;
use figures::{Recorder, WindowFigure, summary};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use traffic::Traffic;

#[derive(Debug, Clone, Args)]
pub struct SoakArgs {
    /// How long the traffic runs, e.g. `5m`, `90s`, `1h` (a bare number is seconds).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub duration: Duration,
    /// One line of figures per window of this length.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub window: Duration,
    /// Students working at the same time (each one portfolio after the other, from opening to the
    /// certificate).
    #[arg(long, default_value_t = 8)]
    pub students: usize,
    /// Seconds between the registrar's export runs.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub export_every: Duration,
}

/// `5m`, `90s`, `1h`, `1500ms`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 5m, 90s or 1500ms"))?;
    let duration = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        other => return Err(format!("unknown unit {other:?}: use ms, s, m or h")),
    };
    if duration.is_zero() {
        return Err("a duration must be longer than zero".to_owned());
    }
    Ok(duration)
}

/// The staff id of the soak's coordinator of each program it uses.
fn coordinator(program: usize) -> StaffId {
    StaffId::parse(&format!("coord-soak-{program}")).expect("a valid staff id")
}

/// The programs the students enrol in: two of the pilot programs, each with a soak coordinator.
const PROGRAMS: usize = 2;

pub async fn run(server: &str, args: SoakArgs, work: &std::path::Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.window <= args.duration,
        "--window must not be longer than --duration"
    );
    let scratch = Scratch::create(server, "soak").await?;
    let result = soak(&scratch, &args, work).await;
    scratch.drop().await?;
    result
}

async fn soak(scratch: &Scratch, args: &SoakArgs, work: &std::path::Path) -> anyhow::Result<()> {
    let programs = seed(scratch).await?;
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let serve_dir = work.join("soak");
    std::fs::create_dir_all(&serve_dir)?;
    let serve = ServeChild::start(&scratch.url, &secret, &serve_dir).await?;
    progress(&format!(
        "soak: {} students, {} coordinators and the registrar for {} s against cim serve (pid {})",
        args.students,
        programs.len(),
        args.duration.as_secs(),
        serve.pid
    ));
    let result = drive(&serve, &secret, &programs, args).await;
    let stopped = serve.stop().await;
    let failed = result?;
    stopped?;
    if failed > 0 {
        bail!("{failed} requests failed during the soak");
    }
    Ok(())
}

/// The pilot programs, with a coordinator assigned to the first [`PROGRAMS`].
async fn seed(scratch: &Scratch) -> anyhow::Result<Vec<ProgramId>> {
    let handler = fixtures::handler(&scratch.pool);
    let now = Utc::now();
    app::seed_pilot_programs(&handler, fixtures::BENCH_ADMIN, now).await?;
    let mut programs = Vec::new();
    for (k, (code, _)) in pilot_programs().into_iter().take(PROGRAMS).enumerate() {
        let program = pilot_program_id(code);
        let id = uuid::Uuid::now_v7();
        let ctx = CommandContext {
            actor_id: fixtures::BENCH_ADMIN.into(),
            role: ActorRole::Admin,
            correlation_id: id,
            command_id: id,
            now,
        };
        handler
            .program(
                program,
                ProgramCommand::AssignCoordinator {
                    staff: coordinator(k),
                },
                &ctx,
            )
            .await
            .context("assigning the soak coordinator")?;
        programs.push(program);
    }
    Ok(programs)
}

/// Runs the traffic for the duration, printing a window's figures as each ends; returns the number
/// of failed requests.
async fn drive(
    serve: &ServeChild,
    secret: &str,
    programs: &[ProgramId],
    args: &SoakArgs,
) -> anyhow::Result<usize> {
    let recorder = Arc::new(Recorder::default());
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = Arc::new(Traffic::new(
        &serve.base,
        secret,
        programs,
        coordinator,
        recorder.clone(),
        stop.clone(),
        // Tokens outlive the run, however long the last window waits.
        args.duration + Duration::from_secs(600),
    )?);
    let tasks = traffic.spawn(args.students, args.export_every);

    // A fixed number of windows, so a late timer on a busy machine shortens none of them away.
    let window_count =
        ((args.duration.as_secs_f64() / args.window.as_secs_f64()).round() as usize).max(1);
    let started = Instant::now();
    let mut windows: Vec<WindowFigure> = Vec::new();
    let mut memory_tick = tokio::time::interval(Duration::from_secs(1));
    let mut window_tick =
        tokio::time::interval_at(tokio::time::Instant::now() + args.window, args.window);
    // After a stall the next window starts late rather than a burst of empty ones.
    window_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rss_max = 0.0f64;
    let mut window_started = Instant::now();
    loop {
        tokio::select! {
            _ = memory_tick.tick() => {
                rss_max = rss_max.max(serve.memory()?.rss_mib);
            }
            _ = window_tick.tick() => {
                let rss_last = serve.memory()?.rss_mib;
                rss_max = rss_max.max(rss_last);
                let elapsed = window_started.elapsed();
                window_started = Instant::now();
                let window = recorder.take();
                let figure = WindowFigure::new(windows.len() + 1, started.elapsed(), elapsed,
                    window, rss_last, rss_max);
                println!("{figure}");
                windows.push(figure);
                rss_max = 0.0;
                if windows.len() >= window_count {
                    break;
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    // Clients finish the request they are in; one stuck past this is a finding in itself.
    for task in tasks {
        if tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .is_err()
        {
            recorder.error("a client did not stop within 60 s of the end".to_owned());
        }
    }
    let late = recorder.take();
    let failed = windows.iter().map(|w| w.errors).sum::<usize>() + late.errors;
    println!(
        "{}",
        summary(&windows, &traffic.counts(), failed, started.elapsed())
    );
    for sample in recorder.error_samples() {
        println!("  error: {sample}");
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("m").is_err());
    }
}
