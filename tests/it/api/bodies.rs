//! What every request body refuses (malformed JSON, wrong types, unknown fields, oversize), and the
//! headers every answer carries.

use super::*;

#[tokio::test]
async fn every_body_refuses_malformed_json_wrong_types_unknown_fields_and_oversize() {
    let app = spawn_app().await;
    let admin = token(Role::Admin, "admin-1");
    let anna = token(Role::Coordinator, ANNA);
    let (p, student) = app.open(app.a).await;
    let view = app
        .ok(
            &format!("/portfolios/{p}/activities"),
            &student,
            activity("tedx", 10),
        )
        .await;
    let act = last_activity_id(&view);
    let a = app.a;
    // (path, caller, a valid body to break).
    let bodies: Vec<(String, &str, Value)> = vec![
        (
            "/programs".into(),
            &admin,
            json!({"name": "Nursing", "code": "nursing"}),
        ),
        (
            format!("/programs/{a}/coordinators"),
            &admin,
            json!({"staff": "x"}),
        ),
        (
            format!("/programs/{a}/coordinators/unassign"),
            &admin,
            json!({"staff": "x"}),
        ),
        (
            format!("/programs/{a}/catalog"),
            &anna,
            json!({"item": "new-item", "name": "New"}),
        ),
        (
            format!("/programs/{a}/catalog/tedx/rename"),
            &anna,
            json!({"name": "TEDx KI"}),
        ),
        (format!("/programs/{a}/rules"), &anna, json!({"rules": {}})),
        (
            format!("/programs/{a}/portfolios"),
            &student,
            json!({"student_uid": Uuid::now_v7(), "identity_number": "x", "given_names": "a",
                   "family_name": "b", "email": "c", "expected_completion": "2030-01-01"}),
        ),
        (
            format!("/portfolios/{p}/expected-completion"),
            &anna,
            json!({"expected_completion": "2030-01-01", "reason": "r"}),
        ),
        (
            format!("/portfolios/{p}/expected-completion/proposal"),
            &student,
            json!({"expected_completion": "2030-01-01", "reason": "r"}),
        ),
        (
            format!("/portfolios/{p}/expected-completion/proposal/accept"),
            &anna,
            json!({"reason": "r"}),
        ),
        (
            format!("/portfolios/{p}/expected-completion/proposal/decline"),
            &anna,
            json!({"reason": "r"}),
        ),
        (
            format!("/portfolios/{p}/activities"),
            &student,
            activity("tedx", 3),
        ),
        (
            format!("/portfolios/{p}/activities/{act}/reflection"),
            &student,
            json!({"format": "written", "text": "t"}),
        ),
        (
            format!("/portfolios/{p}/activities/{act}/reflection/resubmit"),
            &student,
            json!({"format": "written", "text": "t"}),
        ),
        (
            format!("/portfolios/{p}/activities/{act}/reflection/return"),
            &anna,
            json!({"feedback": "f"}),
        ),
        (
            format!("/portfolios/{p}/final-reflection"),
            &student,
            json!({"format": "written", "text": "t"}),
        ),
        (
            format!("/portfolios/{p}/final-reflection/resubmit"),
            &student,
            json!({"format": "written", "text": "t"}),
        ),
        (
            format!("/portfolios/{p}/final-reflection/return"),
            &anna,
            json!({"feedback": "f"}),
        ),
        (
            format!("/portfolios/{p}/extensions"),
            &anna,
            json!({"until": "2030-01-01", "reason": "r"}),
        ),
        (
            format!("/portfolios/{p}/application/reject"),
            &anna,
            json!({"reason": "r"}),
        ),
        (
            format!("/portfolios/{p}/revocation"),
            &anna,
            json!({"reason": "r"}),
        ),
        (
            format!("/students/{}/erasure", Uuid::now_v7()),
            &admin,
            json!({"reason": "r"}),
        ),
        (
            "/me/notifications".to_owned(),
            &anna,
            json!({"language": "en"}),
        ),
        (
            "/verify".to_owned(),
            &anna,
            json!({"credential": "not.a.credential"}),
        ),
    ];
    let url = |path: &str| format!("{}{path}", app.base);
    // The one route with a body that is not a POST: settings are replaced whole.
    let request = |path: &str| match path {
        "/me/notifications" => app.http.put(url(path)),
        _ => app.http.post(url(path)),
    };
    for (path, caller, valid) in &bodies {
        let raw = |body: String| {
            request(path)
                .bearer_auth(caller)
                .header("content-type", "application/json")
                .body(body)
        };
        let malformed = app.send(raw("{\"name\": ".into())).await;
        assert_eq!(malformed.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(malformed.is_problem(), "{path}: {malformed:?}");
        assert_eq!(malformed.code(), "malformed_json", "{path}");

        let mut unknown = valid.clone();
        unknown["surprise"] = json!(1);
        let answer = app
            .send(request(path).bearer_auth(caller).json(&unknown))
            .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert!(answer.is_problem(), "{path}");
        assert_eq!(answer.code(), "unknown_field", "{path}");
        assert_eq!(answer.body["field"], "surprise", "{path}");

        // The first field of the valid body, given the wrong type.
        let (first, _) = valid.as_object().unwrap().iter().next().unwrap();
        let mut wrong = valid.clone();
        wrong[first] = json!([1, 2]);
        let answer = app
            .send(request(path).bearer_auth(caller).json(&wrong))
            .await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {:?}",
            answer
        );
        assert!(answer.is_problem(), "{path}");
        assert!(!answer.body["detail"].as_str().unwrap().is_empty());

        let huge = app
            .send(raw(format!("{{\"x\": \"{}\"}}", "a".repeat(300 * 1024))))
            .await;
        assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert!(huge.is_problem(), "{path}");

        let text = app
            .send(
                request(path)
                    .bearer_auth(caller)
                    .header("content-type", "text/plain")
                    .body(valid.to_string()),
            )
            .await;
        assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{path}");
    }
    assert_eq!(
        bodies.len(),
        body_routes(),
        "a route with a body is missing here"
    );

    // Bad path values, unknown routes and wrong methods are problems too.
    let bad = app.get("/portfolios/not-a-uuid", &student).await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "invalid_path_parameter")
    );
    assert_eq!(bad.body["field"], "portfolio_id");
    let none = app.get("/nowhere", &student).await;
    assert_eq!(
        (none.status, none.is_problem()),
        (StatusCode::NOT_FOUND, true)
    );
    let method = app
        .send(app.http.delete(url(&format!("/portfolios/{p}"))))
        .await;
    assert_eq!(
        (method.status, method.is_problem()),
        (StatusCode::METHOD_NOT_ALLOWED, true)
    );
    app.db.drop().await;
}

/// How many routes take a JSON body (as the authorisation table says).
fn body_routes() -> usize {
    support::routes::TABLE.iter().filter(|row| row.2).count()
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_is_not_cached() {
    let app = spawn_app().await;
    let (p, student) = app.open(app.a).await;
    let answers = [
        app.get(&format!("/portfolios/{p}"), &student).await,
        app.get(&format!("/portfolios/{p}"), "not-a-token").await,
        app.get("/no/such/route", &student).await,
        app.send(app.http.get(format!("{}/healthz", app.base)))
            .await,
    ];
    for answer in &answers {
        let h = &answer.headers;
        let status = answer.status;
        assert_eq!(h["x-content-type-options"], "nosniff", "{status}");
        assert_eq!(h["x-frame-options"], "DENY", "{status}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{status}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'none'"),
            "{status}"
        );
        assert_eq!(h["cache-control"], "no-store", "{status}");
    }
    app.db.drop().await;
}
