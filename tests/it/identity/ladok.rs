//! The number as Ladok knows it: names from the token, the number from Ladok, an unreachable
//! Ladok, the next export run's check and a corrected number.

use super::*;
use cim::log;

#[tokio::test]
async fn names_come_from_the_token_and_the_number_from_ladok_and_a_contradiction_is_refused() {
    let fake = FakeLadok::start().await.unwrap();
    let app = spawn_app_with_ladok(Some(fake.config())).await;
    let uid = Uuid::now_v7().to_string();
    fake.add_student(&uid, "199001011239");
    let bearer = student_token_with_profile(&uid, "Ada", "Lindqvist", "ada@student.example.se");

    // A body that contradicts a trusted source is refused, field by field, and nothing is stored.
    for (field, value) in [
        ("identity_number", "811218-9876"),
        ("given_names", "Eve"),
        ("family_name", "Other"),
        ("email", "eve@example.se"),
    ] {
        let mut body = expected_completion();
        body["student_uid"] = json!(uid);
        body[field] = json!(value);
        let refused = app.open_as(&bearer, app.program, &body, None).await;
        assert_eq!(
            (refused.status, refused.code()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "personal_details_mismatch"
            ),
            "{field}: {}",
            refused.body
        );
        assert_eq!(refused.content_type, "application/problem+json");
        assert_eq!(refused.body["field"], field);
    }
    assert_eq!(app.opened_events().await, 0);

    // Nothing personal in the body: the token's names and Ladok's number are stored. Agreeing
    // values (the number in another form) are accepted too.
    let mut body = expected_completion();
    body["student_uid"] = json!(uid);
    body["identity_number"] = json!("900101-1239");
    let opened = app.open_as(&bearer, app.program, &body, None).await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.body);
    let student = &opened.body["personal"]["student"];
    assert_eq!(student["identity_number"], "199001011239");
    assert_eq!(student["name"]["given_names"], "Ada");
    assert_eq!(student["name"]["family_name"], "Lindqvist");
    assert_eq!(student["email"], "ada@student.example.se");

    // A Ladok record without an identity number: the typed one is needed, and taken.
    let stranger = Uuid::now_v7().to_string();
    let mut body = expected_completion();
    body["student_uid"] = json!(stranger);
    let bearer = student_token_with_profile(&stranger, "Bo", "Ek", "bo@student.example.se");
    let refused = app.open_as(&bearer, app.program, &body, None).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "personal_details_missing"),
        "{}",
        refused.body
    );
    body["identity_number"] = json!("811218-9876");
    let opened = app.open_as(&bearer, app.program, &body, None).await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.body);
}

#[tokio::test]
async fn with_ladok_unreachable_the_portfolio_opens_with_the_token_and_the_typed_number() {
    let fake = FakeLadok::start().await.unwrap();
    let config = fake.config();
    drop(fake);
    let app = spawn_app_with_ladok(Some(config)).await;
    let uid = Uuid::now_v7().to_string();
    let bearer = student_token_with_profile(&uid, "Ada", "Lindqvist", "ada@student.example.se");
    let mut body = expected_completion();
    body["student_uid"] = json!(uid);

    // Without a number there is nothing to go on.
    let refused = app.open_as(&bearer, app.program, &body, None).await;
    assert_eq!(
        (
            refused.status,
            refused.code(),
            refused.body["field"].as_str()
        ),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "personal_details_missing",
            Some("identity_number")
        ),
        "{}",
        refused.body
    );
    body["identity_number"] = json!("19900101-1239");
    let opened = app.open_as(&bearer, app.program, &body, None).await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.body);
    let student = &opened.body["personal"]["student"];
    assert_eq!(student["identity_number"], "199001011239");
    assert_eq!(student["name"]["family_name"], "Lindqvist");
}

#[tokio::test]
async fn a_typed_number_is_checked_against_ladok_by_the_next_export_run() {
    // Ladok is down at enrolment: every number below is the one typed.
    let down = FakeLadok::start().await.unwrap();
    let config = down.config();
    drop(down);
    let app = spawn_app_with_ladok(Some(config)).await;
    let number = || support::unique_identity_number();
    let (wrong, right, same, unknown, other, held) =
        (number(), number(), number(), number(), number(), number());
    let uids: Vec<String> = (0..5).map(|_| Uuid::now_v7().to_string()).collect();
    // (student, typed number): corrected, confirmed, not in Ladok, Ladok's number held by the
    // fifth student, who holds it rightly.
    let typed = [
        (&uids[0], &wrong),
        (&uids[1], &same),
        (&uids[2], &unknown),
        (&uids[3], &other),
        (&uids[4], &held),
    ];
    let opens = typed.iter().map(|(uid, n)| async {
        let answer = app.open(app.program, uid, &enrolment(uid, n), None).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.portfolio_id().to_owned()
    });
    let portfolios = futures::future::join_all(opens).await;

    let ladok = FakeLadok::start().await.unwrap();
    ladok.add_student(&uids[0], &right);
    ladok.add_student(&uids[1], &same);
    ladok.add_student(&uids[3], &held);
    ladok.add_student(&uids[4], &held);
    ladok.forget_student(&uids[2]);
    let mut worker = WorkerConfig::new(tempfile::tempdir().unwrap().keep());
    worker.ladok = Some(ladok.config());
    let store = EventStore::new(app.db.pool.clone(), log::upcasters());
    run_export(&store, &worker).await.unwrap();

    let expected = [
        ("corrected", &right),
        ("confirmed", &same),
        ("not_in_ladok", &unknown),
        ("number_held_by_another", &other),
        ("confirmed", &held),
    ];
    for ((uid, portfolio), (outcome, number)) in uids.iter().zip(&portfolios).zip(expected) {
        let body: Value = app
            .http
            .get(format!("{}/portfolios/{portfolio}", app.base))
            .bearer_auth(token(Role::Student, uid))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["view"]["identity_check"], outcome, "{body}");
        assert_eq!(
            body["personal"]["student"]["identity_number"], **number,
            "{body}"
        );
    }

    // The corrected typed number is free again; Ladok's is the student's now.
    let newcomer = Uuid::now_v7().to_string();
    let freed = app
        .open(app.program, &newcomer, &enrolment(&newcomer, &wrong), None)
        .await;
    assert_eq!(freed.status, StatusCode::CREATED, "{}", freed.body);
    let late = Uuid::now_v7().to_string();
    let taken = app
        .open(app.program, &late, &enrolment(&late, &right), None)
        .await;
    assert_eq!(
        (taken.status, taken.code()),
        (StatusCode::CONFLICT, "identity_number_taken")
    );

    // Asked once: the next run leaves the five alone and checks only the newcomer.
    let checks = || support::count_events(&app.db.pool, "IdentityCheckedInLadok");
    assert_eq!(checks().await, 5);
    run_export(&store, &worker).await.unwrap();
    assert_eq!(checks().await, 6);
    app.db.drop().await;
}

#[tokio::test]
async fn a_corrected_number_is_freed_only_once_no_portfolio_of_the_student_carries_it() {
    let app = spawn_app().await;
    let store = EventStore::new(app.db.pool.clone(), log::upcasters());
    let handler = CommandHandler::new(store.clone());
    let (typed, ladoks) = (
        support::unique_identity_number(),
        support::unique_identity_number(),
    );
    // One student, two programs, the same typed number in both (Ladok was down each time).
    let uid = Uuid::now_v7().to_string();
    let mut portfolios = Vec::new();
    for program in [app.program, app.other_program] {
        let opened = app
            .open(program, &uid, &enrolment(&uid, &typed), None)
            .await;
        assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.body);
        portfolios.push(PortfolioId::new(
            Uuid::parse_str(opened.portfolio_id()).unwrap(),
        ));
    }
    let correct = async |portfolio: PortfolioId| {
        let system = CommandContext {
            actor_id: "identity-check".into(),
            role: ActorRole::System,
            correlation_id: Uuid::now_v7(),
            command_id: Uuid::now_v7(),
            now: Utc::now(),
        };
        let number = IdentityNumber::parse(&ladoks, Utc::now().date_naive()).unwrap();
        let record = LadokRecord::Student {
            identity_number: Some(number),
        };
        handler
            .portfolio(
                portfolio,
                PortfolioCommand::CheckIdentityInLadok { record },
                &system,
            )
            .await
            .unwrap();
    };
    let someone_else_opens_with_the_typed_number = async || {
        let other = Uuid::now_v7().to_string();
        app.open(app.program, &other, &enrolment(&other, &typed), None)
            .await
    };

    // The first portfolio is corrected; the second still carries the typed number, so it stays
    // the student's.
    correct(portfolios[0]).await;
    let refused = someone_else_opens_with_the_typed_number().await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::CONFLICT, "identity_number_taken")
    );
    // Once the second is corrected too, nothing of the student's carries it: it is free.
    correct(portfolios[1]).await;
    let freed = someone_else_opens_with_the_typed_number().await;
    assert_eq!(freed.status, StatusCode::CREATED, "{}", freed.body);
    app.db.drop().await;
}
