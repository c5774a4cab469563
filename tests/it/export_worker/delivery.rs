//! Delivery to the fake Ladok: one attested merit per certificate, retries, rule errors, a login page
//! instead of an answer, lost answers, two workers, corrections and client certificates.

use super::*;

#[tokio::test]
async fn every_certificate_becomes_one_attested_merit_and_a_second_run_adds_none() {
    let (db, store, out, fake, approved) = delivery(4).await;

    let mut worker = ladok_worker(&store, out.path(), Some(fake.config()));
    assert_eq!(run(&mut worker).await, (4, 0));
    let merits = merits_by_reference(&fake);
    assert_eq!(merits.len(), 4);
    for a in &approved {
        let m = &merits[&a.certificate_id.to_string()];
        assert_eq!(m.len(), 1);
        // Under the portfolio's student, named in Swedish and English, attested with the
        // program's decision, and left for an administrator to allow in a degree certificate.
        assert_eq!(m[0]["student_uid"], a.student_uid.to_string());
        assert_eq!(m[0]["Benamning"], "Certifikat för internationella meriter");
        assert_eq!(
            m[0]["AlternativBenamning"],
            "Certificate of International Merits"
        );
        assert_eq!(m[0]["Attesterad"], true);
        assert_eq!(m[0]["TillatenIBevis"], false);
        assert_eq!(m[0]["Examinationsdatum"], a.decided_on.to_string());
        assert_eq!(m[0]["Beslut"]["Beslutsdatum"], a.decided_on.to_string());
        assert_eq!(
            m[0]["Beslut"]["BeslutsfattareNamn"],
            a.decided_by.to_string()
        );
    }
    // The events name Ladok's merit uids.
    for e in deliveries(&store).await {
        let BatchEvent::CertificateDelivered(d) = e else {
            panic!("no failure expected: {e:?}")
        };
        assert_eq!(
            merits[&d.certificate_id.to_string()][0]["Uid"],
            d.ladok_merit_uid
        );
    }

    // A second run (and a fresh worker) creates nothing.
    assert_eq!(run(&mut worker).await, (0, 0));
    assert_eq!(
        run(&mut ladok_worker(&store, out.path(), Some(fake.config()))).await,
        (0, 0)
    );
    assert_eq!(fake.merits().len(), 4);
    let settled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM export_batches WHERE deliveries_settled_at IS NOT NULL",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(settled, 1);
    db.drop().await;
}

#[tokio::test]
async fn server_errors_and_a_timeout_are_retried_and_then_succeed() {
    let (db, store, out, fake, _) = delivery(3).await;
    let mut config = fake.config();
    config.timeout = std::time::Duration::from_millis(700);
    fake.push_faults([
        Fault::ServerError,
        Fault::ServerError,
        Fault::Hang(std::time::Duration::from_secs(3)),
        Fault::ServerError,
    ]);
    assert_eq!(
        run(&mut ladok_worker(&store, out.path(), Some(config))).await,
        (3, 0)
    );
    let merits = merits_by_reference(&fake);
    assert_eq!(merits.len(), 3);
    assert!(merits.values().all(|m| m.len() == 1));
    db.drop().await;
}

#[tokio::test]
async fn a_ladok_that_keeps_timing_out_fails_the_run_retryably_and_the_next_run_delivers() {
    let (db, store, out, fake, _) = delivery(3).await;
    let mut config = fake.config();
    config.timeout = std::time::Duration::from_millis(500);
    config.retry.max_attempts = 2;
    fake.push_faults([Fault::Hang(std::time::Duration::from_secs(2)); 2]);
    // One certificate fails after its retries; Ladok is down, so the others wait for the next run.
    assert_eq!(
        run(&mut ladok_worker(&store, out.path(), Some(config.clone()))).await,
        (0, 1)
    );
    let failures = deliveries(&store).await;
    let [BatchEvent::DeliveryFailed(f)] = failures.as_slice() else {
        panic!("{failures:?}")
    };
    assert_eq!((f.reason.as_str(), f.retryable), ("unavailable", true));
    assert_eq!(
        run(&mut ladok_worker(&store, out.path(), Some(config))).await,
        (3, 0)
    );
    assert_eq!(fake.merits().len(), 3);
    db.drop().await;
}

#[tokio::test]
async fn a_rule_error_is_recorded_on_its_row_and_the_others_are_delivered() {
    let (db, store, out, fake, approved) = delivery(4).await;
    let refused = approved[1].certificate_id;
    fake.rule_error_for(&refused.to_string(), "commons.fel.grupp.domanregel");

    let mut worker = ladok_worker(&store, out.path(), Some(fake.config()));
    assert_eq!(run(&mut worker).await, (3, 1));
    let failure = deliveries(&store)
        .await
        .into_iter()
        .find_map(|e| match e {
            BatchEvent::DeliveryFailed(f) => Some(f),
            _ => None,
        })
        .unwrap();
    assert_eq!(failure.certificate_id, refused);
    assert_eq!(failure.reason, "rule_error");
    assert_eq!(
        failure.felgrupp.as_deref(),
        Some("commons.fel.grupp.domanregel")
    );
    assert!(!failure.retryable);
    assert!(!merits_by_reference(&fake).contains_key(&refused.to_string()));
    // A rule error waits for a person: the next run does not try again.
    let before = fake.requests().len();
    assert_eq!(run(&mut worker).await, (0, 0));
    assert_eq!(fake.requests().len(), before);
    db.drop().await;
}

#[tokio::test]
async fn an_html_login_page_is_an_authentication_failure_and_stops_the_deliveries() {
    let (db, store, out, fake, _) = delivery(3).await;
    fake.push_faults([Fault::HtmlLoginPage]);
    let mut worker = ladok_worker(&store, out.path(), Some(fake.config()));
    assert_eq!(run(&mut worker).await, (0, 1));
    let failures = deliveries(&store).await;
    let [BatchEvent::DeliveryFailed(f)] = failures.as_slice() else {
        panic!("{failures:?}")
    };
    assert_eq!((f.reason.as_str(), f.retryable), ("authentication", true));
    // Once the session works again, the next run delivers everything.
    assert_eq!(run(&mut worker).await, (3, 0));
    assert_eq!(fake.merits().len(), 3);
    db.drop().await;
}

#[tokio::test]
async fn a_merit_whose_answer_was_lost_is_found_by_its_marker_not_created_again() {
    let (db, store, out, fake, approved) = delivery(3).await;
    // The first certificate's student lookup is answered; its creation is carried out by Ladok,
    // but the answer never reaches the worker (what a crash between Ladok's 201 and our commit
    // leaves behind: a merit in Ladok that the log does not name).
    let config = fake.config();
    fake.push_faults([
        Fault::Pass,
        Fault::Pass,
        Fault::LoseAnswer(config.timeout * 2),
    ]);
    assert_eq!(
        run(&mut ladok_worker(&store, out.path(), Some(config.clone()))).await,
        (0, 1)
    );
    assert_eq!(fake.merits().len(), 1, "Ladok created the merit");
    // Once the lost request cannot be in flight any more, the next run looks for the merit by
    // its marker, finds it, and attests it.
    tokio::time::sleep(config.in_flight_bound()).await;
    assert_eq!(
        run(&mut ladok_worker(&store, out.path(), Some(config))).await,
        (3, 0)
    );
    let merits = merits_by_reference(&fake);
    assert_eq!(merits.len(), 3);
    assert!(
        merits
            .values()
            .all(|m| m.len() == 1 && m[0]["Attesterad"] == true)
    );
    let recorded = deliveries(&store)
        .await
        .into_iter()
        .find_map(|e| match e {
            BatchEvent::CertificateDelivered(d)
                if d.certificate_id == approved[0].certificate_id =>
            {
                Some(d.ladok_merit_uid)
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(
        merits[&approved[0].certificate_id.to_string()][0]["Uid"],
        recorded
    );
    db.drop().await;
}

#[tokio::test]
async fn two_workers_with_ladok_at_once_deliver_every_certificate_exactly_once() {
    let (db, store, out, fake, _) = delivery(6).await;
    let (a, b) = tokio::join!(
        async {
            ladok_worker(&store, out.path(), Some(fake.config()))
                .run_once()
                .await
                .unwrap()
        },
        async {
            ladok_worker(&store, out.path(), Some(fake.config()))
                .run_once()
                .await
                .unwrap()
        },
    );
    // Whoever did not get the lock, or came second, delivers the rest (nothing).
    let _ = (a, b);
    run(&mut ladok_worker(&store, out.path(), Some(fake.config()))).await;
    let merits = merits_by_reference(&fake);
    assert_eq!(merits.len(), 6);
    assert!(merits.values().all(|m| m.len() == 1));
    let delivered = deliveries(&store).await;
    assert_eq!(delivered.len(), 6, "{delivered:?}");
    db.drop().await;
}

#[tokio::test]
async fn a_revocation_after_delivery_is_a_correction_row_and_a_withdrawal_in_ladok() {
    let (db, store, out, fake, approved) = delivery(2).await;
    let mut worker = ladok_worker(&store, out.path(), Some(fake.config()));
    assert_eq!(run(&mut worker).await, (2, 0));

    revoke(&store, &approved[0]).await;
    support::settle(&store).await;
    let outcome = worker.run_once().await.unwrap();
    let RunOutcome::Ran {
        completed,
        delivered,
        failed,
        ..
    } = outcome
    else {
        panic!()
    };
    assert_eq!((completed.len(), delivered, failed), (1, 1, 0));
    let rows = check_folder(&out.path().join(completed[0].to_string()));
    assert_eq!(
        rows,
        [("revoke".to_owned(), approved[0].certificate_id.to_string())]
    );
    let merits = merits_by_reference(&fake);
    let revoked = &merits[&approved[0].certificate_id.to_string()];
    assert_eq!(revoked.len(), 1, "withdrawn, not created again");
    assert_eq!(revoked[0]["withdrawn"], true);
    let kept = &merits[&approved[1].certificate_id.to_string()];
    assert_eq!(kept[0]["withdrawn"], false);
    assert_eq!(kept[0]["Attesterad"], true);
    // The withdrawal carried the revocation as its decision: a `Beslut`, nothing else.
    let withdrawal = fake
        .received()
        .into_iter()
        .find(|r| r.root.ty.name == "Beslut")
        .unwrap();
    assert!(withdrawal.body["Beslutsdatum"].is_string());
    assert!(withdrawal.body["BeslutsfattareNamn"].is_string());
    db.drop().await;
}

#[tokio::test]
async fn the_fake_ladok_refuses_a_client_certificate_it_did_not_issue() {
    let fake = FakeLadok::start().await.unwrap();
    let mut config = fake.config_with_foreign_certificate();
    config.retry.max_attempts = 1;
    let client = LadokClient::new(config).unwrap();
    let err = client.student_by_pnr("199001011239").await.unwrap_err();
    assert!(matches!(err, LadokError::Unavailable(_)), "{err:?}");
    assert!(fake.rejected_handshakes() >= 1);
    assert!(fake.requests().is_empty());
    // The right certificate gets through.
    let client = LadokClient::new(fake.config()).unwrap();
    assert_eq!(
        client.student_by_pnr("199001011239").await.unwrap().uid,
        FakeLadok::student_uid("199001011239")
    );
    // ... and a request without the service's media type is refused.
    let raw = support::ladok::raw_client(&fake);
    let url = fake
        .base_url()
        .join("studentinformation/student/personnummer/199001011239")
        .unwrap();
    let wrong = raw
        .get(url.clone())
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 406);
    let right = raw
        .get(url)
        .header("Accept", "application/vnd.ladok-studentinformation+json")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// The schedule and `cim export run`.
