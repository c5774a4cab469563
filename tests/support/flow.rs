//! Students, coordinators and an administrator driving `cim serve` over real HTTP, one command at a
//! time, for the tests of process faults and of several instances.
//!
//! Every command carries an `Idempotency-Key` and, on a portfolio, `If-Match` with the version the
//! previous answer reported, as a careful client sends them. Every attempt is kept in the
//! [`Api`]'s journal: the command ids the server derives from the key, what came back (or that
//! nothing did, because the connection broke), and enough to send it again unchanged.

use super::auth::token;
use super::texts;
use chrono::{NaiveDate, TimeDelta, Utc};
use cim::domain::ProgramId;
use cim::http::auth::Role;
use cim::http::command::command_id_for_key;
use serde_json::{Value, json};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use uuid::Uuid;

/// Longest a test client waits for one answer: far beyond any command, short enough that a hang
/// fails the test instead of stalling it.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// What came back for a command.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// The stream version of the `ETag` (portfolio and program answers).
    pub version: Option<i32>,
    pub body: Value,
}

/// One command as sent.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The base URL of the process it went to.
    pub base: String,
    pub path: String,
    pub subject: String,
    pub token: String,
    pub key: String,
    pub body: Value,
    pub if_match: Option<i32>,
    /// The command id the server derives from the key, caller and route.
    pub command_id: Uuid,
    /// The command ids its events are stored under: the command id itself, except for an erasure,
    /// whose one transaction appends an event per portfolio, each under an id derived from it.
    pub stored_as: Vec<Uuid>,
    /// `None`: no answer at all (connection refused or broken, as when the process is killed).
    pub answer: Option<Answer>,
}

impl Sent {
    pub fn succeeded(&self) -> bool {
        self.answer
            .as_ref()
            .is_some_and(|a| (200..300).contains(&a.status))
    }
}

/// A command that got no answer: the client does not know whether it took effect.
#[derive(Debug)]
pub struct NoAnswer(pub Sent);

/// The API of one or several `cim serve` processes.
#[derive(Debug)]
pub struct Api {
    http: reqwest::Client,
    bases: Vec<String>,
    journal: Mutex<Vec<Sent>>,
    in_flight: AtomicUsize,
}

impl Api {
    pub fn new(bases: Vec<String>) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(ANSWER_TIMEOUT)
                .build()
                .unwrap(),
            bases,
            journal: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Requests sent whose answer has not arrived yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Every command sent so far, in the order the attempts ended.
    pub fn journal(&self) -> Vec<Sent> {
        self.journal.lock().unwrap().clone()
    }

    /// Commands answered 2xx so far.
    pub fn succeeded(&self) -> usize {
        self.journal
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.succeeded())
            .count()
    }

    /// The base URL for a client's `turn`-th request: the processes in turn.
    fn base(&self, turn: usize) -> &str {
        &self.bases[turn % self.bases.len()]
    }

    /// Sends a new command (a fresh idempotency key) to the process of `turn`.
    pub async fn command(
        &self,
        turn: usize,
        path: &str,
        caller: &Caller,
        body: Value,
        if_match: Option<i32>,
        stored_as: impl FnOnce(Uuid) -> Vec<Uuid>,
    ) -> Result<Answer, NoAnswer> {
        let key = Uuid::new_v4().to_string();
        let command_id = command_id_for_key(&key, &caller.subject, "POST", path);
        let sent = Sent {
            base: self.base(turn).to_owned(),
            path: path.to_owned(),
            subject: caller.subject.clone(),
            token: caller.token.clone(),
            key,
            body,
            if_match,
            command_id,
            stored_as: stored_as(command_id),
            answer: None,
        };
        let sent = self.send(sent).await;
        self.journal.lock().unwrap().push(sent.clone());
        match sent.answer.clone() {
            Some(answer) => Ok(answer),
            None => Err(NoAnswer(sent)),
        }
    }

    /// Sends `sent` again, unchanged (same key, body and `If-Match`), to `base`.
    pub async fn resend(&self, sent: &Sent, base: &str) -> Sent {
        let again = Sent {
            base: base.to_owned(),
            answer: None,
            ..sent.clone()
        };
        self.send(again).await
    }

    async fn send(&self, mut sent: Sent) -> Sent {
        let mut request = self
            .http
            .post(format!("{}{}", sent.base, sent.path))
            .bearer_auth(&sent.token)
            .header("Idempotency-Key", &sent.key)
            .json(&sent.body);
        if let Some(version) = sent.if_match {
            request = request.header("If-Match", format!("\"{version}\""));
        }
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let answer = async {
            let response = request.send().await.ok()?;
            let status = response.status().as_u16();
            let version = response
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim_matches('"').parse().ok());
            let bytes = response.bytes().await.ok()?;
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            Some(Answer {
                status,
                version,
                body,
            })
        }
        .await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        sent.answer = answer;
        sent
    }
}

/// Who sends a command.
#[derive(Debug, Clone)]
pub struct Caller {
    pub subject: String,
    pub token: String,
}

impl Caller {
    /// A student whose token carries their names and e-mail, as a university's identity provider
    /// issues it: opening a portfolio takes them from there (docs/identity.md).
    pub fn student(uid: &str) -> Self {
        Self {
            subject: uid.to_owned(),
            token: super::auth::student_token_with_profile(
                uid,
                "Tolvan",
                "Tolvansson",
                "tolvan@student.example.se",
            ),
        }
    }

    /// A coordinator: their programs are those the programs' streams assign them.
    pub fn coordinator(staff: &str) -> Self {
        Self {
            subject: staff.to_owned(),
            token: token(Role::Coordinator, staff),
        }
    }

    pub fn admin(staff: &str) -> Self {
        Self {
            subject: staff.to_owned(),
            token: token(Role::Admin, staff),
        }
    }
}

/// One portfolio as its clients see it: the version of the last answer, sent as `If-Match` with
/// the next command, and whose turn it is, so that consecutive steps go to the processes in turn.
#[derive(Debug)]
pub struct Session<'a> {
    api: &'a Api,
    pub portfolio: String,
    pub version: i32,
    turn: usize,
}

impl Session<'_> {
    /// A command on this portfolio (`suffix` after `/portfolios/{id}`), expecting 2xx. Panics on any
    /// other answer: in these tests every step is one the rules accept.
    pub async fn step(
        &mut self,
        suffix: &str,
        caller: &Caller,
        body: Value,
    ) -> Result<Answer, NoAnswer> {
        let path = format!("/portfolios/{}{suffix}", self.portfolio);
        let answer = self
            .api
            .command(self.turn, &path, caller, body, Some(self.version), |id| {
                vec![id]
            })
            .await?;
        assert!(
            (200..300).contains(&answer.status),
            "POST {path} answered {}: {}",
            answer.status,
            answer.body
        );
        self.turn += 1;
        self.version = answer.version.expect("a portfolio answer has an ETag");
        Ok(answer)
    }
}

/// Opens a portfolio in `program` for student `uid` (the `n`-th student of the test, for a
/// distinct identity number), starting at the process of `turn`.
pub async fn open<'a>(
    api: &'a Api,
    turn: usize,
    program: ProgramId,
    uid: &str,
    n: u32,
) -> Result<Session<'a>, NoAnswer> {
    let path = format!("/programs/{program}/portfolios");
    // Names and e-mail come from the token; the number would come from Ladok, which these servers
    // are not configured with, so it is typed.
    let body = json!({
        "student_uid": uid,
        "identity_number": identity_number(n),
        "expected_completion": today() + TimeDelta::days(365),
    });
    let answer = api
        .command(turn, &path, &Caller::student(uid), body, None, |id| {
            vec![id]
        })
        .await?;
    assert_eq!(answer.status, 201, "POST {path}: {}", answer.body);
    Ok(Session {
        api,
        portfolio: answer.body["view"]["portfolio_id"]
            .as_str()
            .unwrap()
            .to_owned(),
        version: answer.version.unwrap(),
        turn: turn + 1,
    })
}

/// A new student's whole path to an approved certificate in `program`, with `coordinator`'s
/// decisions in between: 15 commands (open, the date's confirmation, three activities, three
/// reflections of three formats, their approvals, the final reflection and its approval, the
/// application and its approval).
/// Stops at the first command that got no answer. Returns the certificate id.
pub async fn certify(
    api: &Api,
    program: ProgramId,
    coordinator: &Caller,
    n: u32,
) -> Result<String, NoAnswer> {
    let uid = Uuid::now_v7().to_string();
    let student = Caller::student(&uid);
    let mut p = open(api, n as usize, program, &uid, n).await?;
    p.step("/expected-completion/confirm", coordinator, json!({}))
        .await?;
    let mut activities = Vec::new();
    for (i, item) in ["language-cafe", "tedx", "course-in-global-health"]
        .iter()
        .enumerate()
    {
        let answer = p
            .step("/activities", &student, activity(item, 30 - 5 * i as i64))
            .await?;
        let logged = answer.body["view"]["activities"].as_array().unwrap();
        activities.push(
            logged.last().unwrap()["activity_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let reflections = [
        json!({"format": "written", "text": texts::english(1000)}),
        json!({"format": "oral", "link": format!("https://{}/media/0_{n}", super::VIDEO_HOST), "duration_s": 170}),
        json!({"format": "written", "text": texts::english(950)}),
    ];
    for (a, reflection) in activities.iter().zip(reflections) {
        p.step(&format!("/activities/{a}/reflection"), &student, reflection)
            .await?;
    }
    for a in &activities {
        p.step(
            &format!("/activities/{a}/reflection/approve"),
            coordinator,
            json!({}),
        )
        .await?;
    }
    p.step(
        "/final-reflection",
        &student,
        json!({"format": "written", "text": texts::english(3000)}),
    )
    .await?;
    p.step("/final-reflection/approve", coordinator, json!({}))
        .await?;
    p.step("/application", &student, json!({})).await?;
    let approved = p
        .step("/application/approve", coordinator, json!({}))
        .await?;
    Ok(approved.body["view"]["certificate"]["certificate_id"]
        .as_str()
        .unwrap()
        .to_owned())
}

/// A student who opens a portfolio in each of `programs`, logs an activity in each, and is then
/// erased by an administrator: one request whose single transaction appends a `PersonalDataErased`
/// event to every portfolio.
pub async fn leave(api: &Api, programs: &[ProgramId], n: u32) -> Result<(), NoAnswer> {
    let uid = Uuid::now_v7().to_string();
    let student = Caller::student(&uid);
    let mut portfolios = Vec::new();
    for (i, program) in programs.iter().enumerate() {
        let mut p = open(api, n as usize + i, *program, &uid, n).await?;
        p.step("/activities", &student, activity("tedx", 10))
            .await?;
        portfolios.push(Uuid::parse_str(&p.portfolio).unwrap());
    }
    let path = format!("/students/{uid}/erasure");
    let answer = api
        .command(
            n as usize,
            &path,
            &Caller::admin("admin-1"),
            json!({"reason": "case 2026-117"}),
            None,
            // src/app/erasure.rs: one command per portfolio, its id derived from the request's.
            |id| {
                portfolios
                    .iter()
                    .map(|p| Uuid::new_v5(&id, p.as_bytes()))
                    .collect()
            },
        )
        .await?;
    assert_eq!(answer.status, 200, "POST {path}: {}", answer.body);
    assert_eq!(
        answer.body["portfolios"].as_array().unwrap().len(),
        programs.len()
    );
    Ok(())
}

pub fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// The body of an enrolment with everything typed, as a client sends it when Ladok is not asked:
/// `uid`'s portfolio with `identity_number`, the test student's names and e-mail, and an expected
/// completion a year from today.
pub fn enrolment(uid: &str, identity_number: &str) -> Value {
    json!({
        "student_uid": uid,
        "identity_number": identity_number,
        "given_names": "Tolvan",
        "family_name": "Tolvansson",
        "email": "tolvan@student.example.se",
        "expected_completion": today() + TimeDelta::days(365),
    })
}

/// A valid activity of catalog `item` that ended `days_ago` days ago.
pub fn activity(item: &str, days_ago: i64) -> Value {
    json!({
        "item": item,
        "started_on": today() - TimeDelta::days(days_ago + 2),
        "ended_on": today() - TimeDelta::days(days_ago),
        "description": "Two evenings a week with students from abroad.",
    })
}

/// A valid Swedish identity number (12 digits, Luhn checked) distinct for every `n` below 900 (serial 000 is not valid).
pub fn identity_number(n: u32) -> String {
    let eleven = format!("199501{:02}{:03}", 1 + n % 28, 100 + n % 900);
    cim::domain::values::IdentityNumber::with_check_digit(&eleven)
        .unwrap()
        .as_str()
        .to_owned()
}
