//! Bad input, systematically: every operation of the served OpenAPI document is called with bodies,
//! path values and query values derived from its own description and broken on purpose (wrong types,
//! huge and odd strings, deep nesting, overflowing numbers, impossible dates and offsets, invalid
//! UTF-8, path traversal, SQL metacharacters), by every role. Not one answer may be a 5xx, every
//! refusal must be a problem with a code, and what was stored before is still there afterwards.
//! After the random cases, a systematic pass gives every top-level field of every documented body
//! every kind of bad value once.
//!
//! Deterministic: the generator is seeded (`CIM_FUZZ_SEED` to replay another run, `CIM_FUZZ_CASES`
//! for more cases per operation; the defaults keep the test to seconds).

use crate::support;

use chrono::{TimeDelta, Utc};
use cim::http::auth::Role;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use support::auth::token;
use support::flow::enrolment;
use support::server::{COORDINATORS, TestServer};
use uuid::Uuid;

/// Strings that have broken parsers, databases and file systems before.
const NASTY_STRINGS: &[&str] = &[
    "",
    " ",
    "'; DROP TABLE events; --",
    "\" OR 1=1 --",
    "%00",
    "\u{0000}",
    "../../../../etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "\u{202e}evil",
    "👩🏽‍⚕️🌍",
    "null",
    "NaN",
    "-1",
    "2026-02-30",
    "2026-13-01T00:00:00Z",
    "0000-01-01",
    "+275760-09-13T00:00:00Z",
    "2026-03-29T02:30:00+01:00",
    "2026-10-25T02:30:00+99:00",
    "1e309",
    "<script>alert(1)</script>",
];

/// Numbers at and past every integer width a field may have.
fn nasty_numbers() -> [Value; 9] {
    [
        json!(-1),
        json!(0),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(1.5),
        json!(-0.0),
        json!(1e308),
        json!(4_294_967_296u64),
        json!(2_147_483_648u64),
    ]
}

fn nasty_number(rng: &mut StdRng) -> Value {
    let options = nasty_numbers();
    options[rng.random_range(0..options.len())].clone()
}

/// Every kind of bad value, once each: for the systematic pass over every field.
fn every_bad_value() -> Vec<Value> {
    let mut values: Vec<Value> = NASTY_STRINGS.iter().map(|s| json!(s)).collect();
    values.extend(nasty_numbers());
    values.extend([
        Value::Null,
        json!(true),
        json!([]),
        json!({}),
        json!({"nested": {"object": [1, "two", null]}}),
        json!("x".repeat(120_000)),
        deep(3_000),
    ]);
    values
}

fn nasty_value(rng: &mut StdRng) -> Value {
    match rng.random_range(0..9) {
        0 => Value::Null,
        1 => json!(rng.random::<bool>()),
        2 => nasty_number(rng),
        3 => json!(NASTY_STRINGS[rng.random_range(0..NASTY_STRINGS.len())]),
        4 => json!("x".repeat(rng.random_range(1_000..120_000))),
        5 => json!([]),
        6 => json!({}),
        7 => deep(rng.random_range(50..3000)),
        _ => json!([
            NASTY_STRINGS[rng.random_range(0..NASTY_STRINGS.len())],
            1,
            null
        ]),
    }
}

/// `[[[…]]]` `depth` deep, built as a value (parsing it would stop at serde_json's own limit of
/// 128 levels, and the server must meet the real depth).
fn deep(depth: usize) -> Value {
    let mut value = json!([]);
    for _ in 0..depth {
        value = Value::Array(vec![value]);
    }
    value
}

/// The operation's example body with one to three fields broken, a field added or removed, or the
/// whole body replaced.
fn mutate(example: &Value, rng: &mut StdRng) -> Value {
    let mut body = example.clone();
    let Some(fields) = body.as_object_mut() else {
        return nasty_value(rng);
    };
    let keys: Vec<String> = fields.keys().cloned().collect();
    match rng.random_range(0..10) {
        0 => return nasty_value(rng),
        1 => {
            fields.insert(
                format!("unexpected_{}", rng.random::<u16>()),
                nasty_value(rng),
            );
        }
        2 if !keys.is_empty() => {
            fields.remove(&keys[rng.random_range(0..keys.len())]);
        }
        _ if !keys.is_empty() => {
            for _ in 0..rng.random_range(1..=3) {
                let key = &keys[rng.random_range(0..keys.len())];
                fields.insert(key.clone(), nasty_value(rng));
            }
        }
        _ => {
            fields.insert("field".into(), nasty_value(rng));
        }
    }
    body
}

/// Raw bodies that are not JSON at all, or not UTF-8.
fn raw_body(rng: &mut StdRng) -> (Vec<u8>, &'static str) {
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes();
    let options: [(Vec<u8>, &'static str); 8] = [
        (vec![0xff, 0xfe, b'{', 0x80, b'}'], "application/json"),
        (b"{\"text\": \"\xc3\x28\"}".to_vec(), "application/json"),
        (b"{\"a\":".to_vec(), "application/json"),
        (vec![b'{'; 300 * 1024], "application/json"),
        // Deep but small: under the size limit, so it reaches the parser.
        (nested(rng.random_range(129..20_000)), "application/json"),
        (
            [b"{\"item\": ".as_slice(), &nested(5_000), b"}"].concat(),
            "application/json",
        ),
        (b"text=hello".to_vec(), "application/x-www-form-urlencoded"),
        (b"".to_vec(), "application/json"),
    ];
    options[rng.random_range(0..options.len())].clone()
}

/// The path of `template` with each `{name}` replaced by `value(name)`.
fn fill_path(template: &str, mut value: impl FnMut(&str) -> String) -> String {
    let mut path = String::new();
    for segment in template.split('/').skip(1) {
        path.push('/');
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => path.push_str(&value(name)),
            None => path.push_str(segment),
        }
    }
    path
}

/// The real object a path parameter names (an unknown one for names without a real object).
fn real_id(name: &str, ids: &Ids) -> String {
    match name {
        "program_id" => ids.program.clone(),
        "portfolio_id" => ids.portfolio.clone(),
        "activity_id" => ids.activity.clone(),
        "item" => "language-cafe".into(),
        "sha256" => "a".repeat(64),
        "name" => "manifest.json".into(),
        _ => Uuid::now_v7().to_string(),
    }
}

/// A value for a path parameter: a real id most of the time (so the request reaches the body), or
/// something that is not an id at all.
fn path_value(name: &str, ids: &Ids, rng: &mut StdRng) -> String {
    if rng.random_range(0..4) == 0 {
        let odd = [
            "..%2F..%2Fetc%2Fpasswd",
            "%2e%2e",
            "not-a-uuid",
            "00000000-0000-0000-0000-000000000000",
            "'%20OR%201=1",
            "%00",
            &"f".repeat(5000),
            "%F0%9F%8C%8D",
        ];
        return odd[rng.random_range(0..odd.len())].to_owned();
    }
    real_id(name, ids)
}

/// Checks one answer: never a 5xx, and every 4xx a problem with a code and a sentence. Returns the
/// status; what is wrong goes to `failures`.
async fn check(
    sent: Result<reqwest::Response, reqwest::Error>,
    what: &str,
    failures: &mut Vec<String>,
) -> u16 {
    let response = match sent {
        Ok(response) => response,
        Err(e) => {
            failures.push(format!("{what}: no answer: {e}"));
            return 0;
        }
    };
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = response.text().await.unwrap_or_default();
    if status.is_server_error() {
        failures.push(format!("{what}: {status} {text}"));
    } else if status.is_client_error() {
        let problem: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if content_type != "application/problem+json"
            || !problem["code"].is_string()
            || !problem["detail"].is_string()
        {
            failures.push(format!(
                "{what}: {status} is not a problem ({content_type}): {text:.200}"
            ));
        }
    }
    status.as_u16()
}

fn query_value(rng: &mut StdRng) -> String {
    let options = [
        "-1",
        "0",
        "99999999999999999999",
        "1e3",
        "2026-02-30T00:00:00Z",
        "2026-01-01T00:00:00+25:00",
        "yesterday",
        "%27%3B%20DROP%20TABLE%20events%3B%20--",
        "eyJsIjoiYXVkaXQiLCJhIjp7fX0",
        "%FF%FE",
        "collecting",
    ];
    options[rng.random_range(0..options.len())].to_owned()
}

/// Real objects the requests can name.
struct Ids {
    program: String,
    portfolio: String,
    activity: String,
}

#[tokio::test]
async fn no_input_makes_the_api_fail_or_lose_anything() {
    let seed: u64 = std::env::var("CIM_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_202);
    let cases: usize = std::env::var("CIM_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    let mut rng = StdRng::seed_from_u64(seed);
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let program = server.programs[0];

    // One real student with one activity, so that ids in paths exist.
    let uid = Uuid::now_v7().to_string();
    let student = token(Role::Student, &uid);
    let today = Utc::now().date_naive();
    let opened: Value = http
        .post(format!("{}/programs/{program}/portfolios", server.base))
        .bearer_auth(&student)
        .json(&enrolment(&uid, "19121212-1212"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let portfolio = opened["view"]["portfolio_id"].as_str().unwrap().to_owned();
    let logged: Value = http
        .post(format!("{}/portfolios/{portfolio}/activities", server.base))
        .bearer_auth(&student)
        .json(
            &json!({"item": "language-cafe", "started_on": today - TimeDelta::days(9),
            "ended_on": today - TimeDelta::days(7), "description": "Weekly language café."}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let activity = logged["view"]["activities"][0]["activity_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ids = Ids {
        program: program.to_string(),
        portfolio,
        activity,
    };
    let stored_before: Vec<(i64, String)> =
        sqlx::query_as("SELECT position, event_type FROM events ORDER BY position")
            .fetch_all(&server.db.pool)
            .await
            .unwrap();

    let tokens = [
        student.clone(),
        token(Role::Coordinator, COORDINATORS[0]),
        token(Role::Admin, "admin-1"),
        token(Role::Registrar, "registrar-1"),
    ];
    let doc: Value = http
        .get(format!("{}/openapi.json", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schemas = &doc["components"]["schemas"];
    let mut failures = Vec::new();
    let mut sent = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let example = body_example(operation, schemas);
            let query_names: Vec<&str> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str())
                .collect();
            for case in 0..cases {
                let mut path = fill_path(template, |name| path_value(name, &ids, &mut rng));
                if !query_names.is_empty() {
                    let mut query = Vec::new();
                    for name in &query_names {
                        if rng.random_bool(0.7) {
                            query.push(format!("{name}={}", query_value(&mut rng)));
                        }
                    }
                    path = format!("{path}?{}", query.join("&"));
                }
                let bearer = &tokens[case % tokens.len()];
                let url = format!("{}{path}", server.base);
                let request = match method.as_str() {
                    "get" => http.get(&url),
                    _ => http.post(&url),
                }
                .bearer_auth(bearer)
                .header("idempotency-key", format!("fuzz-{seed}-{sent}"));
                let request = match (&example, rng.random_range(0..5)) {
                    (_, 0) => {
                        let (bytes, content_type) = raw_body(&mut rng);
                        request.header("content-type", content_type).body(bytes)
                    }
                    (Some(example), _) => request.json(&mutate(example, &mut rng)),
                    (None, _) if method == "post" => request.json(&nasty_value(&mut rng)),
                    (None, _) => request,
                };
                sent += 1;
                let what = format!("{method} {path}");
                check(request.send().await, &what, &mut failures).await;
            }
        }
    }
    assert!(sent > 200, "only {sent} requests were sent");

    // Systematically: every field of every documented body meets every kind of bad value, sent by
    // a role that the documented example gets past authentication and authorisation with, so that
    // the value reaches the body's parser and the handler behind it.
    let mut fields_covered = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        let Some(operation) = item.get("post") else {
            continue;
        };
        let Some(Value::Object(example)) = body_example(operation, schemas) else {
            continue;
        };
        let path = fill_path(template, |name| real_id(name, &ids));
        let url = format!("{}{path}", server.base);
        let mut allowed = Vec::new();
        for bearer in &tokens {
            sent += 1;
            let answer = http
                .post(&url)
                .bearer_auth(bearer)
                .header("idempotency-key", format!("fuzz-{seed}-{sent}"))
                .json(&example)
                .send()
                .await;
            let status = check(answer, &format!("post {path} (example)"), &mut failures).await;
            if ![0, 401, 403, 404].contains(&status) {
                allowed.push(bearer);
            }
        }
        if allowed.is_empty() {
            // The example itself is refused to everyone (it names another student, say): the
            // refusal comes after the body is read, so every role's request still parses it.
            allowed.extend(&tokens);
        }
        for field in example.keys() {
            fields_covered += 1;
            for (k, bad) in every_bad_value().into_iter().enumerate() {
                let mut body = example.clone();
                body.insert(field.clone(), bad);
                sent += 1;
                let answer = http
                    .post(&url)
                    .bearer_auth(allowed[k % allowed.len()])
                    .header("idempotency-key", format!("fuzz-{seed}-{sent}"))
                    .json(&body)
                    .send()
                    .await;
                check(
                    answer,
                    &format!("post {path} ({field} broken)"),
                    &mut failures,
                )
                .await;
            }
        }
    }
    assert!(
        fields_covered > 20,
        "only {fields_covered} fields were broken"
    );
    eprintln!("{sent} requests; {fields_covered} body fields broken in every way");
    assert!(
        failures.is_empty(),
        "seed {seed}: {} of {sent} answers failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Nothing stored before was lost or changed.
    let stored_after: Vec<(i64, String)> = sqlx::query_as(
        "SELECT position, event_type FROM events WHERE position <= $1 ORDER BY position",
    )
    .bind(stored_before.last().unwrap().0)
    .fetch_all(&server.db.pool)
    .await
    .unwrap();
    assert_eq!(stored_after, stored_before);
    let portfolio = http
        .get(format!("{}/portfolios/{}", server.base, ids.portfolio))
        .bearer_auth(&student)
        .send()
        .await
        .unwrap();
    assert_eq!(portfolio.status(), 200);
    server.stop().await;
}

/// The example of an operation's JSON body, from the body itself or its schema.
fn body_example(operation: &Value, schemas: &Value) -> Option<Value> {
    let body = &operation["requestBody"]["content"]["application/json"];
    if let Some(example) = body.get("example") {
        return Some(example.clone());
    }
    let name = body["schema"]["$ref"].as_str()?.rsplit('/').next()?;
    schemas[name].get("example").cloned()
}
