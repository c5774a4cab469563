//! Who may call which route, proven call by call over real HTTP against a real PostgreSQL: every
//! route of the router, every kind of caller, with real resources in every path parameter.
//! "Allowed" is the route's own 2xx status; "refused" is the exact 401, 403 or 404 of the table
//! (`support::routes`); a 422 or a 500 is neither. A forged token is 401 on every protected route.

use crate::support;
mod world;

use cim::http::route_list;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use support::flow::Caller;
use support::routes::{CALLERS, E, TABLE};
use world::{Body, Stage, Target, World, pdf};

#[test]
fn the_authorisation_table_lists_exactly_the_routes_of_the_router() {
    let table: BTreeSet<(String, String)> = TABLE
        .iter()
        .map(|(m, p, _, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(table.len(), TABLE.len(), "a route is listed twice");
    let routes: BTreeSet<(String, String)> = route_list()
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_owned()))
        .collect();
    let missing: Vec<_> = routes.difference(&table).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the table: {missing:?}"
    );
    let stale: Vec<_> = table.difference(&routes).collect();
    assert!(
        stale.is_empty(),
        "table rows for routes that do not exist: {stale:?}"
    );
    // Every route is allowed to someone, so every route's success is proven too.
    for (method, path, _, expected) in TABLE {
        assert!(
            expected.iter().any(|e| matches!(e, E::Allowed(200..=299))),
            "{method} {path} allows nobody"
        );
    }
}

/// One answer: status and body (JSON, `Null` otherwise), and whether it is a problem document.
struct Answer {
    status: u16,
    body: Value,
    problem: bool,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

async fn call(world: &World, method: &str, target: &Target, caller: Option<&Caller>) -> Answer {
    let url = format!("{}{}", world.server.base, target.path);
    let http = reqwest::Client::new();
    let builder = match method {
        "GET" => http.get(url),
        "PUT" => http.put(url),
        _ => http.post(url),
    };
    let mut request = match method {
        "GET" => builder,
        _ => match &target.body {
            Body::Empty => builder.json(&json!({})),
            Body::Json(body) => builder.json(body),
            Body::Raw(bytes) => builder.body(bytes.clone()),
            Body::Opening => builder.json(&json!({
                "student_uid": caller.map_or("nobody", |c| c.subject.as_str()),
                "identity_number": support::unique_identity_number(),
                "expected_completion": support::flow::today() + chrono::TimeDelta::days(365),
            })),
        },
    };
    if let Some(caller) = caller {
        request = request.bearer_auth(&caller.token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let problem = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v == "application/problem+json");
    let bytes = response.bytes().await.unwrap();
    Answer {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        problem,
    }
}

/// Why `answer` is not what `want` says, if it is not.
fn mismatch(want: E, answer: &Answer) -> Option<String> {
    let (s, code) = (answer.status, answer.code());
    let ok = match want {
        E::Allowed(status) => s == status,
        E::Unauth => s == 401 && code.starts_with("token_"),
        // The route's own 403 code where it has one (a student setting the completion date).
        E::Forbidden => s == 403,
        E::Hidden => s == 404 && code == "portfolio_not_found",
    };
    let refusal_is_problem = s < 400 || (answer.problem && answer.body["status"] == s);
    (!ok || !refusal_is_problem).then(|| format!("expected {want:?}, got {s} {}", answer.body))
}

#[tokio::test]
async fn every_route_answers_every_role_as_the_table_says() {
    let world = World::build().await;
    // Signed with another secret: well-formed, and refused.
    let forged = Caller {
        subject: "admin-1".into(),
        token: forged_token(),
    };
    let mut failures = Vec::new();
    let mut calls = 0;
    for (method, template, takes_json, expected) in TABLE {
        let target = world.target(method, template).await;
        assert_eq!(
            matches!(target.body, Body::Json(_) | Body::Opening),
            *takes_json,
            "{method} {template}: the table and the fixture disagree about the body"
        );
        let callers = [
            Some(&target.owner),
            Some(&world.other),
            Some(&world.anna),
            Some(&world.bert),
            Some(&world.registrar),
            Some(&world.admin),
            None,
        ];
        for ((caller, name), want) in callers.into_iter().zip(CALLERS).zip(expected) {
            let answer = call(&world, method, &target, caller).await;
            calls += 1;
            if let Some(why) = mismatch(*want, &answer) {
                failures.push(format!("{method} {} as {name}: {why}", target.path));
            }
        }
        if expected[6] == E::Unauth {
            let answer = call(&world, method, &target, Some(&forged)).await;
            calls += 1;
            if let Some(why) = mismatch(E::Unauth, &answer) {
                failures.push(format!(
                    "{method} {} with a forged token: {why}",
                    target.path
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Nothing skipped: every route as every caller, and every protected route with a forged token.
    let protected = TABLE.iter().filter(|r| r.3[6] == E::Unauth).count();
    assert_eq!(calls, TABLE.len() * CALLERS.len() + protected);
    world.server.stop().await;
}

/// The table puts each caller's own ids in the path; here the ids of other people's objects are put
/// into one's own paths and bodies, and reach nothing.
#[tokio::test]
async fn ids_of_other_peoples_objects_reach_nothing_through_ones_own() {
    let world = World::build().await;
    let mine = world.portfolio(Stage::Opened).await;
    let theirs = world.portfolio_in(world.b, Stage::Opened).await;
    let hash = world.upload(&theirs, pdf("theirs")).await;
    let target = |path: String, body| Target {
        path,
        owner: mine.student.clone(),
        body,
    };
    // Another portfolio's upload is not downloadable through one's own portfolio, by its student
    // or by its coordinator.
    let download = target(format!("/portfolios/{}/media/{hash}", mine.id), Body::Empty);
    for caller in [&mine.student, &world.anna] {
        let answer = call(&world, "GET", &download, Some(caller)).await;
        assert_eq!((answer.status, answer.code()), (404, "media_not_found"));
    }
    // Nor can it be attached as one's evidence.
    let mut activity = support::flow::activity("tedx", 10);
    activity["evidence_sha256"] = json!(hash);
    let attach = target(
        format!("/portfolios/{}/activities", mine.id),
        Body::Json(activity),
    );
    let answer = call(&world, "POST", &attach, Some(&mine.student)).await;
    assert_eq!((answer.status, answer.code()), (422, "media_not_uploaded"));
    // Nor can a student open a portfolio in another student's name.
    let opening = json!({
        "student_uid": theirs.student.subject,
        "identity_number": support::unique_identity_number(),
        "expected_completion": support::flow::today() + chrono::TimeDelta::days(365),
    });
    let open = target(
        format!("/programs/{}/portfolios", world.a),
        Body::Json(opening),
    );
    let answer = call(&world, "POST", &open, Some(&mine.student)).await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    world.server.stop().await;
}

/// An admin's token signed with a secret the server does not know.
fn forged_token() -> String {
    use cim::http::auth::{DEFAULT_AUDIENCE, DEFAULT_ISSUER, DevToken, Role, dev_token};
    dev_token(&DevToken {
        secret: "another-secret-that-the-server-never-saw-0123",
        issuer: DEFAULT_ISSUER,
        audience: DEFAULT_AUDIENCE,
        role: Role::Admin,
        subject: "admin-1",
        programs: Vec::new(),
        now: chrono::Utc::now(),
        ttl: chrono::TimeDelta::minutes(10),
        profile: Default::default(),
    })
    .unwrap()
}
