//! A worker that loses its lock, and a PostgreSQL crash in the middle of a delivery.

use super::*;
use crate::support::embedded::own_cluster;
use cim::log;

/// Steps `worker` (holding `lock`) until its batch is complete, so that its next step delivers.
async fn until_complete(worker: &mut ExportWorker, lock: &mut ExportLock) {
    loop {
        match worker.step(lock).await.unwrap() {
            Step::Completed { .. } => return,
            Step::Idle => panic!("no batch to complete"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_lost_its_lock_sends_no_write() {
    let (db, store, out, fake, approved) = delivery(2).await;
    let mut lock = ExportLock::try_acquire(&db.pool).await.unwrap().unwrap();
    let mut first = worker(&store, out.path(), Some(fake.config()));
    until_complete(&mut first, &mut lock).await;
    // The first student lookup hangs for a second (then answers 500 and is retried); meanwhile the
    // lock's session is ended, as when PostgreSQL drops the connection.
    fake.push_faults([Fault::Hang(Duration::from_millis(2500))]);
    let pool = db.pool.clone();
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .execute(&pool)
        .await
        .unwrap();
    });
    let stepped = first.step(&mut lock).await;
    killer.await.unwrap();
    assert!(matches!(stepped, Err(WorkerError::LockLost)), "{stepped:?}");
    // The read went out, the write did not, and the log holds no write as started.
    assert!(
        fake.received().is_empty(),
        "a write was sent without the lock"
    );
    assert_eq!(support::count_events(&db.pool, "DeliveryStarted").await, 0);
    // The next worker delivers everything once.
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(fake.config()))).await,
        (2, 0)
    );
    for a in &approved {
        assert_eq!(merits_of(&fake, a).len(), 1);
    }
    assert_all_valid(&fake);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_crash_in_the_middle_of_a_delivery_leaves_one_merit_per_certificate() {
    let (_dir, config, cluster, url, pool) = own_cluster("cim-crash-").await;
    let store = EventStore::new(pool.clone(), log::upcasters());
    let approved = cohort(&store, 3).await;
    let out = tempfile::tempdir().unwrap();
    let fake = FakeLadok::start().await.unwrap();
    let mut ladok = fake.config();
    ladok.timeout = Duration::from_secs(3);
    // The first certificate: student, merits, creation, attestation. The second: student, merits,
    // then its creation is carried out by Ladok and its answer held while PostgreSQL crashes.
    fake.push_faults([
        Fault::Pass,
        Fault::Pass,
        Fault::Pass,
        Fault::Pass,
        Fault::Pass,
        Fault::Pass,
        Fault::LoseAnswer(Duration::from_secs(10)),
    ]);
    let mut first = worker(&store, out.path(), Some(ladok.clone()));
    let running = tokio::spawn(async move { first.run_once().await });
    support::eventually("the second creation reached Ladok", async || {
        fake.received()
            .iter()
            .filter(|r| r.root.ty.name == "AnnanMerit")
            .count()
            == 2
    })
    .await;
    support::process::crash_postgres(&config.data_dir).await;
    assert!(running.await.unwrap().is_err(), "the run cannot go on");
    pool.close().await;
    drop(cluster);

    let cluster = EmbeddedPostgres::start(config).await.unwrap();
    let pool = db::connect(&url, 8).await.unwrap();
    let store = EventStore::new(pool.clone(), log::upcasters());
    // The write in flight at the crash waits for its bound, then is found by its marker.
    run(&mut worker(&store, out.path(), Some(ladok.clone()))).await;
    tokio::time::sleep(ladok.in_flight_bound()).await;
    run(&mut worker(&store, out.path(), Some(ladok))).await;
    for a in &approved {
        let ours = merits_of(&fake, a);
        assert_eq!(ours.len(), 1, "{}: one merit", a.certificate_id);
        assert_eq!(ours[0]["Attesterad"], true);
    }
    let delivered: Vec<(uuid::Uuid, i64)> = sqlx::query_as(
        "SELECT (payload->>'certificate_id')::uuid, count(*) FROM events \
         WHERE event_type = 'CertificateDelivered' GROUP BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(delivered.len(), 3);
    assert!(delivered.iter().all(|(_, n)| *n == 1));
    assert_all_valid(&fake);
    pool.close().await;
    cluster.stop().await.unwrap();
}
