//! The soak's clients: students from enrolment to the certificate, a coordinator per program working
//! through the review queue, and the registrar exporting. Every request states the one status it
//! must get; [`Traffic::call`] records it as done or as an error.

use super::figures::{Counts, Recorder};
use crate::demo::english;
use crate::domain::{ProgramId, StaffId};
use crate::http::auth::{DEFAULT_AUDIENCE, DEFAULT_ISSUER, DevToken, Role, dev_token};
use chrono::{TimeDelta, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashSet;
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
    crate::domain::values::IdentityNumber::with_check_digit(&format!(
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

    /// A student, one portfolio after the other.
    async fn student(self: Arc<Self>, worker: usize) {
        let mut round = 0;
        while !self.stopping() {
            let program = self.programs[(worker + round) % self.programs.len()];
            round += 1;
            if self.one_student(program).await.is_none() && !self.stopping() {
                // The failed step is recorded; do not hammer a server that fails.
                self.pause(Duration::from_millis(500)).await;
            }
        }
    }

    /// From enrolment to the certificate (`None`: a step failed, or the run ended).
    async fn one_student(&self, program: ProgramId) -> Option<()> {
        let uid = Uuid::new_v4().to_string();
        let token = self.token(Role::Student, &uid, Vec::new())?;
        let today = Utc::now().date_naive();
        let n = self.counters.enrolled.fetch_add(1, Ordering::Relaxed);
        let open = json!({
            "student_uid": uid,
            "identity_number": soak_identity_number(n),
            "given_names": "Tolvan",
            "family_name": "Tolvansson",
            "email": "tolvan@student.example.se",
            "expected_completion": today + TimeDelta::days(365),
        })
        .to_string();
        let opened = self
            .call(
                Method::POST,
                "/programs/{id}/portfolios",
                &format!("/programs/{program}/portfolios"),
                Some(&token),
                Some(&open),
                StatusCode::CREATED,
            )
            .await?;
        self.counters
            .portfolios_opened
            .fetch_add(1, Ordering::Relaxed);
        let portfolio = format!("/portfolios/{}", opened["view"]["portfolio_id"].as_str()?);
        self.read(&portfolio, &token).await?;

        let mut activities = Vec::new();
        for (k, item) in ITEMS.iter().enumerate() {
            let ended = today - TimeDelta::days(20 + 5 * k as i64);
            let body = json!({
                "item": item,
                "started_on": ended - TimeDelta::days(2),
                "ended_on": ended,
                "description": "Two evenings a week with students from abroad.",
            })
            .to_string();
            let view = self
                .post(
                    "/portfolios/{id}/activities",
                    &format!("{portfolio}/activities"),
                    &token,
                    &body,
                )
                .await?;
            let last = view["view"]["activities"].as_array()?.last()?;
            activities.push(format!(
                "{portfolio}/activities/{}",
                last["activity_id"].as_str()?
            ));
        }
        self.bad_requests(&portfolio, &activities[0], &token).await;
        for activity in &activities {
            self.post(
                "/portfolios/{id}/activities/{id}/reflection",
                &format!("{activity}/reflection"),
                &token,
                &self.reflection,
            )
            .await?;
            self.read(&portfolio, &token).await?;
        }
        self.wait_for(&portfolio, &token, |view| {
            view["activities"]
                .as_array()
                .is_some_and(|a| a.iter().all(|a| a["status"] == "approved"))
        })
        .await?;
        self.post(
            "/portfolios/{id}/final-reflection",
            &format!("{portfolio}/final-reflection"),
            &token,
            &self.final_reflection,
        )
        .await?;
        self.wait_for(&portfolio, &token, |view| {
            view["final_reflection"]["status"] == "approved"
        })
        .await?;
        self.post(
            "/portfolios/{id}/application",
            &format!("{portfolio}/application"),
            &token,
            "{}",
        )
        .await?;
        self.wait_for(&portfolio, &token, |view| view["phase"] == "certified")
            .await?;
        self.get(
            "/me/portfolios",
            "/me/portfolios",
            Some(&token),
            StatusCode::OK,
        )
        .await?;
        Some(())
    }

    async fn read(&self, portfolio: &str, token: &str) -> Option<Value> {
        self.get("/portfolios/{id}", portfolio, Some(token), StatusCode::OK)
            .await
    }

    /// Reads the portfolio until `done(view)`; a review that does not come in time is an error.
    async fn wait_for(
        &self,
        portfolio: &str,
        token: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Option<()> {
        let deadline = Instant::now() + REVIEW_TIMEOUT;
        loop {
            let answer = self.read(portfolio, token).await?;
            if done(&answer["view"]) {
                return Some(());
            }
            if self.stopping() {
                return None;
            }
            if Instant::now() > deadline {
                self.recorder.error(format!(
                    "a review did not come within {} s",
                    REVIEW_TIMEOUT.as_secs()
                ));
                return None;
            }
            self.pause(POLL).await;
        }
    }

    /// Requests that must be refused, each with its own status: a reflection outside its band
    /// (422), malformed JSON (400), no token (401), a student approving (403), a portfolio that does
    /// not exist (404) and a path that is not a portfolio id (400).
    async fn bad_requests(&self, portfolio: &str, activity: &str, token: &str) {
        let post = |route: &'static str, path: String, body: &'static str, expected| async move {
            self.call(
                Method::POST,
                route,
                &path,
                Some(token),
                Some(body),
                expected,
            )
            .await
        };
        self.call(
            Method::POST,
            "/portfolios/{id}/activities/{id}/reflection",
            &format!("{activity}/reflection"),
            Some(token),
            Some(&self.short_reflection),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        post(
            "/portfolios/{id}/activities",
            format!("{portfolio}/activities"),
            "{\"item\": ",
            StatusCode::BAD_REQUEST,
        )
        .await;
        post(
            "/portfolios/{id}/activities/{id}/reflection/approve",
            format!("{activity}/reflection/approve"),
            "{}",
            StatusCode::FORBIDDEN,
        )
        .await;
        self.get(
            "/portfolios/{id}",
            portfolio,
            None,
            StatusCode::UNAUTHORIZED,
        )
        .await;
        self.get(
            "/portfolios/{id}",
            &format!("/portfolios/{}", Uuid::new_v4()),
            Some(token),
            StatusCode::NOT_FOUND,
        )
        .await;
        self.get(
            "/portfolios/{id}",
            "/portfolios/not-a-portfolio",
            Some(token),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }

    /// A coordinator: reads the program's review queue, looks at each waiting portfolio and approves
    /// what waits. Entries already handled are remembered, since the queue (a read model) may show
    /// them for a moment after the approval.
    async fn coordinator(self: Arc<Self>, k: usize) {
        let program = self.programs[k];
        // No program groups: the program's stream, which assigns this coordinator, decides.
        let Some(token) = self.token(Role::Coordinator, self.coordinators[k].as_str(), Vec::new())
        else {
            return;
        };
        let queue = format!("/programs/{program}/review-queue?limit=100");
        let mut handled: HashSet<i64> = HashSet::new();
        while !self.stopping() {
            let Some(page) = self
                .get(
                    "/programs/{id}/review-queue",
                    &queue,
                    Some(&token),
                    StatusCode::OK,
                )
                .await
            else {
                self.pause(Duration::from_millis(500)).await;
                continue;
            };
            let mut acted = false;
            for entry in page["items"].as_array().into_iter().flatten() {
                let Some(position) = entry["position"].as_i64() else {
                    continue;
                };
                if self.stopping() || !handled.insert(position) {
                    continue;
                }
                acted = true;
                self.review(entry, &token).await;
            }
            if !acted {
                self.pause(Duration::from_millis(300)).await;
            }
        }
    }

    /// Looks at the portfolio, then approves the queue entry.
    async fn review(&self, entry: &Value, token: &str) -> Option<()> {
        let portfolio = format!("/portfolios/{}", entry["portfolio_id"].as_str()?);
        self.read(&portfolio, token).await?;
        let (route, path) = match entry["kind"].as_str()? {
            "reflection" => (
                "/portfolios/{id}/activities/{id}/reflection/approve",
                format!(
                    "{portfolio}/activities/{}/reflection/approve",
                    entry["activity_id"].as_str()?
                ),
            ),
            "final_reflection" => (
                "/portfolios/{id}/final-reflection/approve",
                format!("{portfolio}/final-reflection/approve"),
            ),
            _ => (
                "/portfolios/{id}/application/approve",
                format!("{portfolio}/application/approve"),
            ),
        };
        self.post(route, &path, token, "{}").await?;
        self.counters.reviews.fetch_add(1, Ordering::Relaxed);
        if entry["kind"] == "application" {
            self.counters.certificates.fetch_add(1, Ordering::Relaxed);
        }
        Some(())
    }

    /// The registrar: an export run every `every`, then a look at the certificates and batches.
    async fn registrar(self: Arc<Self>, every: Duration) {
        let Some(token) = self.token(Role::Registrar, "registrar-soak", Vec::new()) else {
            return;
        };
        loop {
            self.pause(every).await;
            if self.stopping() {
                return;
            }
            let run = self
                .call(
                    Method::POST,
                    "/exports/run",
                    "/exports/run",
                    Some(&token),
                    None,
                    StatusCode::OK,
                )
                .await;
            if run.is_some() {
                self.counters.export_runs.fetch_add(1, Ordering::Relaxed);
            }
            self.get(
                "/certificates",
                "/certificates?limit=50",
                Some(&token),
                StatusCode::OK,
            )
            .await;
            self.get(
                "/exports/batches",
                "/exports/batches?limit=20",
                Some(&token),
                StatusCode::OK,
            )
            .await;
        }
    }
}
