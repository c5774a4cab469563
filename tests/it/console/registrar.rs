//! The registrar's pages over HTTP: certificates with their Ladok status and history, an export
//! run from the console, the batch with its files, a download with the session cookie that gives
//! the API's bytes, acknowledgement by the form; nobody else sees any of it.

use crate::support;
use crate::support::console::{Person, sign_in};
use crate::support::server::TestServer;
use cim::export::MANIFEST_FILE_NAME;
use cim::http::auth::Role;
use cim::store::EventStore;
use sha2::{Digest, Sha256};

fn location(page: &crate::support::console::Page) -> String {
    page.location.clone().expect("a redirect")
}

#[tokio::test]
async fn the_registrar_sees_certificates_runs_an_export_downloads_and_acknowledges() {
    let server = TestServer::start().await;
    let store = EventStore::new(server.db.pool.clone(), cim::log::upcasters());
    let approved = support::certificates::cohort(&store, 2).await;
    let cert = approved[0].certificate_id.to_string();
    let registrar = sign_in(
        &server.base,
        &server.db.pool,
        Role::Registrar,
        "registrar-1",
        None,
    )
    .await;

    let list = registrar.get("/console/certificates").await;
    assert_eq!(list.status, 200);
    assert!(list.html.contains(&format!("/console/certificates/{cert}")));
    assert!(list.html.contains(&approved[0].student_uid.to_string()));
    assert!(list.html.contains("Inte exporterat ännu"), "Swedish status");
    assert!(
        list.html.contains("TillatenIBevis"),
        "what is still to do by hand"
    );
    let csrf = list.csrf();

    // The form needs the token; with it, the export runs and the browser goes to the new batch.
    let refused = registrar.post_raw("/console/batches/run", &[]).await;
    assert_eq!(refused.status, 403);
    let ran = registrar.post("/console/batches/run", &csrf, &[]).await;
    assert_eq!(ran.status, 303, "{}", ran.html);
    let to = location(&ran);
    assert!(
        to.starts_with("/console/batches/") && to.ends_with("?done=reg-export-ran"),
        "{to}"
    );
    let batch = to
        .trim_start_matches("/console/batches/")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let page = registrar.get(&to).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("Exporten kördes"));
    let file_link = format!("/console/batches/{batch}/files/{MANIFEST_FILE_NAME}");
    assert!(page.html.contains(&file_link), "the manifest's download");
    assert!(page.html.contains("Kvittera omgången"));
    assert!(
        page.html.contains("TillatenIBevis"),
        "the manifest's manual steps"
    );

    // The download with the session cookie is the API's file, as an attachment.
    let http = reqwest::Client::new();
    let download = http
        .get(format!("{}{file_link}", server.base))
        .header("cookie", &registrar.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    let disposition = download.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    let bytes = download.bytes().await.unwrap();
    let token = support::auth::token(Role::Registrar, "registrar-1");
    let api = http
        .get(format!(
            "{}/exports/batches/{batch}/files/{MANIFEST_FILE_NAME}",
            server.base
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes, api);
    // The page states the checksum of the bytes the browser gets.
    let sha256: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(page.html.contains(&sha256));
    let missing = registrar
        .get(&format!("/console/batches/{batch}/files/nothing.csv"))
        .await;
    assert_eq!(missing.status, 404);

    // One certificate: its activities, its way into the batch, no credential yet.
    let one = registrar
        .get(&format!("/console/certificates/{cert}"))
        .await;
    assert_eq!(one.status, 200);
    assert!(
        one.html.contains("Togs med i en omgång"),
        "the Ladok history"
    );
    assert!(one.html.contains(&format!("/console/batches/{batch}")));
    assert!(one.html.contains("Inget digitalt intyg"));
    let english = registrar
        .clone()
        .in_language("en")
        .get(&format!("/console/certificates/{cert}"))
        .await;
    assert!(
        english.html.contains("Taken into a batch") && english.html.contains("Mentor &amp; buddy")
    );

    // Acknowledged by the form, and shown so.
    let ack = registrar
        .post(&format!("/console/batches/{batch}/acknowledge"), &csrf, &[])
        .await;
    assert_eq!(ack.status, 303);
    let to = location(&ack);
    assert_eq!(
        to,
        format!("/console/batches/{batch}?done=reg-acknowledged")
    );
    let after = registrar.get(&to).await;
    assert!(after.html.contains("Omgången är kvitterad."));
    assert!(after.html.contains("Ja, av registrar-1"));
    assert!(!after.html.contains("Kvittera omgången"));
    let list = registrar.get("/console/batches").await;
    assert!(list.html.contains(&format!("/console/batches/{batch}")));
    server.stop().await;
}

#[tokio::test]
async fn only_the_registrar_sees_the_registrar_pages() {
    let server = TestServer::start().await;
    let pool = &server.db.pool;
    let student_uid = uuid::Uuid::now_v7().to_string();
    let others: Vec<Person> = vec![
        sign_in(&server.base, pool, Role::Coordinator, "coord-anna", None).await,
        sign_in(&server.base, pool, Role::Student, &student_uid, None).await,
        sign_in(&server.base, pool, Role::Admin, "admin-1", None).await,
    ];
    let id = "00000000-0000-7000-8000-000000000000";
    for person in &others {
        for path in [
            "/console/certificates".to_owned(),
            format!("/console/certificates/{id}"),
            "/console/batches".to_owned(),
            format!("/console/batches/{id}"),
            format!("/console/batches/{id}/files/{MANIFEST_FILE_NAME}"),
        ] {
            assert_eq!(person.get(&path).await.status, 404, "GET {path}");
        }
    }
    let registrar = sign_in(&server.base, pool, Role::Registrar, "registrar-1", None).await;
    let empty = registrar.get("/console/batches").await;
    assert_eq!(empty.status, 200);
    assert!(empty.html.contains("Ingen exportomgång har skrivits ännu."));
    // The registrar's own forms refuse everyone else too, even with their token.
    let admin = &others[2];
    let admin_csrf = admin.get("/console/admin/programs").await.csrf();
    let run = admin.post("/console/batches/run", &admin_csrf, &[]).await;
    assert_eq!(run.status, 404);
    assert_eq!(
        registrar
            .get(&format!("/console/batches/{id}"))
            .await
            .status,
        404,
        "no such batch"
    );
    assert_eq!(registrar.get("/console/admin/programs").await.status, 404);
    server.stop().await;
}
