//! A server over a demo cohort (`cim-demo`'s students driven through every path of the rules) with
//! one export batch written, the console's development sign-in on: what the accessibility sweep and
//! the screenshots look at, so every page has something on it.

use crate::support::auth::{dev_verifier, token};
use crate::support::cohort::with_cohort;
use crate::support::server::{issuer, serve};
use cim::export::worker::WorkerConfig;
use cim::http::AppState;
use cim::http::auth::Role;
use cim::log;
use cim::media::MediaStore;
use cim::projections::{self, ProjectionRunner, RunnerHandle};
use cim::store::EventStore;
use cim_demo::CohortSummary;

#[derive(Debug)]
pub struct DemoServer {
    pub base: String,
    pub db: crate::support::TestDb,
    pub runner: RunnerHandle,
    pub cohort: CohortSummary,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl DemoServer {
    pub async fn start(students: usize) -> Self {
        let (db, _, cohort, _) = with_cohort(students, 7).await;
        let store = EventStore::new(db.pool.clone(), log::upcasters());
        let runner = ProjectionRunner::start(store, db.pool.clone(), &db.url, projections::all());
        let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let state = AppState::with_projections(db.pool.clone(), runner.clone())
            .with_verifier(dev_verifier())
            .with_media(MediaStore::new(dirs.0.path().to_owned(), 1024 * 1024))
            .with_exports(WorkerConfig::new(dirs.1.path()))
            .with_issuer(issuer());
        let base = serve(state).await;
        crate::support::log_checks::wait_caught_up(&db.pool, &base).await;
        // One export run, so the registrar has a batch with files.
        let registrar = token(Role::Registrar, "registrar-demo");
        let run = reqwest::Client::new()
            .post(format!("{base}/exports/run"))
            .bearer_auth(&registrar)
            .send()
            .await
            .unwrap();
        assert!(
            run.status().is_success(),
            "export run: {}",
            run.text().await.unwrap()
        );
        DemoServer {
            base,
            db,
            runner,
            cohort,
            _dirs: dirs,
        }
    }

    pub async fn stop(self) {
        self.runner.shutdown().await;
        self.db.drop().await;
    }

    /// The demo coordinator of the cohort's first program, and its code.
    pub fn coordinator(&self) -> (String, &'static str) {
        let program = &self.cohort.programs[0];
        (program.coordinator.to_string(), program.code)
    }

    /// A student of the first program who got as far as `at_least` (a certified one, a collecting one).
    pub fn student(&self, path: cim_demo::StudentPath) -> String {
        self.cohort
            .students
            .iter()
            .find(|s| s.path == path && s.program_id == self.cohort.programs[0].id)
            .or_else(|| self.cohort.students.iter().find(|s| s.path == path))
            .expect("the cohort has a student on this path")
            .student_uid
            .to_string()
    }
}
