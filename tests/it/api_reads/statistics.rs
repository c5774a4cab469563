//! Statistics, the registrar's certificates and `/metrics`, without personal data.

use super::*;

#[tokio::test]
async fn statistics_certificates_and_metrics_show_no_personal_data() {
    let app = spawn_app().await;
    let anna = token(Role::Coordinator, ANNA);
    let bert = token(Role::Coordinator, BERT);
    let registrar = token(Role::Registrar, "registrar-1");
    let admin = token(Role::Admin, "admin-1");
    let (p, uid, student) = app.open(app.a).await;
    let mut activities = Vec::new();
    for (i, item) in ["language-cafe", "tedx", "course-in-global-health"]
        .iter()
        .enumerate()
    {
        activities.push(app.reflect(&p, &student, item, 30 - 5 * i as i64).await);
    }
    for a in &activities {
        app.ok(
            &format!("/portfolios/{p}/activities/{a}/reflection/approve"),
            &anna,
            json!({}),
        )
        .await;
    }
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
    app.ok(&format!("/portfolios/{p}/application"), &student, json!({}))
        .await;
    let approved = app
        .ok(
            &format!("/portfolios/{p}/application/approve"),
            &anna,
            json!({}),
        )
        .await;
    let certificate = approved["view"]["certificate"]["certificate_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.open(app.a).await;
    app.settle().await;

    // Statistics: aggregates for admin and coordinators, no names, no ids of students.
    let program = app
        .read(&format!("/programs/{}/statistics", app.a), &anna)
        .await;
    assert_eq!(
        program.body["statistics"]["students_started"],
        2,
        "{}",
        program.text()
    );
    assert_eq!(program.body["statistics"]["approved"], 1);
    assert_eq!(program.body["drop_off"]["open"], 1);
    let overall = app.read("/statistics", &bert).await;
    assert_eq!(overall.body["statistics"]["students_started"], 2);
    app.read(&format!("/programs/{}/statistics", app.a), &admin)
        .await;
    for text in [&program.text(), &overall.text()] {
        assert!(!text.contains(&uid) && !text.contains(&p) && !text.contains("Tolvan"));
    }
    let path = format!("/programs/{}/statistics", app.a);
    assert_eq!(app.get(&path, &bert).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/statistics", &registrar).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/statistics", &student).await.status,
        StatusCode::FORBIDDEN
    );

    // The registrar's certificates.
    let list = app.read("/certificates", &registrar).await;
    assert_eq!(list.items().len(), 1);
    assert_eq!(list.items()[0]["certificate_id"], certificate.as_str());
    assert!(!list.text().contains("Tolvan") && !list.text().contains("199602"));
    let of_b = app
        .read(&format!("/certificates?program={}", app.b), &registrar)
        .await;
    assert!(of_b.items().is_empty());
    let revoked = app.read("/certificates?status=revoked", &registrar).await;
    assert!(revoked.items().is_empty());
    let one = app
        .read(&format!("/certificates/{certificate}"), &registrar)
        .await;
    assert_eq!(one.body["program_id"], app.a.to_string());
    // What the registrar must still do by hand in Ladok for an approved certificate.
    assert_eq!(
        one.body["ladok_manual_steps"][0]["code"],
        "allow_in_degree_certificate"
    );
    assert!(
        one.body["ladok_manual_steps"][0]["text"]
            .as_str()
            .unwrap()
            .contains("TillatenIBevis")
    );
    let missing = app
        .get(&format!("/certificates/{}", Uuid::now_v7()), &registrar)
        .await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::NOT_FOUND, "certificate_not_found")
    );
    for caller in [&admin, &anna, &student] {
        assert_eq!(
            app.get("/certificates", caller).await.status,
            StatusCode::FORBIDDEN
        );
    }

    // Metrics: latency by route template (no id in any label), projection lag, export counts.
    app.read(&format!("/portfolios/{p}/history.csv"), &anna)
        .await;
    let response = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let metrics = response.text().await.unwrap();
    assert!(
        metrics.contains(
            "cim_http_request_duration_seconds_bucket{method=\"GET\",route=\"/certificates/{certificate_id}\",status=\"200\",le=\"+Inf\"}"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("route=\"/portfolios/{portfolio_id}/history.csv\",status=\"200\""));
    assert!(metrics.contains("cim_projection_lag_events{projection=\"audit\"}"));
    assert!(metrics.contains("cim_exports_total{kind=\"audit_csv\"}"));
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        let labels = line.split('}').next().unwrap();
        for word in labels.split(|c: char| !(c.is_ascii_hexdigit() || c == '-')) {
            assert!(Uuid::parse_str(word).is_err(), "an id in a label: {line}");
        }
    }
    app.stop().await;
}
