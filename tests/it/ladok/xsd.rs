//! Every request and answer against Ladok's XSDs, and `cim ladok check`.

use super::*;

#[tokio::test]
async fn every_request_and_answer_validates_against_ladoks_schema_and_unknown_fields_are_refused() {
    let (db, store, out, fake, approved) = delivery(3).await;
    // Creations and attestations; then a withdrawal and a correction.
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(fake.config()))).await,
        (3, 0)
    );
    let revoked = &approved[0];
    support::certificates::revoke(&store, revoked).await;
    support::settle(&store).await;
    assert_eq!(
        run(&mut worker(&store, out.path(), Some(fake.config()))).await,
        (1, 0)
    );

    // The batch manifests list what the registrar must still do by hand in Ladok.
    let mut steps: Vec<(String, String)> = Vec::new();
    for folder in cim::export::worker::batch_folders(out.path()).unwrap() {
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(folder.join("manifest.json")).unwrap()).unwrap();
        for entry in manifest["ladok_manual_steps"].as_array().unwrap() {
            let codes = entry["steps"].as_array().unwrap();
            for code in codes {
                let code = code.as_str().unwrap().to_owned();
                assert!(manifest["ladok_manual_step_texts"][&code].is_string());
                steps.push((entry["certificate_id"].as_str().unwrap().to_owned(), code));
            }
        }
    }
    for a in &approved {
        assert!(steps.contains(&(
            a.certificate_id.to_string(),
            "allow_in_degree_certificate".to_owned()
        )));
    }
    assert!(steps.contains(&(
        revoked.certificate_id.to_string(),
        "check_issued_degree_certificate".to_owned()
    )));

    let received = fake.received();
    let kinds: Vec<&str> = received.iter().map(|r| r.root.ty.name).collect();
    for kind in ["AnnanMerit", "AttesteraAndraMeriter", "Beslut"] {
        assert!(kinds.contains(&kind), "no {kind} sent: {kinds:?}");
    }
    assert_all_valid(&fake);
    // What the fake answers: a student, and a list of merits with its links.
    let client = LadokClient::new(fake.config()).unwrap();
    let uid = approved[1].student_uid.to_string();
    let merits: Vec<Value> = client
        .merits(&uid)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(merits.len(), 1);
    let list =
        json!({"link": [{"rel": "self", "uri": "/x", "method": "GET"}], "AnnanMerit": merits});
    assert_valid(
        schema::ANDRA_MERITER_ROOT,
        &schema::to_xml(schema::ANDRA_MERITER_ROOT, &list).unwrap(),
    );
    fake.add_student(&uid, "199001011239");
    let student = json!({"Uid": uid, "Avliden": false, "FelVidEtableringExternt": false,
        "Personnummer": client.student(&uid).await.unwrap().personnummer});
    assert_valid(
        schema::STUDENT_ROOT,
        &schema::to_xml(schema::STUDENT_ROOT, &student).unwrap(),
    );

    // What the schema lacks is refused: by our client before sending ...
    let mut bad = received
        .iter()
        .find(|r| r.root.ty.name == "AnnanMerit")
        .unwrap()
        .body
        .clone();
    bad["ExterntReferens"] = json!("ours");
    bad["StudentUID"] = json!(uid);
    let before = fake.requests().len();
    let err = client.create_merit(&uid, &bad).await.unwrap_err();
    assert!(matches!(err, LadokError::Schema(_)), "{err:?}");
    assert_eq!(fake.requests().len(), before, "nothing was sent");
    // ... and by Ladok (the fake) when it arrives, with a Ladok-shaped error.
    let raw = support::ladok::raw_client(&fake);
    let answer = raw
        .post(
            fake.base_url()
                .join(&format!("resultat/annanmerit/student/{uid}/skapa"))
                .unwrap(),
        )
        .header("Accept", "application/vnd.ladok-resultat+json")
        .header("Content-Type", "application/vnd.ladok-resultat+json")
        .body(bad.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let error: Value = answer.json().await.unwrap();
    assert_eq!(error["Felgrupp"], "commons.fel.grupp.felaktigt_varde");
    assert!(error["FelUID"].is_string());
    db.drop().await;
}

/// `cim ladok check` with the fake's files, as the registrar's office runs it.
fn ladok_check(files: &support::ladok::LadokFiles, extra: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cim"));
    command
        .args(["ladok", "check", "--student", "199001011239"])
        .envs(files.env())
        .env_remove("DATABASE_URL");
    for (k, v) in extra {
        command.env(k, v);
    }
    command.output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cim_ladok_check_answers_for_every_operation_and_writes_nothing() {
    let fake = FakeLadok::start().await.unwrap();
    let files = std::sync::Arc::new(support::ladok::LadokFiles::write(&fake));
    // A merit to read.
    fake.insert_merit(
        &FakeLadok::student_uid("199001011239"),
        json!({"AnvandsITillgodoraknande": false, "AnvandsIUtfardatBevis": false,
            "Attesterad": true, "Benamning": "Annan merit", "MeritViaEmrex": false,
            "TillatenIBevis": false, "TillatenIGemensamExamen": false}),
    );
    // Off the runtime's threads: the fake answers on them meanwhile.
    let f = files.clone();
    let output = tokio::task::spawn_blocking(move || ladok_check(&f, &[]))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("9 of 9 operations answered, 0 refused"),
        "{stdout}"
    );
    assert!(stdout.contains("unverified default"));
    let writes: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|(m, _)| m == "POST" || m == "PUT" || m == "DELETE")
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    // A path Ladok does not have is named, and the command fails.
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("operations.json");
    std::fs::write(
        &table,
        r#"{"create_merit": {"method": "POST", "path": "/resultat/annanmerit/skapa",
            "media_type": "application/vnd.ladok-resultat+json"}}"#,
    )
    .unwrap();
    let table = table.to_str().unwrap().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        ladok_check(&files, &[("CIM_LADOK_OPERATIONS", table.as_str())])
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(!output.status.success());
    assert!(
        stdout.lines().any(|l| l.starts_with("REFUSED")
            && l.contains("create_merit")
            && l.contains("configured")),
        "{stdout}"
    );
}
