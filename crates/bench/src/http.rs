//! Sections 3, 4, 7 and the live lag of 5: real HTTP against a `cim serve` child, with real
//! development JWTs. The portfolios are prepared by copying one made by the command handler
//! (corpus.rs), so each command has an activity of its own to reflect on.

use super::corpus::Template;
use super::fixtures::{self, OpenPortfolio};
use super::load::{OpError, closed_loop};
use super::report::{CommandFigure, LagFigure, MemoryFigure, ReadFigure};
use super::serve::{Memory, ServeChild};
use super::stats::{Latencies, rate, ratio};
use anyhow::Context;
use chrono::Utc;
use cim::http::auth::{DEFAULT_AUDIENCE, DEFAULT_ISSUER, DevToken, Role, dev_token};
use cim::projections;
use sqlx::PgPool;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How much HTTP work to do.
#[derive(Debug, Clone, Copy)]
pub struct HttpPlan {
    /// Portfolios prepared (each with one activity per catalog item), shared out equally to the
    /// phases: enough that no phase runs out of reflections to submit.
    pub portfolios: usize,
    /// Closed-loop phases: (clients, duration).
    pub phases: [(usize, Duration); 2],
    /// Open-loop reads: offered rate and duration.
    pub read_rate: f64,
    pub read_duration: Duration,
}

/// Everything the HTTP sections measured.
#[derive(Debug)]
pub struct HttpResults {
    pub commands: Vec<CommandFigure>,
    pub read: ReadFigure,
    pub lag: LagFigure,
    pub memory: MemoryFigure,
}

/// One prepared reflection: its URL and the student's token.
struct Job {
    url: String,
    token: Arc<str>,
}

pub async fn run(
    pool: &PgPool,
    url: &str,
    plan: HttpPlan,
    baseline: impl Fn(usize) -> f64,
    data_dir: &Path,
) -> anyhow::Result<HttpResults> {
    let now = Utc::now();
    let handler = fixtures::handler(pool);
    let open = fixtures::open_portfolio(&handler, now).await?;
    let template = Template::load(
        pool,
        &format!("stream_id = '{}'", open.portfolio.stream_id()),
    )
    .await?;
    template
        .copy_into(pool, 1, template.len() * plan.portfolios)
        .await
        .context("copying the bench portfolios")?;

    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let serve = ServeChild::start(url, &secret, data_dir).await?;
    let result = drive(pool, &serve, &template, &open, &secret, plan, baseline).await;
    let stopped = serve.stop().await;
    let results = result?;
    stopped?;
    Ok(results)
}

async fn drive(
    pool: &PgPool,
    serve: &ServeChild,
    template: &Template,
    open: &OpenPortfolio,
    secret: &str,
    plan: HttpPlan,
    baseline: impl Fn(usize) -> f64,
) -> anyhow::Result<HttpResults> {
    wait_caught_up(pool).await?;
    // Idle: started, caught up with the prepared log, and left alone for a moment.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = serve.memory()?;

    // Tokens per student, then the reflections each phase submits.
    let mut portfolios = Vec::new();
    for copy in 1..=plan.portfolios as u64 {
        let portfolio = template.remapped(*open.portfolio.as_uuid(), copy);
        let student = template.remapped(*open.student.as_uuid(), copy);
        let token: Arc<str> = dev_token(&DevToken {
            secret,
            issuer: DEFAULT_ISSUER,
            audience: DEFAULT_AUDIENCE,
            role: Role::Student,
            subject: &student.to_string(),
            programs: Vec::new(),
            now: Utc::now(),
            ttl: chrono::Duration::minutes(60),
            profile: Default::default(),
        })?
        .into();
        portfolios.push((copy, portfolio, token));
    }
    // Each phase has students of its own, an equal share: a phase that ran out of reflections
    // would measure a second of start-up and ramp-down instead of its clients' steady rate. Within
    // a phase the reflections go activity by activity across its students, so concurrent clients
    // write to different streams as real students do, and a student comes back only after all the
    // phase's others, still within what the service's caches hold (a few thousand streams, as many
    // as the students active at one time).
    let mut shares: Vec<Vec<Job>> = Vec::new();
    let mut students = portfolios.iter();
    for _ in plan.phases {
        let own: Vec<_> = students
            .by_ref()
            .take(plan.portfolios / plan.phases.len())
            .collect();
        let mut jobs = Vec::new();
        for activity in &open.activities {
            for (copy, portfolio, token) in &own {
                let activity = template.remapped(*activity.as_uuid(), *copy);
                jobs.push(Job {
                    url: format!(
                        "{}/portfolios/{portfolio}/activities/{activity}/reflection",
                        serve.base
                    ),
                    token: token.clone(),
                });
            }
        }
        shares.push(jobs);
    }
    // The reads go to the students of the last phase: students who just submitted look at their
    // portfolio, and the service holds the folds of the students active at one time.
    let readers = plan.portfolios / plan.phases.len();
    let portfolios: Vec<(String, Arc<str>)> = portfolios[portfolios.len() - readers..]
        .iter()
        .map(|(_, p, t)| (format!("{}/portfolios/{p}", serve.base), t.clone()))
        .collect();
    let body = Arc::new(
        serde_json::json!({"format": "written", "text": fixtures::reflection_text(1)})
            .to_string()
            .into_bytes(),
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(30))
        .build()?;

    let sampling = Arc::new(AtomicBool::new(true));
    let lag_task = tokio::spawn(sample_lag(pool.clone(), sampling.clone()));
    let mut peak_rss = idle.rss_mib;
    let mut commands = Vec::new();
    for ((clients, duration), jobs) in plan.phases.into_iter().zip(shares) {
        let jobs = Arc::new(jobs);
        let next = Arc::new(AtomicUsize::new(0));
        let (body, client) = (body.clone(), client.clone());
        let phase = tokio::spawn(closed_loop(clients, duration, move |_, _| {
            let (jobs, next, body, client) =
                (jobs.clone(), next.clone(), body.clone(), client.clone());
            async move {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else {
                    return Err(OpError::Stop);
                };
                let answer = client
                    .post(&job.url)
                    .bearer_auth(&job.token)
                    .header("content-type", "application/json")
                    .body(body.as_ref().clone())
                    .send()
                    .await?;
                let status = answer.status();
                answer.bytes().await?;
                if status != reqwest::StatusCode::OK {
                    return Err(OpError::Failed(anyhow::anyhow!("answered {status}")));
                }
                Ok(0)
            }
        }));
        let phase = watch_memory(serve, phase, &mut peak_rss).await??;
        let commands_per_s = rate(phase.completed, phase.elapsed);
        let summary = phase.latencies.summary();
        commands.push(CommandFigure {
            clients,
            commands: phase.completed,
            commands_per_s,
            p50_ms: summary.p50_ms,
            p99_ms: summary.p99_ms,
            errors: phase.errors,
            ratio_to_baseline: ratio(commands_per_s, baseline(clients)),
        });
    }
    sampling.store(false, Ordering::Relaxed);
    let lag = lag_task.await??;
    wait_caught_up(pool).await?;

    let metrics_url = format!("{}/metrics", serve.base);
    let served_before = served_reads(&client, &metrics_url).await?;
    let reads = tokio::spawn(open_loop_reads(
        client.clone(),
        Arc::new(portfolios),
        plan.read_rate,
        plan.read_duration,
    ));
    let mut read = watch_memory(serve, reads, &mut peak_rss).await??;
    let served = served_reads(&client, &metrics_url)
        .await?
        .since(&served_before);
    read.server_p99_ms = served.quantile_ms(0.99);
    read.server_under_5ms = served.share_within(0.005);
    let loaded = serve.memory()?;
    Ok(HttpResults {
        commands,
        read,
        lag,
        memory: MemoryFigure {
            idle_rss_mib: idle.rss_mib,
            idle_hwm_mib: idle.hwm_mib,
            load_rss_max_mib: peak_rss.max(loaded.rss_mib),
            load_hwm_mib: loaded.hwm_mib,
        },
    })
}

/// Awaits `task` while sampling the child's resident memory every 50 ms.
async fn watch_memory<T>(
    serve: &ServeChild,
    mut task: tokio::task::JoinHandle<T>,
    peak_rss: &mut f64,
) -> anyhow::Result<T> {
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            done = &mut task => return Ok(done?),
            _ = tick.tick() => {
                let Memory { rss_mib, .. } = serve.memory()?;
                *peak_rss = peak_rss.max(rss_mib);
            }
        }
    }
}

/// Portfolio GETs at a fixed offered rate, whatever the answers take (open loop): a request's
/// latency counts from when it was due, so a stall shows as the delay it causes to every request
/// behind it instead of hiding it (no coordinated omission).
async fn open_loop_reads(
    client: reqwest::Client,
    portfolios: Arc<Vec<(String, Arc<str>)>>,
    offered_per_s: f64,
    duration: Duration,
) -> anyhow::Result<ReadFigure> {
    let total = (offered_per_s * duration.as_secs_f64()).round() as usize;
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / offered_per_s);
        tokio::time::sleep_until(due).await;
        let (client, portfolios) = (client.clone(), portfolios.clone());
        tasks.spawn(async move {
            let (url, token) = &portfolios[i % portfolios.len()];
            let ok = match client.get(url).bearer_auth(token).send().await {
                Ok(r) => r.status() == reqwest::StatusCode::OK && r.bytes().await.is_ok(),
                Err(_) => false,
            };
            (due.elapsed(), ok)
        });
    }
    let mut latencies = Latencies::with_capacity(total);
    let mut errors = 0;
    while let Some(done) = tasks.join_next().await {
        let (latency, ok) = done?;
        if ok {
            latencies.record(latency);
        } else {
            errors += 1;
        }
    }
    let elapsed = start.elapsed();
    let summary = latencies.summary();
    Ok(ReadFigure {
        offered_per_s,
        requests: total,
        achieved_per_s: rate(summary.count, elapsed),
        p50_ms: summary.p50_ms,
        p99_ms: summary.p99_ms,
        p999_ms: summary.p999_ms,
        errors,
        server_p99_ms: None,
        server_under_5ms: None,
    })
}

/// The server's own latency histogram of `GET /portfolios/{portfolio_id}` (cumulative counts per
/// upper bound in seconds), from its `/metrics`: what the server spent, against what the client
/// waited, tells queueing in front of the server from work inside it.
#[derive(Debug, Default)]
struct Served {
    buckets: Vec<(f64, f64)>,
}

impl Served {
    fn since(&self, before: &Served) -> Served {
        let earlier = |bound: f64| {
            before
                .buckets
                .iter()
                .find(|(b, _)| *b == bound)
                .map_or(0.0, |(_, n)| *n)
        };
        Served {
            buckets: self
                .buckets
                .iter()
                .map(|(bound, n)| (*bound, n - earlier(*bound)))
                .collect(),
        }
    }

    fn total(&self) -> f64 {
        self.buckets.last().map_or(0.0, |(_, n)| *n)
    }

    /// The upper bound of the bucket holding quantile `q` (an upper estimate, in ms).
    fn quantile_ms(&self, q: f64) -> Option<f64> {
        let wanted = q * self.total();
        (self.total() > 0.0)
            .then(|| self.buckets.iter().find(|(_, n)| *n >= wanted))
            .flatten()
            .map(|(bound, _)| bound * 1000.0)
    }

    /// The share of requests the server answered within `seconds` (a bucket bound).
    fn share_within(&self, seconds: f64) -> Option<f64> {
        let within = self.buckets.iter().find(|(b, _)| *b == seconds)?.1;
        (self.total() > 0.0).then(|| within / self.total())
    }
}

async fn served_reads(client: &reqwest::Client, url: &str) -> anyhow::Result<Served> {
    let text = client.get(url).send().await?.text().await?;
    let mut buckets = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("cim_http_request_duration_seconds_bucket{") else {
            continue;
        };
        if !rest.contains("method=\"GET\"")
            || !rest.contains("route=\"/portfolios/{portfolio_id}\"")
            || !rest.contains("status=\"200\"")
        {
            continue;
        }
        let Some((labels, count)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Some(bound) = labels
            .split("le=\"")
            .nth(1)
            .and_then(|b| b.split('"').next())
        else {
            continue;
        };
        let bound = if bound == "+Inf" {
            f64::INFINITY
        } else {
            bound.parse()?
        };
        buckets.push((bound, count.trim().parse()?));
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(Served { buckets })
}

/// How far the slowest projection is behind: the age of the oldest committed event it has not
/// applied yet (zero when it is caught up), by the database's clock, sampled every 10 ms.
async fn sample_lag(pool: PgPool, running: Arc<AtomicBool>) -> anyhow::Result<LagFigure> {
    let mut lags = Latencies::default();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while running.load(Ordering::Relaxed) {
        tick.tick().await;
        let seconds: f64 = sqlx::query_scalar(
            // Per projection, how long ago the first event after its checkpoint (in the tailing
            // order) was recorded. Taken by walking the tail index from the checkpoint: a `min()`
            // over all later events lets the planner walk the `recorded_at` index instead, through
            // the whole log when nothing is behind, which cost the server more than the commands
            // this measures.
            "SELECT COALESCE(max(EXTRACT(EPOCH FROM clock_timestamp() - next_unapplied)), 0)::float8
             FROM (SELECT (SELECT e.recorded_at FROM events e
                           WHERE (e.transaction_id, e.position)
                                 > (c.transaction_id::text::xid8, c.position)
                           ORDER BY e.transaction_id, e.position
                           LIMIT 1) AS next_unapplied
                   FROM projection_checkpoints c) behind",
        )
        .fetch_one(&pool)
        .await?;
        lags.record(Duration::from_secs_f64(seconds.max(0.0)));
    }
    let summary = lags.summary();
    Ok(LagFigure {
        samples: summary.count,
        p50_ms: summary.p50_ms,
        p99_ms: summary.p99_ms,
        max_ms: summary.max_ms,
    })
}

/// Waits until every projection is live and has applied the whole log.
async fn wait_caught_up(pool: &PgPool) -> anyhow::Result<()> {
    let expected = projections::all().len() as i64;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (live, behind): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status = 'live'),
                    COALESCE(max((SELECT count(*) FROM events e
                                  WHERE (e.transaction_id, e.position)
                                        > (c.transaction_id::text::xid8, c.position))), 0)
             FROM projection_checkpoints c",
        )
        .fetch_one(pool)
        .await?;
        if live == expected && behind == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the projections of cim serve did not catch up within 300 s ({live} live, {behind} behind)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
