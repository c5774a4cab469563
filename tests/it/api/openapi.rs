//! The OpenAPI document describes every route, with typed bodies.

use super::*;

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = spawn_app().await;
    let answer = app
        .send(app.http.get(format!("{}/openapi.json", app.base)))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let doc = answer.body;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let mut missing = Vec::new();
    for (method, path) in route_list() {
        let operation = &doc["paths"][path][method.as_str().to_lowercase()];
        if !operation.is_object() {
            missing.push(format!("{method} {path}"));
        }
    }
    assert!(
        missing.is_empty(),
        "routes missing from /openapi.json: {missing:?}"
    );
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        route_list().len(),
        "the document has operations no route serves"
    );
    // Commands document their body, their errors and the bearer scheme.
    let log = &doc["paths"]["/portfolios/{portfolio_id}/activities"]["post"];
    assert!(log["requestBody"].is_object());
    assert!(log["responses"]["422"].is_object());
    assert!(log["responses"]["401"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let gaps = openapi_gaps(&doc);
    assert!(
        gaps.is_empty(),
        "the OpenAPI document is incomplete:\n{}",
        gaps.join("\n")
    );
    app.db.drop().await;
}

/// Routes anyone may call: no bearer token.
const PUBLIC_ROUTES: [&str; 9] = [
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/metrics",
    "/issuer",
    "/issuer/keys",
    "/credentials/status/{list}",
    "/credentials/{credential_id}",
    "/verify",
];

/// Everything that makes the document less than complete: path parameters not declared, JSON bodies
/// without a schema or an example, success answers without a schema, references to no schema,
/// objects whose fields are not described, authenticated routes without the bearer requirement.
fn openapi_gaps(doc: &Value) -> Vec<String> {
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut gaps = Vec::new();
    untyped_objects(&doc["components"], "components", &mut gaps);
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let at = format!("{method} {path}");
            untyped_objects(op, &at, &mut gaps);
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            for segment in path.split('/') {
                if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'))
                    && !declared.contains(name)
                {
                    gaps.push(format!("{at}: path parameter {name} not declared"));
                }
            }
            if let Some(content) = op["requestBody"]["content"].as_object() {
                for (media_type, body) in content.iter().filter(|(t, _)| t.contains("json")) {
                    let named = body["schema"]["$ref"]
                        .as_str()
                        .map(|r| &schemas[ref_name(r)]);
                    let has_example = body.get("example").is_some()
                        || named.is_some_and(|s| s.get("example").is_some());
                    if body.get("schema").is_none() || !has_example {
                        gaps.push(format!("{at}: {media_type} body without schema or example"));
                    }
                }
            }
            let responses = op["responses"].as_object().unwrap();
            if !responses.keys().any(|s| s.starts_with('2')) {
                gaps.push(format!("{at}: no success response"));
            }
            for (status, response) in responses.iter().filter(|(s, _)| s.starts_with('2')) {
                for (media_type, body) in response["content"].as_object().into_iter().flatten() {
                    if media_type.contains("json")
                        && path != "/openapi.json"
                        && body.get("schema").is_none()
                    {
                        gaps.push(format!("{at}: {status} {media_type} without schema"));
                    }
                }
            }
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            if secured == PUBLIC_ROUTES.contains(&path.as_str()) {
                gaps.push(format!(
                    "{at}: bearer requirement {}",
                    if secured {
                        "on a public route"
                    } else {
                        "missing"
                    }
                ));
            }
        }
    }
    let text = doc.to_string();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        if !schemas.contains_key(name) {
            gaps.push(format!("reference to no schema: {name}"));
        }
    }
    gaps
}

fn ref_name(reference: &str) -> &str {
    reference.rsplit('/').next().unwrap()
}

/// Objects that say nothing of their fields (a `value_type = Object` shortcut, say).
fn untyped_objects(value: &Value, at: &str, gaps: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let bare = map.get("type") == Some(&json!("object"))
                && [
                    "properties",
                    "additionalProperties",
                    "oneOf",
                    "allOf",
                    "anyOf",
                ]
                .iter()
                .all(|k| !map.contains_key(*k));
            if bare {
                gaps.push(format!("{at}: an object without described fields"));
            }
            for (key, inner) in map {
                untyped_objects(inner, &format!("{at}/{key}"), gaps);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| untyped_objects(v, at, gaps)),
        _ => {}
    }
}
