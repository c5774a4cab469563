//! Definition changes, read-your-writes waits, lost connections, readiness and failing projections.

use super::*;

#[tokio::test]
async fn a_definition_change_rebuilds_at_start_and_back_fills_and_is_never_downgraded() {
    let db = support::fresh().await;
    let store = store(&db);
    let mut history_end = Checkpoint::START;
    for i in 0..15 {
        history_end = append(&store, &format!("s-{}", i % 4), "Old", 2)
            .await
            .checkpoint;
    }
    // Added after the fact: version 1 is back-filled from the whole history.
    let v1 = start(&db, vec![projection(1)]).await;
    // (Not `store.head()`: that is only what is final *now*, which another test on the same server
    // can hold back with a long transaction.)
    v1.wait_for(Scope::All, history_end, PATIENCE)
        .await
        .unwrap();
    assert_exactly_once(&db.pool).await;
    v1.shutdown().await;
    let stored = projections::checkpoint::load(&db.pool, NAME)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.version, stored.events_applied), (1, 30));

    let mut target = Checkpoint::START;
    for i in 0..5 {
        target = append(&store, &format!("s-{}", i % 4), "New", 1)
            .await
            .checkpoint;
    }
    // Version 2 changes the DDL: the runner rebuilds at start and fills the new column for every
    // stream, including the events appended before version 2 existed.
    let v2 = start(&db, vec![projection(2)]).await;
    v2.wait_for(Scope::All, target, PATIENCE).await.unwrap();
    let stored = projections::checkpoint::load(&db.pool, NAME)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(
        stored.definition_hash,
        projections::definition_hash(projection(2).as_ref())
    );
    assert_eq!(stored.events_applied, 35, "replayed from the start");
    assert_exactly_once(&db.pool).await;
    let types: Vec<(String, String)> =
        sqlx::query_as("SELECT stream_id, last_type FROM test_stream_counts ORDER BY stream_id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        types,
        (0..4)
            .map(|i| (format!("s-{i}"), "New".to_owned()))
            .collect::<Vec<_>>()
    );
    eventually("version 2 is live", || async {
        v2.status().projections[0].phase == Some(Phase::Live)
    })
    .await;
    v2.shutdown().await;

    // An older binary (a rolling deploy) finds version 2 and stands by instead of downgrading it.
    let old = start(&db, vec![projection(1)]).await;
    eventually("the older runner stands by", || async {
        old.status().projections[0].outdated
    })
    .await;
    old.shutdown().await;
    let stored = projections::checkpoint::load(&db.pool, NAME)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.version, stored.events_applied), (2, 35));
    db.drop().await;
}

#[tokio::test]
async fn wait_for_returns_once_the_target_is_reached_and_times_out_otherwise() {
    let db = support::fresh().await;
    let store = store(&db);
    let runner = start(&db, vec![projection(1)]).await;

    let outcome = append(&store, "ryw", "Written", 3).await;
    runner
        .wait_for(Scope::Named(NAME), outcome.checkpoint, PATIENCE)
        .await
        .unwrap();
    // Read-your-writes: the command's effects are visible right after the wait.
    assert_eq!(projected_counts(&db.pool).await, [("ryw".to_owned(), 3)]);

    // A checkpoint that no event has reached yet.
    let beyond = Checkpoint {
        transaction_id: i64::MAX,
        position: i64::MAX,
    };
    let err = runner
        .wait_for(Scope::All, beyond, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(err.lagging, [NAME]);

    // An append whose transaction is still open holds back everything after it: the later append's
    // checkpoint is not reached until the first commits (events are applied in commit-safe order).
    let mut slow = db.pool.begin().await.unwrap();
    store
        .append_in(
            &mut slow,
            "slow",
            ExpectedVersion::NoStream,
            &events("Slow", 1),
            &meta(),
        )
        .await
        .unwrap();
    let later = append(&store, "later", "Written", 1).await;
    let err = runner
        .wait_for(Scope::All, later.checkpoint, Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(matches!(err, Timeout { ref lagging, .. } if lagging == &[NAME]));
    slow.commit().await.unwrap();
    runner
        .wait_for(Scope::All, later.checkpoint, PATIENCE)
        .await
        .unwrap();
    assert_exactly_once(&db.pool).await;

    // A name the runner does not know is never reported as up to date.
    let err = runner
        .wait_for(
            Scope::Named("no_such_projection"),
            outcome.checkpoint,
            PATIENCE,
        )
        .await
        .unwrap_err();
    assert_eq!(err.lagging, ["no_such_projection"]);
    runner.shutdown().await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_recovers_when_the_database_drops_every_connection() {
    let db = support::fresh().await;
    let store = store(&db);
    let runner = start(&db, vec![projection(1)]).await;
    let mut target = Checkpoint::START;
    for i in 0..10 {
        target = append(&store, &format!("s-{}", i % 3), "Before", 1)
            .await
            .checkpoint;
    }
    runner.wait_for(Scope::All, target, PATIENCE).await.unwrap();
    eventually("the listener is connected", || async {
        runner.status().listener.connected
    })
    .await;
    let connections_before = runner.status().listener.connections;

    // What a database restart does to the clients: every session of this database ends.
    let admin_url = cim::db::scratch::with_database(&db.url, "postgres").unwrap();
    let mut admin = PgConnection::connect(&admin_url).await.unwrap();
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&db.name)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(
        terminated.len() >= 3,
        "the pool, the lock and the listener connections were terminated"
    );
    admin.close().await.unwrap();

    for i in 0..10 {
        target = append(&store, &format!("s-{}", i % 4), "After", 2)
            .await
            .checkpoint;
    }
    runner.wait_for(Scope::All, target, PATIENCE).await.unwrap();
    eventually("the listener reconnected", || async {
        let listener = runner.status().listener;
        listener.connected && listener.connections > connections_before
    })
    .await;
    eventually("the runner owns its projection again", || async {
        owned(&runner)
    })
    .await;
    assert!(runner.readiness().is_ok());
    // A fresh pool: the test's own pool lost its connections too.
    let check = db::connect(&db.url, 2).await.unwrap();
    assert_exactly_once(&check).await;
    check.close().await;
    runner.shutdown().await;
    db.drop().await;
}

#[tokio::test]
async fn readyz_reports_the_projection_listener() {
    let db = support::fresh().await;
    let runner = start(&db, vec![projection(1)]).await;
    eventually("the listener is connected", || async {
        runner.status().listener.connected
    })
    .await;
    let app = cim::http::router(cim::http::AppState::with_projections(
        db.pool.clone(),
        runner.clone(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let response = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["checks"]["projections"], "ok");
    server.abort();
    runner.shutdown().await;
    db.drop().await;
}

/// The test projection, made to fail on demand: 0 = works, 1 = refuses events, 2 = panics.
struct Flaky {
    inner: StreamCounts,
    mode: Arc<std::sync::atomic::AtomicU8>,
}

impl Projection for Flaky {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn version(&self) -> u32 {
        self.inner.version()
    }
    fn definition(&self) -> &'static str {
        self.inner.definition()
    }
    fn tables(&self) -> &'static [&'static str] {
        self.inner.tables()
    }
    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        match self.mode.load(Ordering::SeqCst) {
            0 => self.inner.apply(tx, events),
            1 => Box::pin(async move {
                Err(ProjectionError::malformed(&events[0], "refused on purpose"))
            }),
            _ => panic!("apply panicked on purpose"),
        }
    }
}

#[tokio::test]
async fn a_failing_or_panicking_projection_is_retried_and_never_skips_the_event() {
    let db = support::fresh().await;
    let store = store(&db);
    let mode = Arc::new(std::sync::atomic::AtomicU8::new(1));
    let flaky = Arc::new(Flaky {
        inner: StreamCounts { version: 1 },
        mode: mode.clone(),
    });
    let runner = start(&db, vec![flaky]).await;
    let target = append(&store, "poison", "Odd", 2).await.checkpoint;
    let last_error = |runner: &RunnerHandle| {
        runner.status().projections[0]
            .last_error
            .clone()
            .unwrap_or_default()
    };
    eventually("the refusal is reported", || async {
        last_error(&runner).contains("refused on purpose")
    })
    .await;
    mode.store(2, Ordering::SeqCst);
    eventually("the panic is reported", || async {
        last_error(&runner).contains("panicked on purpose")
    })
    .await;
    // Nothing was skipped meanwhile: the checkpoint is still before the event.
    assert!(
        runner
            .wait_for(Scope::All, target, Duration::from_millis(100))
            .await
            .is_err()
    );
    mode.store(0, Ordering::SeqCst);
    runner.wait_for(Scope::All, target, PATIENCE).await.unwrap();
    assert_exactly_once(&db.pool).await;
    eventually("the error is cleared", || async {
        runner.status().projections[0].last_error.is_none()
    })
    .await;
    runner.shutdown().await;
    db.drop().await;
}
