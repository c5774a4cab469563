//! The administrator's pages over HTTP: programs registered and staffed by the forms, the catalog
//! and rules as the coordinators keep them, erasure only after its confirmation step, the
//! service's health; nobody else sees any of it.

use crate::support;
use crate::support::console::sign_in;
use crate::support::server::TestServer;
use cim::http::auth::Role;
use serde_json::json;

#[tokio::test]
async fn the_admin_registers_a_program_assigns_a_coordinator_and_sees_the_catalog() {
    let server = TestServer::start().await;
    let pool = &server.db.pool;
    let admin = sign_in(&server.base, pool, Role::Admin, "admin-1", None).await;
    let list = admin.get("/console/admin/programs").await;
    assert_eq!(list.status, 200);
    assert!(
        list.html.contains("coord-anna"),
        "the pilot programs' coordinators"
    );
    let csrf = list.csrf();

    let refused = admin
        .post_raw("/console/admin/programs", &[("code", "x"), ("name", "X")])
        .await;
    assert_eq!(refused.status, 403, "no token");
    let registered = admin
        .post(
            "/console/admin/programs",
            &csrf,
            &[("code", "nursing-test"), ("name", "Nursing <Test>")],
        )
        .await;
    assert_eq!(registered.status, 303, "{}", registered.html);
    let to = registered.location.clone().unwrap();
    assert!(to.ends_with("?done=admin-program-registered"), "{to}");
    let program = to
        .trim_start_matches("/console/admin/programs/")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let page = admin.get(&to).await;
    assert!(page.html.contains("Programmet är registrerat."));
    assert!(page.html.contains("Nursing &lt;Test&gt;"));
    assert!(page.html.contains("Ingen samordnare är utsedd."));
    assert!(page.html.contains("Gällande regler (version 1)"));

    let assigned = admin
        .post(
            &format!("/console/admin/programs/{program}/coordinators"),
            &csrf,
            &[("staff", "coord-cecilia")],
        )
        .await;
    assert_eq!(assigned.status, 303, "{}", assigned.html);
    // Twice is refused by the API, and the page says why.
    let again = admin
        .post(
            &format!("/console/admin/programs/{program}/coordinators"),
            &csrf,
            &[("staff", "coord-cecilia")],
        )
        .await;
    assert!(again.html.contains("redan samordnare"), "{}", again.html);

    // The catalog is the coordinator's to keep; the admin sees what they added.
    let http = reqwest::Client::new();
    let coordinator = support::auth::token(Role::Coordinator, "coord-cecilia");
    let added = support::http::post(
        &http,
        &server.base,
        &format!("/programs/{program}/catalog"),
        &coordinator,
        &json!({"item": "tedx", "name": "TEDx at the university"}),
    )
    .await;
    assert!(added.status.is_success(), "{:?}", added.body);
    let page = admin
        .clone()
        .in_language("en")
        .get(&format!("/console/admin/programs/{program}"))
        .await;
    assert!(page.html.contains("coord-cecilia"));
    assert!(page.html.contains("TEDx at the university"));
    assert!(page.html.contains("Versions of the rules"));
    let list = admin.get("/console/admin/programs").await;
    assert!(list.html.contains("nursing-test"));

    // Nobody else sees the admin's pages.
    let registrar = sign_in(&server.base, pool, Role::Registrar, "registrar-1", None).await;
    let coord = sign_in(&server.base, pool, Role::Coordinator, "coord-anna", None).await;
    for person in [&registrar, &coord] {
        for path in [
            "/console/admin/programs".to_owned(),
            format!("/console/admin/programs/{program}"),
            "/console/admin/erasure".to_owned(),
            "/console/admin/health".to_owned(),
        ] {
            assert_eq!(person.get(&path).await.status, 404, "GET {path}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn erasure_needs_its_confirmation_step() {
    let server = TestServer::start().await;
    let pool = &server.db.pool;
    let http = reqwest::Client::new();
    let (_, uid, _) = support::http::open_portfolio(&http, &server.base, server.programs[0]).await;
    // The confirmation counts the portfolios in the read model: wait until it has this one.
    let student: uuid::Uuid = uid.parse().unwrap();
    support::eventually("the portfolio is in the read model", async || {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM rm_portfolios WHERE student_uid = $1")
                .bind(student)
                .fetch_one(pool)
                .await
                .unwrap_or(0); // the runner may not have made the table yet
        n == 1
    })
    .await;
    let admin = sign_in(&server.base, pool, Role::Admin, "admin-1", None).await;
    let page = admin.get("/console/admin/erasure").await;
    assert_eq!(page.status, 200);
    let csrf = page.csrf();
    let erased = || support::count_events(pool, "PersonalDataErased");

    // The first form only asks for confirmation.
    let asked = admin
        .post(
            "/console/admin/erasure",
            &csrf,
            &[("uid", &uid), ("reason", "case 2026-17")],
        )
        .await;
    assert_eq!(asked.status, 200);
    assert!(asked.html.contains("Bekräfta raderingen"));
    assert!(asked.html.contains("/console/admin/erasure/confirm"));
    assert!(
        asked
            .html
            .contains("Tjänsten har en portfölj för studenten.")
    );
    assert_eq!(erased().await, 0, "the first form erases nothing");

    // The UID typed wrong, or the box not ticked: nothing.
    let wrong = admin
        .post(
            "/console/admin/erasure/confirm",
            &csrf,
            &[
                ("uid", &uid),
                ("reason", "case 2026-17"),
                ("uid_again", "00000000-0000-7000-8000-000000000000"),
                ("understood", "yes"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 422);
    let unticked = admin
        .post(
            "/console/admin/erasure/confirm",
            &csrf,
            &[
                ("uid", &uid),
                ("reason", "case 2026-17"),
                ("uid_again", &uid),
            ],
        )
        .await;
    assert_eq!(unticked.status, 422);
    assert_eq!(erased().await, 0);

    let confirmed = admin
        .post(
            "/console/admin/erasure/confirm",
            &csrf,
            &[
                ("uid", &uid),
                ("reason", "case 2026-17"),
                ("uid_again", &uid),
                ("understood", "yes"),
            ],
        )
        .await;
    assert_eq!(confirmed.status, 303, "{}", confirmed.html);
    assert_eq!(
        confirmed.location.as_deref(),
        Some("/console/admin/erasure?done=admin-erased")
    );
    assert_eq!(erased().await, 1);
    server.stop().await;
}

#[tokio::test]
async fn the_health_page_names_the_read_models_in_both_languages() {
    let server = TestServer::start().await;
    let admin = sign_in(&server.base, &server.db.pool, Role::Admin, "admin-1", None).await;
    let names = [
        "portfolio",
        "registrar",
        "review_queue",
        "audit",
        "statistics",
    ];
    // The runner sets the read models up as the server starts.
    support::eventually("every read model is listed", async || {
        let page = admin.get("/console/admin/health").await;
        page.status == 200
            && names
                .iter()
                .all(|name| page.html.contains(&format!("<code>{name}</code>")))
    })
    .await;
    let page = admin.get("/console/admin/health").await;
    assert!(page.html.contains("Läsmodeller") && page.html.contains("Export till Ladok"));
    let english = admin.in_language("en").get("/console/admin/health").await;
    assert!(
        english.html.contains("Read models") && english.html.contains("No export run is recorded.")
    );
    server.stop().await;
}
