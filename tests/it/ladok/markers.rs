//! Exactly once without a field for our id: merits found by their marker, writes possibly in flight,
//! corrections under Ladok's lock, and the identity check.

use super::*;

#[tokio::test]
async fn a_lost_answer_is_found_by_its_marker_on_the_students_last_page() {
    let (db, store, out, fake, approved) = delivery(2).await;
    worker(&store, out.path(), None).run_once().await.unwrap();
    // The student already has 35 other merits in Ladok; a dead worker's creation is a 36th.
    let student = approved[0].student_uid.to_string();
    for n in 0..35 {
        fake.insert_merit(
            &student,
            json!({"AnvandsITillgodoraknande": false, "AnvandsIUtfardatBevis": false,
                "Attesterad": true, "Benamning": format!("Annan merit {n}"), "MeritViaEmrex": false,
                "TillatenIBevis": false, "TillatenIGemensamExamen": false,
                "Ursprung": "Another university"}),
        );
    }
    let created = dead_worker_created(&store, &fake, &approved[0], true, 0).await;
    // Ladok serves at most 7 a page, whatever we ask for.
    fake.cap_page_size(7);
    let mut config = fake.config();
    config.page_size = 10;
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(config))).await,
        (2, 0)
    );
    let ours = merits_of(&fake, &approved[0]);
    assert_eq!(ours.len(), 1, "found, not created again");
    assert_eq!(ours[0]["Uid"], created);
    assert_eq!(ours[0]["Attesterad"], true);
    // Every page was read, in order, to the first empty one: 36 merits at 7 a page are six pages.
    let pages = fake
        .requests()
        .iter()
        .filter(|(m, p)| m == "GET" && *p == format!("/resultat/annanmerit/student/{student}"))
        .count();
    assert_eq!(pages, 7);
    assert_eq!(merits_of(&fake, &approved[1]).len(), 1);
    assert_all_valid(&fake);
    db.drop().await;
}

#[tokio::test]
async fn a_write_that_may_still_be_in_flight_is_left_alone_until_it_cannot_be() {
    let (db, store, out, fake, approved) = delivery(2).await;
    worker(&store, out.path(), None).run_once().await.unwrap();
    // A worker died while its creation was on the wire: no outcome was ever recorded, and its
    // request may be in flight for 8 s.
    let started = std::time::Instant::now();
    dead_worker_created(&store, &fake, &approved[0], false, 8).await;
    let config = fake.config();
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(config.clone()))).await,
        (1, 0)
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the machine was too slow to tell"
    );
    let ours = merits_of(&fake, &approved[0]);
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0]["Attesterad"], false, "not touched while in flight");
    tokio::time::sleep(Duration::from_secs(8).saturating_sub(started.elapsed())).await;
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(config))).await,
        (1, 0)
    );
    let ours = merits_of(&fake, &approved[0]);
    assert_eq!(ours.len(), 1, "found, not created again");
    assert_eq!(ours[0]["Attesterad"], true);
    assert_all_valid(&fake);
    db.drop().await;
}

#[tokio::test]
async fn an_attested_merit_that_says_something_else_is_corrected_under_ladoks_lock() {
    let (db, store, out, fake, approved) = delivery(1).await;
    let config = fake.config();
    // Student, merits (none), creation, then the attestation's answer is lost (Ladok attested it).
    fake.push_faults([
        Fault::Pass,
        Fault::Pass,
        Fault::Pass,
        Fault::LoseAnswer(config.timeout * 2),
    ]);
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(config.clone()))).await,
        (0, 1)
    );
    let merit = merits_of(&fake, &approved[0]).remove(0);
    assert_eq!(merit["Attesterad"], true);
    // Meanwhile someone renamed it in Ladok.
    let uid = merit["Uid"].as_str().unwrap().to_owned();
    fake.edit_merit(&uid, json!({"Benamning": "Något annat"}));
    let saved = merits_of(&fake, &approved[0])[0]["SenastSparad"].clone();
    tokio::time::sleep(config.in_flight_bound()).await;
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(config))).await,
        (1, 0)
    );
    let merit = merits_of(&fake, &approved[0]).remove(0);
    assert_eq!(merit["Benamning"], "Certifikat för internationella meriter");
    let correction = fake
        .received()
        .into_iter()
        .find(|r| r.root.ty.name == "AnnanMeritRattning")
        .expect("a correction was sent");
    assert_eq!(correction.body["SenasteSenastSparad"], saved);
    assert_eq!(fake.merits().len(), 1);
    assert_all_valid(&fake);
    db.drop().await;
}

#[tokio::test]
async fn a_student_record_that_is_not_the_portfolios_student_is_never_written_to() {
    let (db, store, out, fake, approved) = delivery(3).await;
    // Ladok answers another person's record for the first student, and another identity number
    // for the second.
    fake.answer_student_as(
        &approved[0].student_uid.to_string(),
        &uuid::Uuid::new_v4().to_string(),
    );
    fake.add_student(&approved[1].student_uid.to_string(), "199001011239");
    let mut w = worker(&store, out.path(), Some(fake.config()));
    assert_eq!(run(&mut w).await, (1, 2));
    for a in &approved[..2] {
        assert!(
            merits_of(&fake, a).is_empty(),
            "nothing written for a mismatch"
        );
        assert!(
            !fake
                .received()
                .iter()
                .any(|r| r.body.to_string().contains(&marker(a.certificate_id))),
            "no body sent for it"
        );
    }
    let reasons: Vec<(String, bool)> = sqlx::query_as(
        "SELECT payload->>'reason', (payload->>'retryable')::bool FROM events \
         WHERE event_type = 'DeliveryFailed'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(reasons, vec![("identity_mismatch".to_owned(), false); 2]);
    // Never retried blindly: the next run asks Ladok nothing about them.
    let before = fake.requests().len();
    assert_eq!(run(&mut w).await, (0, 0));
    assert_eq!(fake.requests().len(), before);
    assert_eq!(merits_of(&fake, &approved[2]).len(), 1);
    assert_all_valid(&fake);
    db.drop().await;
}

#[tokio::test]
async fn a_merit_whose_read_answers_404_is_found_by_its_marker_not_created_again() {
    let (db, store, out, fake, approved) = delivery(1).await;
    worker(&store, out.path(), None).run_once().await.unwrap();
    // A worker created the merit, recorded Ladok's UID, and died before attesting it.
    let uid = dead_worker_created(&store, &fake, &approved[0], true, 0).await;
    append(
        &store,
        only_batch(&store).await,
        BatchEvent::MeritCreated(cim::domain::batch::MeritCreated {
            certificate_id: approved[0].certificate_id,
            ladok_merit_uid: uid.clone(),
        }),
    )
    .await;
    // The configured read path is wrong: every read by UID answers 404.
    let mut config = fake.config();
    config.operations.set(
        Operation::ReadMerit,
        Endpoint {
            method: "GET".into(),
            path: "/resultat/annanmerit/saknas/{merit_uid}".into(),
            media_type: "application/vnd.ladok-resultat+json".into(),
            evidence: Evidence::Configured,
        },
    );
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(config))).await,
        (1, 0)
    );
    let ours = merits_of(&fake, &approved[0]);
    assert_eq!(ours.len(), 1, "found by its marker, not created again");
    assert_eq!(
        (ours[0]["Uid"].as_str(), &ours[0]["Attesterad"]),
        (Some(uid.as_str()), &json!(true))
    );
    assert_all_valid(&fake);
    db.drop().await;
}

#[tokio::test]
async fn an_approval_revoked_before_its_merit_existed_is_not_created_on_redelivery() {
    let (db, store, out, fake, approved) = delivery(2).await;
    // Ladok refuses the first merit by a rule; the other is delivered.
    fake.rule_error_for(
        &approved[0].certificate_id.to_string(),
        "commons.fel.grupp.domanregel",
    );
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(fake.config()))).await,
        (1, 1)
    );
    let first_batch = only_batch(&store).await;
    // Then the program revokes it: its revocation finds no merit to withdraw.
    support::certificates::revoke(&store, &approved[0]).await;
    support::settle(&store).await;
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(fake.config()))).await,
        (0, 1)
    );
    // The data in Ladok is fixed and the registrar asks for the first batch's failure again.
    fake.clear_rule_errors();
    append(
        &store,
        first_batch,
        BatchEvent::RedeliveryRequested(cim::domain::batch::RedeliveryRequested {
            by: "registrar-1".to_owned(),
            certificate_ids: vec![approved[0].certificate_id],
        }),
    )
    .await;
    sqlx::query("UPDATE export_batches SET deliveries_settled_at = NULL WHERE batch_id = $1")
        .bind(first_batch.as_uuid())
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(fake.config()))).await,
        (0, 1)
    );
    assert!(
        merits_of(&fake, &approved[0]).is_empty(),
        "a revoked certificate got a merit"
    );
    let reason: String = sqlx::query_scalar(
        "SELECT payload->>'reason' FROM events WHERE event_type = 'DeliveryFailed' \
         ORDER BY position DESC LIMIT 1",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(reason, "revoked");
    db.drop().await;
}
