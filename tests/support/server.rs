//! The real API as `cim serve` runs it: the router on port 0 against a fresh database, the pilot
//! programs seeded with a coordinator each, the projection runner running, media and export batches
//! in directories of their own (no Ladok delivery), and tokens checked with the development secret.

use super::TestDb;
use super::auth::dev_verifier;
use cim::domain::ProgramId;
use cim::export::worker::WorkerConfig;
use cim::http::AppState;
use cim::log;
use cim::media::MediaStore;
use cim::projections::{self, ProjectionRunner, RunnerHandle};
use cim::store::EventStore;

/// Serves the real router of `state` on a free port of 127.0.0.1, the API with the web console as
/// `cim serve` serves them (the console's development sign-in on); returns its base URL.
pub async fn serve(state: AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let settings = cim::console::ConsoleSettings {
        oidc: None,
        dev_signin: true,
    };
    let app = cim::console::router(state, settings);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// The issuer of the test servers' credentials.
pub fn issuer() -> cim::credential::issuer::IssuerConfig {
    cim::credential::issuer::IssuerConfig {
        public_url: "https://cim.uni.example".into(),
        name: "Example University".into(),
        url: Some("https://uni.example".into()),
    }
}

/// The coordinators of the first two pilot programs.
pub const COORDINATORS: [&str; 2] = ["coord-anna", "coord-bert"];

#[derive(Debug)]
pub struct TestServer {
    pub base: String,
    pub db: TestDb,
    pub runner: RunnerHandle,
    /// The first two pilot programs, coordinated by [`COORDINATORS`].
    pub programs: [ProgramId; 2],
    pub media_dir: tempfile::TempDir,
    pub export_dir: tempfile::TempDir,
    /// The state the server serves (a test may serve it again with other console settings).
    pub state: AppState,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|state| state).await
    }

    /// As [`start`](Self::start), with `configure` applied to the state last (e.g. to turn the
    /// limit of failed authentications off for a test that fails many on purpose).
    pub async fn start_with(configure: impl FnOnce(AppState) -> AppState) -> Self {
        let db = super::fresh().await;
        let store = EventStore::new(db.pool.clone(), log::upcasters());
        let staffed = super::staffed_programs(&store, &COORDINATORS).await;
        let programs = [staffed[0], staffed[1]];
        let runner = ProjectionRunner::start(store, db.pool.clone(), &db.url, projections::all());
        let (media_dir, export_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let state = AppState::with_projections(db.pool.clone(), runner.clone())
            .with_verifier(dev_verifier())
            .with_media(MediaStore::new(media_dir.path().to_owned(), 1024 * 1024))
            .with_exports(WorkerConfig::new(export_dir.path()))
            .with_issuer(issuer());
        let state = configure(state);
        Self {
            base: serve(state.clone()).await,
            state,
            db,
            runner,
            programs,
            media_dir,
            export_dir,
        }
    }

    pub async fn stop(self) {
        self.runner.shutdown().await;
        self.db.drop().await;
    }
}
