//! The fixture world of the authorisation table: the real API (`support::server`) with two staffed
//! programs, students at every phase a route needs, a certificate, an export batch with its files,
//! uploaded media. For every route it builds a [`Target`]: a path whose parameters all name real
//! resources, in the state in which the route's allowed callers succeed.

use crate::support::flow::{self, Api, Caller, Session};
use crate::support::server::{COORDINATORS, TestServer};
use crate::support::{self, auth::token, texts};
use chrono::{SecondsFormat, TimeDelta, Utc};
use cim::domain::ProgramId;
use cim::export::MANIFEST_FILE_NAME;
use cim::http::auth::{AuthLimitSettings, Role};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU32, Ordering};
use uuid::Uuid;

/// What a route is called with.
#[derive(Debug, Clone)]
pub enum Body {
    /// A GET, or a POST whose route reads no body (sent as `{}`, as clients do).
    Empty,
    Json(Value),
    /// A media upload's raw bytes.
    Raw(Vec<u8>),
    /// Opening a portfolio: `student_uid` must be the caller's own, so the body is the caller's.
    Opening,
}

/// One route made concrete.
#[derive(Debug, Clone)]
pub struct Target {
    /// With every path parameter (and a required query) filled in.
    pub path: String,
    /// The student whose object it is: the "student-own" caller.
    pub owner: Caller,
    pub body: Body,
}

/// How far a fixture portfolio is driven. `Proposed` and `Returned`, `FinalReturned` branch off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Opened,
    Proposed,
    Logged,
    Reflected,
    Returned,
    ThreeReflected,
    FinalSubmitted,
    FinalReturned,
    FinalApproved,
    Applied,
    Certified,
}

/// A fixture portfolio of program A.
#[derive(Debug, Clone)]
pub struct Portfolio {
    pub id: String,
    pub student: Caller,
    pub activities: Vec<String>,
    pub certificate: Option<String>,
}

pub struct World {
    pub server: TestServer,
    api: Api,
    http: reqwest::Client,
    /// Program A (coordinated by `anna`) and B (by `bert`).
    pub a: ProgramId,
    pub b: ProgramId,
    pub anna: Caller,
    pub bert: Caller,
    pub registrar: Caller,
    pub admin: Caller,
    /// A student with a portfolio in program B only: "student-other" of every route.
    pub other: Caller,
    /// A portfolio of program A that read routes look at.
    own: Portfolio,
    certificate: String,
    batch: String,
    /// The next `n` for `flow::identity_number`.
    next: AtomicU32,
}

impl World {
    pub async fn build() -> Self {
        // The table sends a forged token to every protected route: more failures from one
        // address than the limit allows (it has tests of its own, tests/it/auth_limit.rs).
        let server = TestServer::start_with(|s| s.with_auth_limit(AuthLimitSettings::off())).await;
        let [a, b] = server.programs;
        let staff = |role, sub: &str| Caller {
            subject: sub.to_owned(),
            token: token(role, sub),
        };
        let mut world = Self {
            api: Api::new(vec![server.base.clone()]),
            http: reqwest::Client::new(),
            a,
            b,
            anna: Caller::coordinator(COORDINATORS[0]),
            bert: Caller::coordinator(COORDINATORS[1]),
            registrar: staff(Role::Registrar, "registrar-1"),
            admin: Caller::admin("admin-1"),
            other: Caller::student(&Uuid::now_v7().to_string()),
            // Filled in below, once the world can drive portfolios.
            own: placeholder(),
            certificate: String::new(),
            batch: String::new(),
            next: AtomicU32::new(0),
            server,
        };
        let n = world.next();
        flow::open(&world.api, 0, b, &world.other.subject, n)
            .await
            .unwrap();
        world.own = world.portfolio(Stage::Logged).await;
        // A certificate, exported in a batch of its own with its files.
        let certified = world.portfolio(Stage::Certified).await;
        world.certificate = certified.certificate.unwrap();
        let store =
            cim::store::EventStore::new(world.server.db.pool.clone(), cim::log::upcasters());
        support::settle(&store).await;
        let run = world.ok("/exports/run", &world.registrar, json!({})).await;
        assert_eq!(run["completed"].as_array().map(Vec::len), Some(1), "{run}");
        world.batch = run["completed"][0].as_str().unwrap().to_owned();
        world
    }

    fn next(&self) -> u32 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// A command that must succeed (set-up, not under test); returns the answer's body.
    async fn ok(&self, path: &str, caller: &Caller, body: Value) -> Value {
        let answer = self
            .api
            .command(0, path, caller, body, None, |id| vec![id])
            .await
            .unwrap_or_else(|_| panic!("POST {path}: no answer"));
        assert!(
            (200..300).contains(&answer.status),
            "POST {path}: {} {}",
            answer.status,
            answer.body
        );
        answer.body
    }

    /// A new student's portfolio in program A, driven to `stage` with Anna deciding.
    pub async fn portfolio(&self, stage: Stage) -> Portfolio {
        self.portfolio_in(self.a, stage).await
    }

    /// A new student's portfolio in `program`, driven to `stage` (decisions need program A).
    pub async fn portfolio_in(&self, program: ProgramId, stage: Stage) -> Portfolio {
        let uid = Uuid::now_v7().to_string();
        let student = Caller::student(&uid);
        let mut s = flow::open(&self.api, 0, program, &uid, self.next())
            .await
            .unwrap();
        let mut p = Portfolio {
            id: s.portfolio.clone(),
            student: student.clone(),
            activities: Vec::new(),
            certificate: None,
        };
        match stage {
            Stage::Opened => return p,
            Stage::Proposed => {
                let body = json!({"expected_completion": flow::today() + TimeDelta::days(400), "reason": "Placement moved."});
                step(&mut s, "/expected-completion/proposal", &student, body).await;
                return p;
            }
            _ => {}
        }
        // The final reflection waits for a coordinator to confirm the date given at enrolment.
        if program == self.a {
            step(
                &mut s,
                "/expected-completion/confirm",
                &self.anna,
                json!({}),
            )
            .await;
        }
        let items = ["language-cafe", "tedx", "course-in-global-health"];
        let logged = if stage < Stage::ThreeReflected { 1 } else { 3 };
        for (i, item) in items.iter().take(logged).enumerate() {
            let body = flow::activity(item, 30 - 5 * i as i64);
            let view = step(&mut s, "/activities", &student, body).await;
            let all = view["view"]["activities"].as_array().unwrap();
            let id = all.last().unwrap()["activity_id"].as_str().unwrap();
            p.activities.push(id.to_owned());
            if stage == Stage::Logged {
                return p;
            }
            let body = json!({"format": "written", "text": texts::english(1000)});
            step(
                &mut s,
                &format!("/activities/{id}/reflection"),
                &student,
                body,
            )
            .await;
        }
        let first = format!("/activities/{}/reflection", p.activities[0]);
        match stage {
            Stage::Reflected | Stage::ThreeReflected => return p,
            Stage::Returned => {
                step(&mut s, &format!("{first}/return"), &self.anna, feedback()).await;
                return p;
            }
            _ => {}
        }
        for a in &p.activities {
            let path = format!("/activities/{a}/reflection/approve");
            step(&mut s, &path, &self.anna, json!({})).await;
        }
        let body = json!({"format": "written", "text": texts::english(3000)});
        step(&mut s, "/final-reflection", &student, body).await;
        match stage {
            Stage::FinalSubmitted => return p,
            Stage::FinalReturned => {
                step(&mut s, "/final-reflection/return", &self.anna, feedback()).await;
                return p;
            }
            _ => {}
        }
        step(&mut s, "/final-reflection/approve", &self.anna, json!({})).await;
        if stage == Stage::FinalApproved {
            return p;
        }
        step(&mut s, "/application", &student, json!({})).await;
        if stage == Stage::Applied {
            return p;
        }
        let approved = step(&mut s, "/application/approve", &self.anna, json!({})).await;
        let id = &approved["view"]["certificate"]["certificate_id"];
        p.certificate = Some(id.as_str().unwrap().to_owned());
        p
    }

    /// The route made concrete: fresh resources for a route that changes them, so that its allowed
    /// caller meets a state in which it succeeds.
    pub async fn target(&self, method: &str, template: &str) -> Target {
        let a = self.a;
        let own = &self.own;
        let on = |p: &Portfolio, path: &str, body: Body| Target {
            path: path
                .replace("{program_id}", &a.to_string())
                .replace("{portfolio_id}", &p.id)
                .replace("{activity_id}", p.activities.first().map_or("", |s| s)),
            owner: p.student.clone(),
            body,
        };
        let json = Body::Json;
        let reason = || json!({"reason": "Decided at the programme meeting."});
        let written = |words| json(json!({"format": "written", "text": texts::english(words)}));
        let date = |days| json!(flow::today() + TimeDelta::days(days));
        let fresh = async |stage: Stage| self.portfolio(stage).await;
        match template {
            "/programs" => on(
                own,
                template,
                json(json!({"name": "Nursing", "code": "nursing"})),
            ),
            "/programs/{program_id}/coordinators" => {
                on(own, template, json(json!({"staff": "coord-new"})))
            }
            "/programs/{program_id}/coordinators/unassign" => {
                let assign = format!("/programs/{a}/coordinators");
                self.ok(&assign, &self.admin, json!({"staff": "coord-leaving"}))
                    .await;
                on(own, template, json(json!({"staff": "coord-leaving"})))
            }
            "/programs/{program_id}/catalog" => on(
                own,
                template,
                json(json!({"item": "authz-new", "name": "A new activity"})),
            ),
            "/programs/{program_id}/catalog/{item}/rename"
            | "/programs/{program_id}/catalog/{item}/retire" => {
                let item = if template.ends_with("rename") {
                    "authz-rename"
                } else {
                    "authz-retire"
                };
                let body = json!({"item": item, "name": format!("Item {item}")});
                self.ok(&format!("/programs/{a}/catalog"), &self.anna, body)
                    .await;
                let body = match template.ends_with("rename") {
                    true => json(json!({"name": "A renamed activity"})),
                    false => Body::Empty,
                };
                on(own, &template.replace("{item}", item), body)
            }
            "/programs/{program_id}/rules" => {
                let rules = json!({"video_platform_hosts": [support::VIDEO_HOST], "allow_declared_duration": true});
                on(own, template, json(json!({"rules": rules})))
            }
            "/programs/{program_id}/portfolios" if method == "POST" => {
                // A student without a portfolio in program A yet.
                let newcomer = Caller::student(&Uuid::now_v7().to_string());
                Target {
                    owner: newcomer,
                    ..on(own, template, Body::Opening)
                }
            }
            "/portfolios/{portfolio_id}/expected-completion"
            | "/portfolios/{portfolio_id}/expected-completion/proposal" => {
                let body = json!({"expected_completion": date(400), "reason": "Placement moved."});
                on(&fresh(Stage::Opened).await, template, json(body))
            }
            "/portfolios/{portfolio_id}/expected-completion/confirm" => {
                on(&fresh(Stage::Opened).await, template, Body::Empty)
            }
            "/portfolios/{portfolio_id}/expected-completion/proposal/accept"
            | "/portfolios/{portfolio_id}/expected-completion/proposal/decline" => {
                on(&fresh(Stage::Proposed).await, template, json(reason()))
            }
            "/portfolios/{portfolio_id}/activities" => {
                let body = flow::activity("tedx", 10);
                on(&fresh(Stage::Opened).await, template, json(body))
            }
            "/portfolios/{portfolio_id}/activities/{activity_id}/withdraw" => {
                on(&fresh(Stage::Logged).await, template, Body::Empty)
            }
            "/portfolios/{portfolio_id}/activities/{activity_id}/reflection" => {
                on(&fresh(Stage::Logged).await, template, written(1000))
            }
            "/portfolios/{portfolio_id}/activities/{activity_id}/reflection/resubmit" => {
                on(&fresh(Stage::Returned).await, template, written(1000))
            }
            "/portfolios/{portfolio_id}/activities/{activity_id}/reflection/approve" => {
                on(&fresh(Stage::Reflected).await, template, Body::Empty)
            }
            "/portfolios/{portfolio_id}/activities/{activity_id}/reflection/return" => {
                on(&fresh(Stage::Reflected).await, template, json(feedback()))
            }
            "/portfolios/{portfolio_id}/final-reflection" => {
                on(&fresh(Stage::ThreeReflected).await, template, written(3000))
            }
            "/portfolios/{portfolio_id}/final-reflection/resubmit" => {
                on(&fresh(Stage::FinalReturned).await, template, written(3000))
            }
            "/portfolios/{portfolio_id}/final-reflection/approve" => {
                on(&fresh(Stage::FinalSubmitted).await, template, Body::Empty)
            }
            "/portfolios/{portfolio_id}/final-reflection/return" => on(
                &fresh(Stage::FinalSubmitted).await,
                template,
                json(feedback()),
            ),
            "/portfolios/{portfolio_id}/extensions" => {
                let body =
                    json!({"until": date(800), "reason": "Parental leave during the spring term."});
                on(&fresh(Stage::Opened).await, template, json(body))
            }
            "/portfolios/{portfolio_id}/application" => {
                on(&fresh(Stage::FinalApproved).await, template, Body::Empty)
            }
            "/portfolios/{portfolio_id}/application/approve" => {
                on(&fresh(Stage::Applied).await, template, Body::Empty)
            }
            "/portfolios/{portfolio_id}/application/reject" => {
                on(&fresh(Stage::Applied).await, template, json(reason()))
            }
            "/portfolios/{portfolio_id}/revocation" => {
                on(&fresh(Stage::Certified).await, template, json(reason()))
            }
            "/portfolios/{portfolio_id}/media" => on(
                &fresh(Stage::Opened).await,
                template,
                Body::Raw(pdf("upload")),
            ),
            "/portfolios/{portfolio_id}/media/{sha256}" => {
                let p = fresh(Stage::Opened).await;
                let sha = self.upload(&p, pdf("download")).await;
                on(&p, &template.replace("{sha256}", &sha), Body::Empty)
            }
            "/portfolios/{portfolio_id}/as-of" => {
                let at = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
                on(own, &format!("{template}?at={at}"), Body::Empty)
            }
            "/certificates/{certificate_id}" => on(
                own,
                &template.replace("{certificate_id}", &self.certificate),
                Body::Empty,
            ),
            "/exports/batches/{batch_id}/files/{name}" => {
                let path = template
                    .replace("{batch_id}", &self.batch)
                    .replace("{name}", MANIFEST_FILE_NAME);
                on(own, &path, Body::Empty)
            }
            t if t.starts_with("/exports/batches/{batch_id}") => {
                on(own, &t.replace("{batch_id}", &self.batch), Body::Empty)
            }
            // Runs again whatever is due by now (the revoked certificate of the revocation row).
            "/exports/run" => on(own, template, Body::Empty),
            "/students/{student_uid}/erasure" => {
                let p = fresh(Stage::Opened).await;
                let path = template.replace("{student_uid}", &p.student.subject);
                on(&p, &path, json(json!({"reason": "GDPR request 2026-17"})))
            }
            // The student's credential needs an approved certificate.
            "/portfolios/{portfolio_id}/credential"
            | "/portfolios/{portfolio_id}/certificate.pdf" => {
                on(&fresh(Stage::Certified).await, template, Body::Empty)
            }
            "/credentials/status/{list}" => on(own, &template.replace("{list}", "1"), Body::Empty),
            "/credentials/{credential_id}" | "/certificates/{certificate_id}/credential" => {
                let credential = self.issued_credential().await;
                let path = template
                    .replace("{credential_id}", &credential.to_string())
                    .replace("{certificate_id}", &self.certificate);
                on(own, &path, Body::Empty)
            }
            // Anyone may ask; a credential that is not one verifies as not authentic (200).
            "/verify" => on(own, template, json(json!({"credential": "x"}))),
            // Everyone's own settings: the PUT sets a language anyone may choose.
            "/me/notifications" if method == "PUT" => {
                on(own, template, json(json!({"language": "en"})))
            }
            // A message the sender gave up on, for the administrator to send again.
            "/notifications/outbox/{id}/retry" => {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO outbox (dedup_key, kind, recipient_kind, recipient, state, message_id)
                     VALUES (gen_random_uuid()::text, 'batch_ready', 'registrar', '', 'failed', 'm')
                     RETURNING id",
                )
                .fetch_one(&self.server.db.pool)
                .await
                .unwrap();
                on(own, &template.replace("{id}", &id.to_string()), Body::Empty)
            }
            // Reads of the program, of `own` and of lists, and the public routes.
            t => {
                assert_eq!(method, "GET", "{t} needs a fixture of its own");
                assert!(!t.contains("{sha256}") && !t.contains("{item}"), "{t}");
                on(own, t, Body::Empty)
            }
        }
    }

    /// The credential of the world's certificate, recorded as issued (once); returns its id.
    pub async fn issued_credential(&self) -> uuid::Uuid {
        use cim::credential::{badge, status};
        let (certificate, pool) = (self.certificate.parse().unwrap(), &self.server.db.pool);
        let credential = badge::credential_id(certificate);
        let nil = uuid::Uuid::nil();
        status::issue(pool, certificate, credential, nil)
            .await
            .unwrap();
        credential
    }

    /// Uploads `bytes` to `p` as its student; returns the hash.
    pub async fn upload(&self, p: &Portfolio, bytes: Vec<u8>) -> String {
        let response = self
            .http
            .post(format!("{}/portfolios/{}/media", self.server.base, p.id))
            .bearer_auth(&p.student.token)
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        body["sha256"].as_str().unwrap().to_owned()
    }
}

/// A command of the fixture that must succeed; returns the answer's body.
async fn step(s: &mut Session<'_>, suffix: &str, caller: &Caller, body: Value) -> Value {
    s.step(suffix, caller, body)
        .await
        .unwrap_or_else(|_| panic!("POST {suffix}: no answer"))
        .body
}

fn feedback() -> Value {
    json!({"feedback": "Please say more about what you will take with you."})
}

/// A small PDF (the upload's type is detected from its bytes), distinct per `label`.
pub fn pdf(label: &str) -> Vec<u8> {
    format!("%PDF-1.4\n% Certificate of attendance ({label})\n%%EOF\n").into_bytes()
}

fn placeholder() -> Portfolio {
    Portfolio {
        id: String::new(),
        student: Caller::student("placeholder"),
        activities: Vec::new(),
        certificate: None,
    }
}
