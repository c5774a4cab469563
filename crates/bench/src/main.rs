//! `cim-bench`: the whole system measured in one run, every figure next to a baseline measured in the
//! same run on the same machine (these machines are shared and noisy, so absolute figures mean little).
//!
//! Each section works in a scratch database of its own on the configured server (or on the embedded
//! cluster), created here and dropped afterwards, so no section sees another's data and nothing is
//! left behind. See the README's "Performance" section for the figures and what bounds them.
//!
//! `cim-bench soak` ([`soak`]) is the other measurement: minutes of mixed traffic against one
//! `cim serve`, figures per window, to show that nothing fails and nothing grows.

mod append;
mod baseline;
mod corpus;
mod export;
mod fixtures;
mod http;
mod load;
mod log;
mod report;
mod serve;
mod soak;
mod stats;

use anyhow::Context;
use append::Streams;
use baseline::Table;
use cim::cli::DatabaseArgs;
use cim::db::embedded::{EmbeddedConfig, EmbeddedPostgres};
use cim::db::{self, scratch};
use clap::{Args, Subcommand};
use report::{Append, Baseline, Http, Machine, Report};
use sqlx::PgPool;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Every section on small sizes and short phases (seconds instead of minutes): for checking that
    /// the bench works, not for figures.
    #[arg(long)]
    pub quick: bool,
    /// Print the report as JSON on stdout (the table goes to stderr).
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Minutes of mixed traffic (students, coordinators, the registrar, bad requests) against one
    /// `cim serve`: requests/s, errors, p50/p99 latency and the server's resident memory per window,
    /// and the last window against the first. Exits non-zero when any request failed.
    Soak(soak::SoakArgs),
}

/// Sizes and durations of one run.
#[derive(Debug, Clone, Copy)]
struct Scale {
    name: &'static str,
    phase: Duration,
    copy_rows: usize,
    http: http::HttpPlan,
    template_students: usize,
    log_events: usize,
    /// After this, projection rebuilds are interrupted and their rates taken from the part done.
    rebuild_budget: Duration,
    certificates: usize,
    /// Each export phase (files, Ladok) stops after this.
    export_budget: Duration,
    /// When the full export does not finish in time, Ladok delivery is measured on this many.
    small_certificates: usize,
}

impl Scale {
    fn full() -> Self {
        Self {
            name: "full",
            phase: Duration::from_secs(5),
            copy_rows: 100_000,
            http: http::HttpPlan {
                portfolios: 1_200,
                phases: [(8, Duration::from_secs(8)), (32, Duration::from_secs(8))],
                read_rate: 2_000.0,
                read_duration: Duration::from_secs(10),
            },
            template_students: 40,
            log_events: 1_000_000,
            rebuild_budget: Duration::from_secs(60),
            certificates: 10_000,
            export_budget: Duration::from_secs(45),
            small_certificates: 400,
        }
    }

    fn quick() -> Self {
        Self {
            name: "quick",
            phase: Duration::from_millis(700),
            copy_rows: 5_000,
            http: http::HttpPlan {
                portfolios: 150,
                phases: [
                    (8, Duration::from_millis(1_000)),
                    (32, Duration::from_millis(1_000)),
                ],
                read_rate: 500.0,
                read_duration: Duration::from_secs(1),
            },
            template_students: 10,
            log_events: 5_000,
            rebuild_budget: Duration::from_secs(60),
            certificates: 100,
            export_budget: Duration::from_secs(60),
            small_certificates: 20,
        }
    }
}

/// The allocator of the `cim` binary (src/main.rs): section 5 rebuilds the projections inside this
/// process, and they must run as they do in `cim serve`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONCURRENCY: [usize; 3] = [1, 8, 32];
const HOT_STREAMS: usize = 4;

/// The command line: `cim`'s database options, then the tool's own.
#[derive(Debug, clap::Parser)]
#[command(
    name = "cim-bench",
    version,
    about = "Measure the store, the HTTP API, the projections and the export against baselines of the same run, in scratch databases it creates and drops"
)]
struct Cli {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    args: BenchArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = <Cli as clap::Parser>::parse();
    cim::cli::tool_main(&cli.database, run(&cli.database, cli.args)).await
}

async fn run(db_args: &DatabaseArgs, args: BenchArgs) -> anyhow::Result<()> {
    let scale = if args.quick {
        Scale::quick()
    } else {
        Scale::full()
    };
    let settings = db_args.settings();
    let (server, cluster) = match &settings.database_url {
        Some(url) => (url.clone(), None),
        None => {
            let cluster = EmbeddedPostgres::start(EmbeddedConfig {
                data_dir: settings.data_dir.clone(),
                bin_dir: settings.pg_bin_dir.clone(),
            })
            .await?;
            (cluster.connection_url("postgres"), Some(cluster))
        }
    };
    let work = std::env::temp_dir().join(format!("cim-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&work)?;
    let result = match args.command {
        Some(BenchCommand::Soak(soak)) => soak::run(&server, soak, &work).await.map(|()| None),
        None => run_sections(&server, scale, &work).await.map(Some),
    };
    let _ = std::fs::remove_dir_all(&work);
    if let Some(cluster) = cluster {
        cluster.stop().await?;
    }
    let Some(report) = result? else {
        return Ok(());
    };
    let table = report::table(&report);
    if args.json {
        eprintln!("{table}");
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{table}");
    }
    Ok(())
}

/// A migrated scratch database, dropped by [`Scratch::drop`].
struct Scratch {
    server: String,
    name: String,
    url: String,
    pool: PgPool,
}

impl Scratch {
    async fn create(server: &str, section: &str) -> anyhow::Result<Scratch> {
        let name = format!(
            "cim_bench_{}_{section}",
            uuid::Uuid::new_v4().simple().to_string().split_at(12).0
        );
        scratch::create_database(server, &name).await?;
        let url = scratch::with_database(server, &name)?;
        let pool = db::connect(&url, 16).await?;
        db::migrate(&pool).await?;
        Ok(Scratch {
            server: server.to_owned(),
            name,
            url,
            pool,
        })
    }

    async fn drop(self) -> anyhow::Result<()> {
        self.pool.close().await;
        scratch::drop_database(&self.server, &self.name).await?;
        Ok(())
    }
}

/// Runs `section` in a scratch database of its own, dropping it also when the section fails.
async fn in_scratch<T, F, Fut>(server: &str, name: &str, section: F) -> anyhow::Result<T>
where
    F: FnOnce(PgPool, String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let scratch = Scratch::create(server, name).await?;
    let result = section(scratch.pool.clone(), scratch.url.clone()).await;
    scratch.drop().await?;
    result.with_context(|| format!("bench section {name}"))
}

fn progress(what: &str) {
    eprintln!("cim-bench: {what}");
}

async fn run_sections(
    server: &str,
    scale: Scale,
    work: &std::path::Path,
) -> anyhow::Result<Report> {
    let started = Instant::now();

    progress("1 baseline and 2 store append");
    let (baseline, append, postgres) = in_scratch(server, "store", |pool, url| async move {
        let now = chrono::Utc::now();
        let handler = fixtures::handler(&pool);
        let open = fixtures::open_portfolio(&handler, now).await?;
        let reflection = fixtures::reflection_event(&handler, &pool, &open, now).await?;
        // The baseline inserts rows of the stored event's bytes; appends get what a command gives.
        let (sample, submitted) = (&reflection.stored, &reflection.submitted);
        let postgres: String = sqlx::query_scalar("SHOW server_version")
            .fetch_one(&pool)
            .await?;
        let row_bytes = sample.payload.to_string().len()
            + sample.personal.as_ref().map_or(0, |p| p.to_string().len());
        let mut inserts = Vec::new();
        for c in CONCURRENCY {
            inserts.push(baseline::inserts(&url, sample, c, scale.phase, Table::Plain).await?);
        }
        let copy = baseline::copy(&url, sample, scale.copy_rows).await?;
        let mut inserts_with_notify = Vec::new();
        for c in [8, 32] {
            inserts_with_notify
                .push(baseline::inserts(&url, sample, c, scale.phase, Table::Notify).await?);
        }
        let baseline = Baseline {
            row_bytes,
            inserts,
            copy,
            inserts_with_notify,
        };
        let mut append = Append {
            distinct: Vec::new(),
            hot: Vec::new(),
        };
        for w in CONCURRENCY {
            let b = baseline.at(w);
            append
                .distinct
                .push(append::append(&url, submitted, w, Streams::Distinct, scale.phase, b).await?);
        }
        for w in [8, 32] {
            let b = baseline.at(w);
            append.hot.push(
                append::append(
                    &url,
                    submitted,
                    w,
                    Streams::Hot(HOT_STREAMS),
                    scale.phase,
                    b,
                )
                .await?,
            );
        }
        Ok((baseline, append, postgres))
    })
    .await?;

    progress("3 HTTP commands, 4 reads, 7 memory (cim serve child process)");
    let serve_dir = work.join("serve");
    std::fs::create_dir_all(&serve_dir)?;
    let at = |c: usize| baseline.at(c);
    let http_results = in_scratch(server, "http", |pool, url| async move {
        http::run(&pool, &url, scale.http, at, &serve_dir).await
    })
    .await?;

    progress(&format!(
        "5 projections: generating {} events",
        scale.log_events
    ));
    let export_dir: PathBuf = work.join("exports");
    let (log_figure, rebuild, approvals) = in_scratch(server, "log", |pool, url| async move {
        let (approvals, mut figure) =
            log::generate(&pool, scale.log_events, scale.template_students).await?;
        progress("5 projections: scan and rebuild");
        figure.scan_events_per_s = log::scan(&pool).await?;
        let rebuild =
            log::rebuild_all(&pool, &url, figure.scan_events_per_s, scale.rebuild_budget).await?;
        Ok((figure, rebuild, approvals))
    })
    .await?;

    progress(&format!("6 export of {} certificates", scale.certificates));
    let dir = export_dir.join("full");
    let approvals = &approvals;
    let export = in_scratch(server, "export", |pool, _| async move {
        export::run(
            &pool,
            approvals,
            scale.certificates,
            &dir,
            scale.export_budget,
        )
        .await
    })
    .await?;
    let export_small = if export.ladok.is_none() {
        progress(&format!(
            "6 export unfinished in {} s: Ladok delivery of {} certificates instead",
            scale.export_budget.as_secs(),
            scale.small_certificates
        ));
        let dir = export_dir.join("small");
        Some(
            in_scratch(server, "export_small", |pool, _| async move {
                export::run(
                    &pool,
                    approvals,
                    scale.small_certificates,
                    &dir,
                    scale.export_budget,
                )
                .await
            })
            .await?,
        )
    } else {
        None
    };

    let mut report = Report {
        scale: scale.name.to_owned(),
        machine: Machine {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_gib: mem_total_gib(),
            postgres: format!("PostgreSQL {postgres}"),
        },
        baseline,
        append,
        http: Http {
            commands: http_results.commands,
        },
        read: http_results.read,
        log: log_figure,
        rebuild,
        live_lag: http_results.lag,
        export,
        export_small,
        memory: http_results.memory,
        targets: Vec::new(),
        total_seconds: started.elapsed().as_secs_f64(),
    };
    report.targets = report::targets(&report);
    Ok(report)
}

fn mem_total_gib() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|r| r.split_whitespace().next())
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / (1024.0 * 1024.0))
}
