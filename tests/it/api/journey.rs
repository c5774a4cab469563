//! A student's whole path over HTTP, from enrolment to an approved certificate.

use super::*;

#[tokio::test]
async fn a_student_goes_from_enrolment_to_an_approved_certificate_over_http() {
    let app = spawn_app().await;
    let anna = token(Role::Coordinator, ANNA);
    let (p, student) = app.open(app.a).await;

    let program = app.get(&format!("/programs/{}", app.a), &student).await;
    assert_eq!(program.status, StatusCode::OK);
    assert_eq!(program.body["catalog"].as_array().unwrap().len(), 13);

    let mut ids = Vec::new();
    for (i, item) in ["language-cafe", "tedx", "course-in-global-health"]
        .iter()
        .enumerate()
    {
        let view = app
            .ok(
                &format!("/portfolios/{p}/activities"),
                &student,
                activity(item, 30 - 5 * i as i64),
            )
            .await;
        ids.push(last_activity_id(&view));
    }

    // A reflection outside its band is refused with the measured value and the band.
    let short = app
        .post(
            &format!("/portfolios/{p}/activities/{}/reflection", ids[0]),
            &student,
            json!({"format": "written", "text": texts::english(642)}),
        )
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(short.code(), "reflection_word_count_out_of_band");
    assert_eq!(short.body["field"], "text");
    assert!(short.body["detail"].as_str().unwrap().contains("642"));

    for id in &ids {
        app.ok(
            &format!("/portfolios/{p}/activities/{id}/reflection"),
            &student,
            json!({"format": "written", "text": texts::english(1000)}),
        )
        .await;
    }

    // The coordinator returns one with feedback; the student resubmits; all three are approved.
    let returned = app
        .ok(
            &format!("/portfolios/{p}/activities/{}/reflection/return", ids[1]),
            &anna,
            json!({"feedback": "Please say more about what you will take with you."}),
        )
        .await;
    assert_eq!(returned["view"]["activities"][1]["status"], "returned");
    let review = &returned["view"]["activities"][1]["attempts"][0]["review"];
    assert_eq!(review["outcome"], "returned");
    assert_eq!(review["by"], ANNA);
    assert_eq!(
        returned["personal"]["activities"][1]["attempts"][0]["feedback"],
        "Please say more about what you will take with you."
    );
    app.ok(
        &format!("/portfolios/{p}/activities/{}/reflection/resubmit", ids[1]),
        &student,
        json!({"format": "oral", "link": "https://play.ki.se/media/0_resubmitted", "duration_s": 170}),
    )
    .await;
    for id in &ids {
        app.ok(
            &format!("/portfolios/{p}/activities/{id}/reflection/approve"),
            &anna,
            json!({}),
        )
        .await;
    }

    // The final reflection waits for a coordinator to confirm the expected completion.
    app.ok(
        &format!("/portfolios/{p}/expected-completion/confirm"),
        &anna,
        json!({}),
    )
    .await;
    app.ok(
        &format!("/portfolios/{p}/final-reflection"),
        &student,
        json!({"format": "written", "text": texts::english(3000)}),
    )
    .await;
    app.ok(
        &format!("/portfolios/{p}/final-reflection/approve"),
        &anna,
        json!({}),
    )
    .await;
    let applied = app
        .ok(&format!("/portfolios/{p}/application"), &student, json!({}))
        .await;
    assert_eq!(applied["view"]["phase"], "applied");
    let approved = app
        .post(
            &format!("/portfolios/{p}/application/approve"),
            &anna,
            json!({}),
        )
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    assert_eq!(approved.body["view"]["phase"], "certified");
    assert_eq!(approved.body["view"]["certificate"]["decided_by"], ANNA);
    assert_eq!(
        approved.body["view"]["certificate"]["activities"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Every attempt is kept, and the read agrees with the command's answer, ETag included.
    let read = app.get(&format!("/portfolios/{p}"), &student).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.etag(), approved.etag());
    assert_eq!(read.etag(), format!("\"{}\"", read.body["version"]));
    assert_eq!(
        read.body["view"]["activities"][1]["attempts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(read.body, approved.body);
    app.db.drop().await;
}
