//! The evaluation pages: plots and numbers overall and per program, by academic year, the CSV, and
//! who may see them (the API's rule for `GET /statistics`).

use crate::support::console::sign_in;
use crate::support::eventually;
use crate::support::flow::{self, Api, Caller};
use crate::support::server::TestServer;
use chrono::Datelike;
use cim::http::auth::Role;

/// The academic year (1 July – 30 June) today is in, by the calendar year it starts in.
fn this_year() -> i32 {
    let today = flow::today();
    if today.month() >= 7 {
        today.year()
    } else {
        today.year() - 1
    }
}

#[tokio::test]
async fn the_evaluation_shows_plots_with_their_numbers_and_a_csv_to_those_who_may_see_it() {
    let server = TestServer::start().await;
    let api = Api::new(vec![server.base.clone()]);
    let uid = uuid::Uuid::now_v7().to_string();
    let mut p = flow::open(&api, 0, server.programs[0], &uid, 1)
        .await
        .unwrap();
    p.step(
        "/activities",
        &Caller::student(&uid),
        flow::activity("tedx", 10),
    )
    .await
    .unwrap();
    let [a, b] = server.programs;

    let admin = sign_in(&server.base, &server.db.pool, Role::Admin, "admin-1", None).await;
    eventually("the statistics count the portfolio", async || {
        admin
            .get("/console/evaluation.csv")
            .await
            .html
            .contains("funnel,activity_logged,1")
    })
    .await;

    let page = admin.get("/console/evaluation").await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains(
        "<figure class=\"plot\"><svg role=\"img\" aria-label=\"Hur långt studenterna kommer\""
    ));
    assert!(page.html.contains("<figcaption>"));
    assert!(
        !page.html.contains("style="),
        "nothing for the CSP to block"
    );
    assert!(page.html.contains("<th scope=\"col\">Värde</th>"));
    assert!(
        page.html.contains(
            "<th scope=\"row\">Första aktiviteten registrerad</th><td class=\"num\">1</td>"
        )
    );
    assert!(
        page.html
            .contains("<th scope=\"row\">TEDx</th><td class=\"num\">1</td>")
    );
    let english = admin
        .clone()
        .in_language("en")
        .get("/console/evaluation")
        .await;
    assert!(english.html.contains("How far students get"));

    // The CSV: a header row, the same numbers, nothing personal; by academic year.
    let csv = admin.get("/console/evaluation.csv").await.html;
    assert!(csv.starts_with("section,key,value\r\n"), "{csv}");
    assert!(csv.contains("funnel,started,1\r\n"));
    assert!(
        csv.contains("activity_mix,tedx,1\r\n"),
        "keys, not names: {csv}"
    );
    assert!(!csv.contains(&uid));
    let now = admin
        .get(&format!("/console/evaluation.csv?year={}", this_year()))
        .await
        .html;
    assert!(now.contains("funnel,started,1\r\n"), "{now}");
    let earlier = admin
        .get(&format!("/console/evaluation.csv?year={}", this_year() - 1))
        .await
        .html;
    assert!(earlier.contains("funnel,started,0\r\n"), "{earlier}");
    let per_program = admin
        .get(&format!("/console/evaluation/{b}/figures.csv"))
        .await
        .html;
    assert!(per_program.contains("funnel,started,0\r\n"));

    // Coordinators see the overall figures and their own program's, not another's.
    let anna = sign_in(
        &server.base,
        &server.db.pool,
        Role::Coordinator,
        "coord-anna",
        None,
    )
    .await;
    assert_eq!(anna.get("/console/evaluation").await.status, 200);
    let own = anna.get(&format!("/console/evaluation/{a}")).await;
    assert_eq!(own.status, 200);
    assert!(own.html.contains("<svg role=\"img\""));
    assert_eq!(
        anna.get(&format!("/console/evaluation/{b}")).await.status,
        404
    );
    assert_eq!(
        anna.get(&format!("/console/evaluation/{b}/figures.csv"))
            .await
            .status,
        404
    );

    // Students and the registrar get nothing (the API refuses them the statistics).
    let student = sign_in(&server.base, &server.db.pool, Role::Student, &uid, None).await;
    assert_eq!(student.get("/console/evaluation").await.status, 404);
    assert_eq!(student.get("/console/evaluation.csv").await.status, 404);
    let registrar = sign_in(
        &server.base,
        &server.db.pool,
        Role::Registrar,
        "reg-1",
        None,
    )
    .await;
    assert_eq!(registrar.get("/console/evaluation").await.status, 404);
    server.stop().await;
}
