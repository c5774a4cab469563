//! The program log and the lists, walked in pages.

use super::*;

#[tokio::test]
async fn the_program_log_and_the_lists_walk_in_pages_without_gaps_or_duplicates() {
    let app = spawn_app().await;
    let anna = token(Role::Coordinator, ANNA);
    let mut opened = BTreeSet::new();
    let mut students = Vec::new();
    for _ in 0..5 {
        let (p, uid, student) = app.open(app.a).await;
        opened.insert(p);
        students.push((uid, student));
    }
    app.open(app.b).await;
    app.settle().await;

    // The program's portfolios, two per page.
    let (seen, _) = app
        .walk(&format!("/programs/{}/portfolios", app.a), &anna, 2)
        .await;
    let seen: Vec<String> = seen
        .iter()
        .map(|s| s["portfolio_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, opened.iter().cloned().collect::<Vec<_>>());
    let filtered = app
        .read(
            &format!("/programs/{}/portfolios?phase=certified", app.a),
            &anna,
        )
        .await;
    assert!(filtered.items().is_empty());
    let bad_phase = app
        .get(&format!("/programs/{}/portfolios?phase=done", app.a), &anna)
        .await;
    assert_eq!(bad_phase.body["field"], "phase");

    // A student's own list.
    let (uid, student) = &students[0];
    let mine = app.read("/me/portfolios", student).await;
    assert_eq!(mine.items().len(), 1);
    assert_eq!(mine.items()[0]["student_uid"], uid.as_str());
    assert!(opened.contains(mine.items()[0]["portfolio_id"].as_str().unwrap()));
    let (walked, pages) = app.walk("/me/portfolios", student, 1).await;
    assert_eq!((walked.as_slice(), pages), (mine.items().as_slice(), 2));
    assert_eq!(
        app.get("/me/portfolios", &anna).await.status,
        StatusCode::FORBIDDEN
    );

    // The program log, three per page: every event of the program and its portfolios, once.
    let expected: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_audit WHERE program_id = $1")
        .bind(app.a.as_uuid())
        .fetch_one(&app.server.db.pool)
        .await
        .unwrap();
    let (entries, pages) = app
        .walk(&format!("/programs/{}/audit", app.a), &anna, 3)
        .await;
    let positions: Vec<i64> = entries
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert!(pages > 2);
    let unique: BTreeSet<i64> = positions.iter().copied().collect();
    assert_eq!(
        unique.len(),
        positions.len(),
        "a duplicate in {positions:?}"
    );
    assert_eq!(positions.len() as i64, expected);

    // Filters, and the CSV of the same selection.
    let opened_only = app
        .read(
            &format!(
                "/programs/{}/audit?event_type=PortfolioOpened&limit=200",
                app.a
            ),
            &anna,
        )
        .await;
    assert_eq!(opened_only.items().len(), 5);
    let by_student = app
        .read(&format!("/programs/{}/audit?actor={uid}", app.a), &anna)
        .await;
    assert_eq!(by_student.items().len(), 1);
    let csv = app
        .read(
            &format!("/programs/{}/audit.csv?event_type=PortfolioOpened", app.a),
            &anna,
        )
        .await;
    assert_eq!(csv_rows(&csv).len(), 5);
    let future = app
        .read(
            &format!("/programs/{}/audit?from=2999-01-01T00:00:00Z", app.a),
            &anna,
        )
        .await;
    assert!(future.items().is_empty());

    // Tampered and foreign cursors, bad limits and times are 400s naming the parameter.
    let cursor = app
        .read(&format!("/programs/{}/audit?limit=1", app.a), &anna)
        .await
        .body["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut tampered = cursor.clone();
    let flipped = if tampered.ends_with('A') { "B" } else { "A" };
    tampered.replace_range(tampered.len() - 1.., flipped);
    let portfolio_cursor = app
        .read(&format!("/programs/{}/portfolios?limit=1", app.a), &anna)
        .await
        .body["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    for (query, field) in [
        (format!("cursor={tampered}"), "cursor"),
        ("cursor=bm90IGEgY3Vyc29y".to_owned(), "cursor"),
        (format!("cursor={portfolio_cursor}"), "cursor"),
        ("limit=0".to_owned(), "limit"),
        ("limit=201".to_owned(), "limit"),
        ("from=last-week".to_owned(), "from"),
    ] {
        let refused = app
            .get(&format!("/programs/{}/audit?{query}", app.a), &anna)
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(refused.body["field"], field, "{query}: {}", refused.text());
        if field == "cursor" {
            assert_eq!(refused.code(), "invalid_cursor");
        }
    }
    app.stop().await;
}
