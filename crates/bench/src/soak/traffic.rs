//! The soak's clients: students from enrolment to the certificate, a coordinator per program working
//! through the review queue, and the registrar exporting. Every request states the one status it
//! must get; [`Traffic::call`] records it as done or as an error.

mod staff;
mod student;

use super::figures::{Counts, Recorder};
use chrono::{TimeDelta, Utc};
use cim::domain::{ProgramId, StaffId};
use cim::http::auth::{DEFAULT_AUDIENCE, DEFAULT_ISSUER, DevToken, Role, dev_token};
use cim_demo::english;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Three activities on different catalog items: what a certificate needs by default.
const ITEMS: [&str; 3] = ["language-cafe", "tedx", "course-in-global-health"];

/// How long a student waits for a review before the soak calls it an error.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(120);

/// How often a waiting student reads their portfolio.
const POLL: Duration = Duration::from_millis(400);

/// A command that lost a race (`409 conflict`: another change to the same portfolio landed twice
/// in a row) is sent again with the same `Idempotency-Key`, as a client should, this many times.
const CONFLICT_RETRIES: usize = 3;

#[derive(Debug, Default)]
struct Counters {
    /// Students enrolled so far: the next one's identity number (one number per student).
    enrolled: AtomicUsize,
    portfolios_opened: AtomicUsize,
    certificates: AtomicUsize,
    reviews: AtomicUsize,
    export_runs: AtomicUsize,
    refusals: AtomicUsize,
    conflicts_retried: AtomicUsize,
}

/// Everything the clients share.
#[derive(Debug)]
pub struct Traffic {
    http: reqwest::Client,
    base: String,
    secret: String,
    programs: Vec<ProgramId>,
    coordinators: Vec<StaffId>,
    recorder: Arc<Recorder>,
    stop: Arc<AtomicBool>,
    token_ttl: Duration,
    counters: Counters,
    /// Request bodies, made once: a 1,000-word reflection, a 642-word one (refused), and a
    /// 3,000-word final reflection.
    reflection: String,
    short_reflection: String,
    final_reflection: String,
}

/// A distinct valid identity number for the `n`-th student of a soak (a service holds one number per
/// student): birth dates from 1 January 1970 on, serials 001 to 999 on each day.
fn soak_identity_number(n: usize) -> String {
    let day = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("a real date")
        + TimeDelta::days((n / 999) as i64);
    let serial = 1 + n % 999;
    cim::domain::values::IdentityNumber::with_check_digit(&format!(
        "{}{serial:03}",
        day.format("%Y%m%d")
    ))
    .expect("a real date and a serial from 001")
    .as_str()
    .to_owned()
}

impl Traffic {
    pub fn new(
        base: &str,
        secret: &str,
        programs: &[ProgramId],
        coordinator: fn(usize) -> StaffId,
        recorder: Arc<Recorder>,
        stop: Arc<AtomicBool>,
        token_ttl: Duration,
    ) -> anyhow::Result<Self> {
        let written = |words: usize, variant: usize| {
            json!({"format": "written", "text": english(words, variant)}).to_string()
        };
        Ok(Self {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .timeout(Duration::from_secs(30))
                .build()?,
            base: base.to_owned(),
            secret: secret.to_owned(),
            programs: programs.to_vec(),
            coordinators: (0..programs.len()).map(coordinator).collect(),
            recorder,
            stop,
            token_ttl,
            counters: Counters::default(),
            reflection: written(1000, 1),
            short_reflection: written(642, 2),
            final_reflection: written(3000, 3),
        })
    }

    /// Starts `students` students, a coordinator per program and the registrar.
    pub fn spawn(self: &Arc<Self>, students: usize, export_every: Duration) -> Vec<JoinHandle<()>> {
        let mut tasks = Vec::new();
        for worker in 0..students {
            tasks.push(tokio::spawn(self.clone().student(worker)));
        }
        for k in 0..self.programs.len() {
            tasks.push(tokio::spawn(self.clone().coordinator(k)));
        }
        tasks.push(tokio::spawn(self.clone().registrar(export_every)));
        tasks
    }

    pub fn counts(&self) -> Counts {
        let c = &self.counters;
        let get = |a: &AtomicUsize| a.load(Ordering::Relaxed);
        Counts {
            portfolios_opened: get(&c.portfolios_opened),
            certificates: get(&c.certificates),
            reviews: get(&c.reviews),
            export_runs: get(&c.export_runs),
            refusals: get(&c.refusals),
            conflicts_retried: get(&c.conflicts_retried),
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps `how_long`, or less when the run ends meanwhile.
    async fn pause(&self, how_long: Duration) {
        let until = Instant::now() + how_long;
        while !self.stopping() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100).min(how_long)).await;
        }
    }

    fn token(&self, role: Role, subject: &str, programs: Vec<String>) -> Option<String> {
        let made = dev_token(&DevToken {
            secret: &self.secret,
            issuer: DEFAULT_ISSUER,
            audience: DEFAULT_AUDIENCE,
            role,
            subject,
            programs,
            now: Utc::now(),
            ttl: TimeDelta::from_std(self.token_ttl).unwrap_or(TimeDelta::hours(1)),
            profile: Default::default(),
        });
        match made {
            Ok(token) => Some(token),
            Err(e) => {
                self.recorder.error(format!("cannot sign a token: {e}"));
                None
            }
        }
    }

    /// One request. `route` is the path template, the only thing an error message names (never an
    /// id or a body). Answers the JSON body when the status was `expected`, else records an error.
    async fn call(
        &self,
        method: Method,
        route: &'static str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        expected: StatusCode,
    ) -> Option<Value> {
        // Commands carry a key, so a retry after a conflict is the same command.
        let key = Uuid::new_v4().to_string();
        for attempt in 0..=CONFLICT_RETRIES {
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.base));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header("idempotency-key", &key)
                    .body(body.to_owned());
            }
            let began = Instant::now();
            let answer = async {
                let response = request.send().await?;
                let status = response.status();
                Ok::<_, reqwest::Error>((status, response.bytes().await?))
            }
            .await;
            let latency = began.elapsed();
            let (status, bytes) = match answer {
                Ok(answer) => answer,
                Err(e) => {
                    let why = if e.is_timeout() {
                        "timed out"
                    } else {
                        "connection failed"
                    };
                    self.recorder
                        .failed(latency, format!("{method} {route}: {why}"));
                    return None;
                }
            };
            if status == expected {
                self.recorder.ok(latency);
                if !expected.is_success() {
                    self.counters.refusals.fetch_add(1, Ordering::Relaxed);
                }
                return Some(serde_json::from_slice(&bytes).unwrap_or(Value::Null));
            }
            let code = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v["code"].as_str().map(str::to_owned))
                .unwrap_or_default();
            if status == StatusCode::CONFLICT && code == "conflict" && attempt < CONFLICT_RETRIES {
                self.recorder.ok(latency);
                self.counters
                    .conflicts_retried
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            self.recorder.failed(
                latency,
                format!("{method} {route}: {status} {code} (expected {expected})"),
            );
            return None;
        }
        None
    }

    async fn get(
        &self,
        route: &'static str,
        path: &str,
        token: Option<&str>,
        expected: StatusCode,
    ) -> Option<Value> {
        self.call(Method::GET, route, path, token, None, expected)
            .await
    }

    async fn post(
        &self,
        route: &'static str,
        path: &str,
        token: &str,
        body: &str,
    ) -> Option<Value> {
        self.call(
            Method::POST,
            route,
            path,
            Some(token),
            Some(body),
            StatusCode::OK,
        )
        .await
    }

    async fn read(&self, portfolio: &str, token: &str) -> Option<Value> {
        self.get("/portfolios/{id}", portfolio, Some(token), StatusCode::OK)
            .await
    }
}
