//! Retried commands and `If-Match`, oral reflections and their recordings, and the dates of completion.

use super::*;

#[tokio::test]
async fn a_retried_command_answers_the_same_and_a_stale_if_match_is_412() {
    let app = spawn_app().await;
    let (p, student) = app.open(app.a).await;
    let path = format!("{}/portfolios/{p}/activities", app.base);
    let log = |key: &str, if_match: Option<&str>| {
        let mut request = app
            .http
            .post(&path)
            .bearer_auth(&student)
            .header("idempotency-key", key)
            .header("x-request-id", "0190a5f2-7c4e-7d1a-9b3e-2f1c0d9e8a77")
            .json(&activity("tedx", 5));
        if let Some(v) = if_match {
            request = request.header("if-match", v);
        }
        request
    };
    let first = app.send(log("retry-me", Some("\"1\""))).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.etag(), "\"2\"");
    assert_eq!(
        first.headers["x-request-id"],
        "0190a5f2-7c4e-7d1a-9b3e-2f1c0d9e8a77"
    );
    // The retry (with the If-Match of the first attempt) gets the first answer, not a 412 or a
    // "repeated activity" refusal, and nothing new is written.
    let retry = app.send(log("retry-me", Some("\"1\""))).await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
    assert_eq!(retry.body, first.body);
    assert_eq!(retry.etag(), first.etag());
    assert_eq!(app.events(&p, "ActivityLogged").await, 1);
    let correlation: Uuid = sqlx::query_scalar(
        "SELECT correlation_id FROM events WHERE stream_id = $1 AND event_type = 'ActivityLogged'",
    )
    .bind(format!("portfolio-{p}"))
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        correlation.to_string(),
        "0190a5f2-7c4e-7d1a-9b3e-2f1c0d9e8a77"
    );

    // The same key with another body is refused (IETF Idempotency-Key draft) instead of answering
    // with the first request's outcome as if this one had been carried out, and nothing is stored.
    let changed = app
        .send(
            app.http
                .post(&path)
                .bearer_auth(&student)
                .header("idempotency-key", "retry-me")
                .json(&activity("bip", 5)),
        )
        .await;
    assert_eq!(
        (changed.status, changed.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
        "{}",
        changed.body
    );
    assert!(changed.is_problem());
    assert_eq!(changed.body["field"], "Idempotency-Key");
    assert_eq!(app.events(&p, "ActivityLogged").await, 1);
    // The first body still gets its answer.
    let again = app.send(log("retry-me", Some("\"1\""))).await;
    assert_eq!(again.body, first.body);

    // Another key is another command: refused by the rules (the same item twice), not deduplicated.
    let other = app.send(log("another-key", None)).await;
    assert_eq!(other.code(), "repeated_catalog_item");

    // A new command that names an old version is refused with 412 and writes nothing.
    let propose = json!({"expected_completion": today() + TimeDelta::days(400), "reason": "Placement moved."});
    let stale = app
        .send(
            app.http
                .post(format!(
                    "{}/portfolios/{p}/expected-completion/proposal",
                    app.base
                ))
                .bearer_auth(&student)
                .header("if-match", "\"1\"")
                .json(&propose),
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.code(), "version_mismatch");
    assert_eq!(app.events(&p, "ExpectedCompletionProposed").await, 0);
    let current = app
        .send(
            app.http
                .post(format!(
                    "{}/portfolios/{p}/expected-completion/proposal",
                    app.base
                ))
                .bearer_auth(&student)
                .header("if-match", first.etag())
                .json(&propose),
        )
        .await;
    assert_eq!(current.status, StatusCode::OK, "{}", current.body);
    assert_eq!(current.etag(), "\"3\"");
    app.db.drop().await;
}

#[tokio::test]
async fn an_oral_reflection_needs_a_recording_unless_the_rules_allow_a_declared_duration() {
    let app = spawn_app().await;
    let anna = token(Role::Coordinator, ANNA);
    let (p, student) = app.open(app.a).await;
    let acts = app.log_three(&p, &student).await;
    let reflect = |act: &str, body: Value| {
        let path = format!("/portfolios/{p}/activities/{act}/reflection");
        let student = student.clone();
        let app = &app;
        async move { app.post(&path, &student, body).await }
    };

    // A duration alone is no recording.
    let declared = reflect(&acts[0], json!({"format": "oral", "duration_s": 150})).await;
    assert_eq!(
        (declared.status, declared.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "recording_required")
    );
    assert!(declared.is_problem());
    assert!(
        declared.body["detail"].as_str().unwrap().contains("upload"),
        "{}",
        declared.body
    );
    let final_declared = app
        .post(
            &format!("/portfolios/{p}/final-reflection"),
            &student,
            json!({"format": "oral", "duration_s": 400}),
        )
        .await;
    assert_ne!(final_declared.status, StatusCode::OK);
    // A client-typed reference to a file never uploaded to this portfolio is no recording either.
    let typed = reflect(
        &acts[0],
        json!({"format": "oral", "duration_s": 150, "media": {
        "sha256": "ab".repeat(32), "content_type": "video/mp4", "size_bytes": 4096}}),
    )
    .await;
    assert_eq!(
        (typed.code(), typed.body["field"].as_str()),
        ("media_not_uploaded", Some("media"))
    );

    // Links go to the program's video platform only, over https.
    for (link, code) in [
        (
            "https://www.youtube.com/watch?v=abc",
            "video_link_host_not_allowed",
        ),
        ("http://play.ki.se/media/0_abc", "video_link_not_https"),
        ("play.ki.se/media", "video_link_invalid"),
    ] {
        let answer = reflect(
            &acts[0],
            json!({"format": "oral", "link": link, "duration_s": 150}),
        )
        .await;
        assert_eq!(
            (answer.status, answer.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, code),
            "{link}"
        );
        assert_eq!(answer.body["field"], "link");
    }
    let linked = reflect(
        &acts[0],
        json!({"format": "oral", "link": "https://play.ki.se/media/0_abc", "duration_s": 150}),
    )
    .await;
    assert_eq!(linked.status, StatusCode::OK, "{}", linked.body);
    let attempt = &linked.body["view"]["activities"][0]["attempts"][0];
    assert_eq!(
        (
            attempt["recording"].as_str(),
            attempt["duration_measured"].as_bool()
        ),
        (Some("link"), Some(false))
    );
    assert!(
        linked.body["personal"]
            .to_string()
            .contains("https://play.ki.se/media/0_abc"),
        "{}",
        linked.body["personal"]
    );

    // A program that explicitly allows declared durations accepts one, and the coordinator sees it.
    let rules = app
        .post(
            &format!("/programs/{}/rules", app.a),
            &anna,
            json!({"rules": {"allow_declared_duration": true}}),
        )
        .await;
    assert_eq!(rules.status, StatusCode::OK, "{}", rules.body);
    let declared = reflect(&acts[1], json!({"format": "oral", "duration_s": 150})).await;
    assert_eq!(declared.status, StatusCode::OK, "{}", declared.body);
    let seen = app.get(&format!("/portfolios/{p}"), &anna).await;
    let recordings: Vec<&Value> = seen.body["view"]["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["attempts"][0]["recording"])
        .collect();
    assert_eq!(
        recordings,
        [&json!("link"), &json!("declared"), &Value::Null]
    );
    app.db.drop().await;
}

#[tokio::test]
async fn the_date_given_at_enrolment_binds_the_final_reflection_only_once_a_coordinator_confirms_it()
 {
    let app = spawn_app().await;
    let anna = token(Role::Coordinator, ANNA);
    let (p, student) = app.open(app.a).await;
    for act in app.log_three(&p, &student).await {
        app.ok(
            &format!("/portfolios/{p}/activities/{act}/reflection"),
            &student,
            json!({"format": "written", "text": texts::english(1000)}),
        )
        .await;
    }
    let before = app.get(&format!("/portfolios/{p}"), &student).await.body;
    assert_eq!(before["view"]["expected_completion_confirmed"], false);
    assert_eq!(
        before["view"]["next_steps"][0]["code"],
        "await_completion_confirmation"
    );
    let final_reflection = json!({"format": "written", "text": texts::english(3000)});
    let early = app
        .post(
            &format!("/portfolios/{p}/final-reflection"),
            &student,
            final_reflection.clone(),
        )
        .await;
    assert_eq!(
        (early.status, early.code()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "expected_completion_unconfirmed"
        ),
        "{}",
        early.body
    );
    assert!(early.is_problem());

    // The student cannot confirm their own date; the program's coordinator can, once.
    let path = format!("/portfolios/{p}/expected-completion/confirm");
    let own = app.post(&path, &student, json!({})).await;
    assert_eq!(
        (own.status, own.code()),
        (
            StatusCode::FORBIDDEN,
            "expected_completion_set_by_coordinator"
        )
    );
    let bert = app
        .post(&path, &token(Role::Coordinator, BERT), json!({}))
        .await;
    // A coordinator of another program does not see the portfolio at all.
    assert_eq!(bert.status, StatusCode::NOT_FOUND, "{}", bert.body);
    let confirmed = app.ok(&path, &anna, json!({})).await;
    assert_eq!(confirmed["view"]["expected_completion_confirmed"], true);
    assert_eq!(
        confirmed["view"]["expected_completion"],
        before["view"]["expected_completion"]
    );
    let again = app.post(&path, &anna, json!({})).await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "no_change")
    );
    app.ok(
        &format!("/portfolios/{p}/final-reflection"),
        &student,
        final_reflection,
    )
    .await;
    // The log says who confirmed which date.
    let (by, date): (String, String) = sqlx::query_as(
        "SELECT payload->>'by', payload->>'expected_completion' FROM events
         WHERE stream_id = $1 AND event_type = 'ExpectedCompletionConfirmed'",
    )
    .bind(format!("portfolio-{p}"))
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        (by.as_str(), date.as_str()),
        (
            ANNA,
            before["view"]["expected_completion"].as_str().unwrap()
        )
    );
    app.db.drop().await;
}

#[tokio::test]
async fn the_expected_completion_is_set_by_a_coordinator_and_only_proposed_by_the_student() {
    let app = spawn_app().await;
    let anna = token(Role::Coordinator, ANNA);
    let (p, student) = app.open(app.a).await;
    let path = format!("/portfolios/{p}/expected-completion");
    let first = app.get(&format!("/portfolios/{p}"), &student).await.body;
    let date = |v: &Value, key: &str| v["view"][key].as_str().unwrap_or("").to_owned();
    let (start, deadline) = (
        date(&first, "expected_completion"),
        first["view"]["deadline"]["date"].clone(),
    );
    let later = |days: i64| today() + TimeDelta::days(365 + days);

    // The student cannot move the date that binds them, and is told what to do instead.
    let direct = app
        .post(
            &path,
            &student,
            json!({"expected_completion": later(30), "reason": "r"}),
        )
        .await;
    assert_eq!(direct.status, StatusCode::FORBIDDEN);
    assert!(direct.is_problem());
    assert_eq!(direct.code(), "expected_completion_set_by_coordinator");
    assert!(
        direct.body["detail"].as_str().unwrap().contains("propose"),
        "{}",
        direct.body
    );

    // Nothing to decide yet.
    let none = app
        .post(
            &format!("{path}/proposal/accept"),
            &anna,
            json!({"reason": "ok"}),
        )
        .await;
    assert_eq!(
        (none.status, none.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "no_pending_proposal")
    );
    assert!(none.is_problem());

    // A proposal is shown but changes neither the date nor the deadline; a declined one vanishes.
    let proposed = app
        .ok(
            &format!("{path}/proposal"),
            &student,
            json!({"expected_completion": later(30), "reason": "Placement moved."}),
        )
        .await;
    assert_eq!(date(&proposed, "expected_completion"), start);
    assert_eq!(proposed["view"]["deadline"]["date"], deadline);
    assert_eq!(proposed["view"]["completion_proposal"]["proposal"], 1);
    assert_eq!(
        proposed["view"]["completion_proposal"]["expected_completion"],
        later(30).to_string()
    );
    let declined = app
        .ok(
            &format!("{path}/proposal/decline"),
            &anna,
            json!({"reason": "Not in the study plan."}),
        )
        .await;
    assert_eq!(date(&declined, "expected_completion"), start);
    assert!(declined["view"].get("completion_proposal").is_none());
    let again = app
        .post(
            &format!("{path}/proposal/decline"),
            &anna,
            json!({"reason": "again"}),
        )
        .await;
    assert_eq!(again.code(), "no_pending_proposal");

    // An accepted proposal moves the date and the deadline; a coordinator may also set it directly.
    app.ok(
        &format!("{path}/proposal"),
        &student,
        json!({"expected_completion": later(60), "reason": "Placement moved again."}),
    )
    .await;
    let accepted = app
        .ok(
            &format!("{path}/proposal/accept"),
            &anna,
            json!({"reason": "Confirmed."}),
        )
        .await;
    assert_eq!(
        date(&accepted, "expected_completion"),
        later(60).to_string()
    );
    assert_ne!(accepted["view"]["deadline"]["date"], deadline);
    let set = app
        .ok(
            &path,
            &anna,
            json!({"expected_completion": later(90), "reason": "Study plan."}),
        )
        .await;
    assert_eq!(date(&set, "expected_completion"), later(90).to_string());
    let empty_reason = app
        .post(
            &path,
            &anna,
            json!({"expected_completion": later(95), "reason": " "}),
        )
        .await;
    assert_eq!(
        (empty_reason.status, empty_reason.body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("reason"))
    );

    // Every step is in the log with who did it.
    for (event_type, count, role) in [
        ("ExpectedCompletionProposed", 2, "student"),
        ("ExpectedCompletionProposalDeclined", 1, "coordinator"),
        ("ExpectedCompletionProposalAccepted", 1, "coordinator"),
        ("ExpectedCompletionSet", 1, "coordinator"),
    ] {
        let roles: Vec<String> = sqlx::query_scalar(
            "SELECT actor_role::text FROM events WHERE stream_id = $1 AND event_type = $2",
        )
        .bind(format!("portfolio-{p}"))
        .bind(event_type)
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
        assert_eq!(roles, vec![role.to_owned(); count], "{event_type}");
    }
    assert_eq!(app.events(&p, "ExpectedCompletionChanged").await, 0);
    app.db.drop().await;
}
