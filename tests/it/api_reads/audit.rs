//! The review queue and the audit (history, CSV, time travel) as coordinators read them, and nobody else.

use super::*;

#[tokio::test]
async fn a_date_given_at_enrolment_waits_in_the_queue_until_a_coordinator_confirms_it() {
    let app = spawn_app().await;
    let anna = token(Role::Coordinator, ANNA);
    let (p, _, _) = app.open_unconfirmed(app.a).await;
    app.settle().await;
    let path = format!("/programs/{}/review-queue", app.a);
    let queue = app.read(&path, &anna).await;
    let items = queue.items();
    assert_eq!(items.len(), 1, "{}", queue.text());
    assert_eq!(
        (items[0]["kind"].as_str(), items[0]["portfolio_id"].as_str()),
        (Some("completion_confirmation"), Some(p.as_str())),
        "{}",
        queue.text()
    );
    app.ok(
        &format!("/portfolios/{p}/expected-completion/confirm"),
        &anna,
        json!({}),
    )
    .await;
    app.settle().await;
    assert!(app.read(&path, &anna).await.items().is_empty());
    app.server.db.drop().await;
}

#[tokio::test]
async fn coordinators_read_the_queue_the_audit_and_time_travel_and_nobody_else_does() {
    let app = spawn_app().await;
    let anna = token(Role::Coordinator, ANNA);
    let bert = token(Role::Coordinator, BERT);
    let (p, _, student) = app.open(app.a).await;
    app.reflect(&p, &student, "tedx", 20).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let between = Utc::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    app.reflect(&p, &student, "language-cafe", 10).await;
    app.settle().await;

    // The review queue: both reflections, oldest first, with how long they waited.
    let queue = app
        .read(&format!("/programs/{}/review-queue", app.a), &anna)
        .await;
    let items = queue.items();
    assert_eq!(items.len(), 2, "{}", queue.text());
    assert_eq!(items[0]["item_name"], "TEDx");
    assert!(items[0]["submitted_at"].as_str() <= items[1]["submitted_at"].as_str());
    assert!(items[0]["waited_seconds"].as_i64().unwrap() >= 0);
    assert!(queue.body["next_cursor"].is_null());
    let path = format!("/programs/{}/review-queue", app.a);
    // One item per page: the same items in the same order.
    let (paged, pages) = app.walk(&path, &anna, 1).await;
    let positions = |items: &[Value]| -> Vec<i64> {
        items
            .iter()
            .map(|i| i["position"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(positions(&paged), positions(items));
    assert_eq!(pages, 3, "two full pages and an empty last one");
    // An item decided while the coordinator is between pages drops out; nothing repeats.
    let first = app.read(&format!("{path}?limit=1"), &anna).await;
    let next = first.body["next_cursor"].as_str().unwrap().to_owned();
    let decided = items[0]["activity_id"].as_str().unwrap();
    app.ok(
        &format!("/portfolios/{p}/activities/{decided}/reflection/approve"),
        &anna,
        json!({}),
    )
    .await;
    app.settle().await;
    let rest = app
        .read(&format!("{path}?limit=1&cursor={next}"), &anna)
        .await;
    assert_eq!(rest.items().len(), 1);
    assert_eq!(rest.items()[0]["position"], items[1]["position"]);
    assert_eq!(app.get(&path, &bert).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get(&path, &student).await.status, StatusCode::FORBIDDEN);

    // The portfolio's history: every event, in order; the CSV has one row per event.
    let stream_events = app.events_of(&format!("portfolio-{p}")).await;
    let history = app.read(&format!("/portfolios/{p}/history"), &anna).await;
    let versions: Vec<i64> = history
        .items()
        .iter()
        .map(|e| e["stream_version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, (1..=stream_events).collect::<Vec<_>>());
    assert_eq!(history.items()[0]["event_type"], "PortfolioOpened");
    let (paged, pages) = app
        .walk(&format!("/portfolios/{p}/history"), &anna, 2)
        .await;
    assert_eq!(&paged, history.items());
    assert!(pages > 2);
    let csv = app
        .read(&format!("/portfolios/{p}/history.csv"), &anna)
        .await;
    let rows = csv_rows(&csv);
    assert_eq!(rows.len() as i64, stream_events);
    assert_eq!(&rows[0][2], "PortfolioOpened");
    for path in [
        format!("/portfolios/{p}/history"),
        format!("/portfolios/{p}/history.csv"),
        format!("/portfolios/{p}/as-of?at=2026-01-01T00:00:00Z"),
    ] {
        let hidden = app.get(&path, &bert).await;
        assert_eq!(
            (hidden.status, hidden.code()),
            (StatusCode::NOT_FOUND, "portfolio_not_found"),
            "{path}"
        );
        assert_eq!(app.get(&path, &student).await.status, StatusCode::FORBIDDEN);
    }

    // Time travel: between the two activities the portfolio had one.
    let at = between.to_rfc3339().replace('+', "%2B");
    let then = app
        .read(&format!("/portfolios/{p}/as-of?at={at}"), &anna)
        .await;
    assert_eq!(then.body["view"]["activities"].as_array().unwrap().len(), 1);
    let now = Utc::now().to_rfc3339().replace('+', "%2B");
    let later = app
        .read(&format!("/portfolios/{p}/as-of?at={now}"), &anna)
        .await;
    assert_eq!(
        later.body["view"]["activities"].as_array().unwrap().len(),
        2
    );
    let before = app
        .get(
            &format!("/portfolios/{p}/as-of?at=2001-01-01T00:00:00Z"),
            &anna,
        )
        .await;
    assert_eq!(before.status, StatusCode::NOT_FOUND);
    for bad in [
        "",
        "?at=yesterday",
        "?at=2026-13-01T00:00:00Z",
        "?at=2999-01-01T00:00:00Z",
    ] {
        let refused = app.get(&format!("/portfolios/{p}/as-of{bad}"), &anna).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            refused.text()
        );
        assert_eq!(refused.body["field"], "at", "{bad}");
    }
    app.stop().await;
}
