//! `cim-demo`: seeds the pilot programs, drives a fake cohort through the rules (crates/demo/src/), runs one
//! export with an in-process fake Ladok, and prints where to look. Prints ids only, never the fake
//! students' personal data.

use anyhow::{Context, bail};
use cim::app::{self, CommandHandler};
use cim::cli::DatabaseArgs;
use cim::cli::token::JwtArgs;
use cim::db::{Database, embedded};
use cim::export::worker::schedule;
use cim::export::worker::{RunOutcome, WorkerConfig};
use cim::http::auth::{DevToken, MIN_SECRET_LEN, Role, dev_token};
use cim::log;
use cim::store::EventStore;
use cim_demo::{self as demo, CohortSummary, StudentPath};
use cim_fake_ladok::FakeLadok;
use clap::Args;
use std::path::PathBuf;
use uuid::Uuid;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many students to drive through the rules.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub students: u32,
    /// Seed of the demo's choices and ids. The same seed again on the same database changes nothing;
    /// another seed adds another cohort.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// Folder of the batch folders. Default: `exports/` in the data directory, as for `cim export run`.
    #[arg(long, env = "CIM_EXPORT_DIR")]
    pub export_dir: Option<PathBuf>,
    /// The address `cim serve` will listen on, for the printed example URLs.
    #[arg(long, env = "CIM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    #[command(flatten)]
    pub jwt: JwtArgs,
}

/// What the export did, for printing.
struct ExportReport {
    batches: Vec<PathBuf>,
    files_written: usize,
    delivered: usize,
    failed: usize,
}

struct Counts {
    events: i64,
    portfolio_events: i64,
    approved: i64,
    revoked: i64,
}

/// The command line: `cim`'s database options, then the tool's own.
#[derive(Debug, clap::Parser)]
#[command(
    name = "cim-demo",
    version,
    about = "Seed the pilot programs, drive a fake cohort through the rules, export it to a fake Ladok, and print where to look"
)]
struct Cli {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    args: DemoArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = <Cli as clap::Parser>::parse();
    cim::cli::tool_main(&cli.database, run(&cli.database, cli.args)).await
}

async fn run(db_args: &DatabaseArgs, args: DemoArgs) -> anyhow::Result<()> {
    // Check the secret before doing anything.
    let (secret, generated) = match args.jwt.jwt_dev_secret.as_deref().filter(|s| !s.is_empty()) {
        Some(secret) if secret.len() < MIN_SECRET_LEN => {
            bail!("the development secret must be at least {MIN_SECRET_LEN} bytes long")
        }
        Some(secret) => (secret.to_owned(), false),
        None => (
            format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple()),
            true,
        ),
    };
    let export_dir = args.export_dir.clone().unwrap_or_else(|| {
        db_args
            .data_dir
            .clone()
            .unwrap_or_else(embedded::default_data_dir)
            .join("exports")
    });

    let db = cim::cli::open_database(db_args).await?;
    let embedded = db.is_embedded();
    let result = drive(&db, &args, &export_dir).await;
    // Stop the embedded cluster (if we started it) also after a failure.
    let closed = db.close().await;
    let (summary, export, counts) = result?;
    closed?;

    print_report(
        db_args,
        &args,
        embedded,
        &export_dir,
        &summary,
        &export,
        &counts,
        &secret,
        generated,
    )
}

async fn drive(
    db: &Database,
    args: &DemoArgs,
    export_dir: &std::path::Path,
) -> anyhow::Result<(CohortSummary, ExportReport, Counts)> {
    let store = EventStore::new(db.pool.clone(), log::upcasters());
    let handler = CommandHandler::new(store.clone());
    let now = chrono::Utc::now();
    app::seed_pilot_programs(&handler, demo::DEMO_ADMIN, now)
        .await
        .context("cannot seed the pilot programs")?;
    let programs = demo::assign_coordinators(&handler, now)
        .await
        .context("cannot assign the demo coordinators")?;
    let summary = demo::drive_cohort(&handler, &programs, args.students as usize, args.seed, now)
        .await
        .context("a demo student's command failed")?;

    let fake = FakeLadok::start()
        .await
        .context("cannot start the fake Ladok")?;
    let mut config = WorkerConfig::new(export_dir);
    config.ladok = Some(fake.config());
    let outcome = schedule::run_export(&store, &config)
        .await
        .context("the export run failed")?;
    let export = match outcome {
        RunOutcome::Busy => bail!("another process is exporting; run `cim-demo` again later"),
        RunOutcome::Ran {
            completed,
            files_written,
            delivered,
            failed,
        } => ExportReport {
            batches: completed.iter().map(|b| config.batch_dir(*b)).collect(),
            files_written,
            delivered,
            failed,
        },
    };
    drop(fake);

    let (events, portfolio_events, approved, revoked): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), \
                count(*) FILTER (WHERE stream_id LIKE 'portfolio-%'), \
                count(*) FILTER (WHERE event_type = 'CertificateApproved'), \
                count(*) FILTER (WHERE event_type = 'CertificateRevoked') \
         FROM events",
    )
    .fetch_one(&db.pool)
    .await
    .context("cannot count the events")?;
    Ok((
        summary,
        export,
        Counts {
            events,
            portfolio_events,
            approved,
            revoked,
        },
    ))
}

#[allow(clippy::too_many_arguments)]
fn print_report(
    db_args: &DatabaseArgs,
    args: &DemoArgs,
    embedded: bool,
    export_dir: &std::path::Path,
    summary: &CohortSummary,
    export: &ExportReport,
    counts: &Counts,
    secret: &str,
    generated: bool,
) -> anyhow::Result<()> {
    let token_with =
        |role: Role, subject: &str, programs: Vec<String>, profile: cim::http::auth::Profile| {
            dev_token(&DevToken {
                secret,
                issuer: &args.jwt.jwt_issuer,
                audience: &args.jwt.jwt_audience,
                role,
                subject,
                programs,
                now: chrono::Utc::now(),
                ttl: chrono::Duration::hours(12),
                profile,
            })
            .context("cannot sign a development token")
        };
    let token = |role: Role, subject: &str, programs: Vec<String>| {
        token_with(role, subject, programs, Default::default())
    };
    let base = format!("http://{}", args.listen);

    println!("cim-demo (seed {})", args.seed);
    println!();
    println!("cohort:");
    println!(
        "  students:        {} over {} programs ({} new portfolio events this run)",
        summary.students.len(),
        summary.programs.len(),
        summary.new_events
    );
    for (label, path) in [
        ("certified", StudentPath::Certified),
        ("late, extended", StudentPath::Late),
        ("rejected, then approved", StudentPath::RejectedThenApproved),
        ("certified, then revoked", StudentPath::Revoked),
        ("in progress", StudentPath::InProgress),
        ("dropped off", StudentPath::DroppedOff),
    ] {
        println!("  {label:<24} {}", summary.count(path));
    }
    println!();
    println!("event log (whole database):");
    println!(
        "  events:          {} ({} on portfolios)",
        counts.events, counts.portfolio_events
    );
    println!(
        "  certificates:    {} approved, {} revoked",
        counts.approved, counts.revoked
    );
    println!();
    println!("export (fake Ladok in-process):");
    if export.batches.is_empty() {
        println!(
            "  no new batch: nothing was approved or revoked since the last one (earlier batches are in {})",
            export_dir.display()
        );
    }
    for dir in &export.batches {
        let batch_id = dir.file_name().map(|n| n.to_string_lossy().into_owned());
        println!("  batch id:        {}", batch_id.unwrap_or_default());
        println!("  batch folder:    {}", dir.display());
    }
    println!(
        "  {} file(s) written, {} certificate(s) delivered to the fake Ladok, {} delivery failure(s)",
        export.files_written, export.delivered, export.failed
    );
    println!();

    println!("start the API on the same database:");
    if generated {
        println!("  export CIM_JWT_DEV_SECRET={secret}");
    } else {
        println!("  (CIM_JWT_DEV_SECRET is taken from your environment)");
    }
    let location = if embedded {
        let dir = db_args
            .data_dir
            .clone()
            .unwrap_or_else(embedded::default_data_dir);
        format!("--data-dir {} ", dir.display())
    } else {
        "(with the same DATABASE_URL) ".to_owned()
    };
    println!(
        "  cargo run --release -- {location}serve --listen {}",
        args.listen
    );
    println!();
    println!("then open the web console and pick a demo person on its development sign-in page:");
    println!("  {base}/console");
    println!(
        "  (coordinators coord-<program code>, registrar-demo, admin-demo, and the cohort's students)"
    );
    println!();

    println!("development tokens (12 hours) and what to try:");
    if let Some(student) = summary
        .students
        .iter()
        .find(|s| s.path == StudentPath::Certified)
        .or(summary.students.first())
    {
        println!(
            "  student {} (portfolio {}):",
            student.student_uid, student.portfolio_id
        );
        println!(
            "    curl -H \"Authorization: Bearer {}\" {base}/me/portfolios",
            token(Role::Student, &student.student_uid.to_string(), Vec::new())?
        );
    }
    if let Some(program) = summary.programs.first() {
        // A student who is not in the cohort yet. Their names come from the token (as a university's
        // identity provider issues them); the identity number from Ladok, typed here because the
        // demo has no Ladok (docs/identity.md).
        let newcomer = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            format!("cim-demo newcomer {}", args.seed).as_bytes(),
        );
        let number = cim::domain::values::IdentityNumber::with_check_digit("19991231998")
            .context("the demo newcomer's identity number")?;
        let t = token_with(
            Role::Student,
            &newcomer.to_string(),
            Vec::new(),
            cim::http::auth::Profile {
                given_name: Some("Nova".into()),
                family_name: Some("Nyström".into()),
                email: Some("nova.nystrom@student.example.se".into()),
            },
        )?;
        let completion = chrono::Utc::now().date_naive() + chrono::Duration::days(400);
        println!(
            "  a new student enrolling in {} (names from the token):",
            program.code
        );
        println!(
            "    curl -X POST -H \"Authorization: Bearer {t}\" -H 'Content-Type: application/json' -d '{{\"student_uid\": \"{newcomer}\", \"identity_number\": \"{}\", \"expected_completion\": \"{completion}\"}}' {base}/programs/{}/portfolios",
            number.as_str(),
            program.id
        );
        println!(
            "  coordinator {} of {} (program {}):",
            program.coordinator, program.code, program.id
        );
        let t = token(
            Role::Coordinator,
            &program.coordinator.to_string(),
            vec![program.code.to_string()],
        )?;
        println!(
            "    curl -H \"Authorization: Bearer {t}\" {base}/programs/{}/review-queue",
            program.id
        );
        println!(
            "    curl -H \"Authorization: Bearer {t}\" {base}/programs/{}/statistics",
            program.id
        );
    }
    println!("  registrar registrar-demo:");
    println!(
        "    curl -H \"Authorization: Bearer {}\" {base}/certificates",
        token(Role::Registrar, "registrar-demo", Vec::new())?
    );
    println!("  admin {}:", demo::DEMO_ADMIN);
    println!(
        "    curl -H \"Authorization: Bearer {}\" {base}/statistics",
        token(Role::Admin, demo::DEMO_ADMIN, Vec::new())?
    );
    println!("  the API's description: {base}/openapi.json");
    Ok(())
}
