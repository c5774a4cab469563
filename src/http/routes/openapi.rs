//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations and the
//! request and view types, served at `GET /openapi.json`.
//!
//! What every authenticated route shares is added here rather than repeated on each handler: the
//! bearer security requirement and the problem responses it can give (400 … 500, 429 with
//! `Retry-After` among them). The commands' headers and answers, and the path parameters, are
//! declared once in `http::docs` and `http::paths`; `tests/it/api/` fails when a route of [`super::all`] is
//! missing from the document.

use super::{
    activities, application, audit, certificates, completion, credentials, erasure, exports,
    extensions, lists, media, notifications, operations, portfolios, programs, reflections, review,
    revocation, statistics,
};
use crate::http::view;
use axum::Json;
use serde_json::json;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HttpMethod, OpenApi as Document, PathItem, Ref, ResponseBuilder,
};
use utoipa::{Modify, OpenApi, ToSchema};

/// The `application/problem+json` body of every error.
#[derive(Debug, ToSchema)]
#[schema(as = Problem, example = json!({
    "type": "urn:cim:problem:reflection_word_count_out_of_band",
    "title": "Unprocessable Entity",
    "status": 422,
    "code": "reflection_word_count_out_of_band",
    "detail": "the reflection has 642 words; this program accepts 900 to 1100",
    "field": "text"
}))]
#[allow(dead_code)]
pub struct ProblemDoc {
    /// `urn:cim:problem:<code>`.
    #[schema(rename = "type")]
    kind: String,
    /// The HTTP status's reason phrase.
    title: String,
    status: u16,
    /// Stable, machine-readable; match on this.
    code: String,
    /// A sentence for the person reading it.
    detail: String,
    /// The request field at fault, when there is one (dotted for nested fields).
    field: Option<String>,
    /// With 409 `portfolio_exists`: the student's existing portfolio in the program.
    #[schema(value_type = Option<Uuid>)]
    portfolio_id: Option<String>,
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "CIM: Certificate of International Merits",
        description = "Students log international activities, reflect, and apply; coordinators review and approve. \
                       Commands are POSTs answering with the updated resource and its ETag (the stream version). \
                       Errors are application/problem+json. See the README's \"Web API\" section for the 401/403/404 rule, \
                       Idempotency-Key and If-Match."
    ),
    paths(
        openapi_json,
        programs::register,
        programs::show,
        programs::assign_coordinator,
        programs::unassign_coordinator,
        programs::add_item,
        programs::rename_item,
        programs::retire_item,
        programs::change_rules,
        portfolios::open,
        portfolios::show,
        completion::set,
        completion::confirm,
        completion::propose,
        completion::accept,
        completion::decline,
        activities::log,
        activities::withdraw,
        reflections::activity_submit,
        reflections::activity_resubmit,
        reflections::activity_approve,
        reflections::activity_return_for_revision,
        reflections::final_submit,
        reflections::final_resubmit,
        reflections::final_approve,
        reflections::final_return_for_revision,
        extensions::grant,
        application::apply,
        application::approve,
        application::reject,
        revocation::revoke,
        media::upload,
        media::download,
        operations::metrics,
        lists::mine,
        lists::of_program,
        review::queue,
        audit::history,
        audit::history_csv,
        audit::as_of,
        audit::program_log,
        audit::program_log_csv,
        statistics::overall,
        statistics::of_program,
        certificates::list,
        certificates::show,
        exports::list,
        exports::show,
        exports::download,
        exports::acknowledge,
        exports::redeliver,
        exports::run,
        erasure::erase,
        notifications::mine,
        notifications::set_mine,
        notifications::list,
        notifications::retry,
        credentials::download,
        credentials::pdf,
        credentials::profile,
        credentials::keys,
        credentials::status_list,
        credentials::show,
        credentials::verify,
        credentials::issued,
    ),
    // The commands' answers (`docs`) refer to the views without registering them.
    components(schemas(ProblemDoc, view::PortfolioView, view::ProgramView)),
    modifiers(&Conventions),
    tags(
        (name = "programs", description = "Programs, catalogs, rules and coordinators"),
        (name = "portfolios", description = "A student's portfolio and everything in it"),
        (name = "reviews", description = "What waits for a coordinator"),
        (name = "audit", description = "A portfolio's history, time travel, a program's log, CSV exports"),
        (name = "statistics", description = "The pilot evaluation, without personal data"),
        (name = "registrar", description = "Approved and revoked certificates, export batches and their delivery"),
        (name = "operations", description = "Health, metrics and the API description"),
        (name = "erasure", description = "Erasing a student's personal data (GDPR)"),
        (name = "notifications", description = "One's notification settings; the outbox of messages"),
        (name = "credentials", description = "Open Badges 3.0 credentials of approved certificates: download, issuer, keys, status list, verification"),
    )
)]
pub struct ApiDoc;

/// `GET /openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn openapi_json() -> Json<Document> {
    Json(ApiDoc::openapi())
}

/// What every operation shares: the bearer scheme, the problem responses, and the health routes
/// (whose handlers carry no `utoipa::path`: their answers are described here, by hand).
struct Conventions;

/// The problem statuses an authenticated route may answer with, and when.
const PROBLEMS: &[(&str, &str, bool)] = &[
    (
        "400",
        "The request cannot be read (malformed JSON, bad path value or header)",
        false,
    ),
    (
        "401",
        "No valid bearer token (WWW-Authenticate: Bearer)",
        false,
    ),
    (
        "403",
        "The caller's role or claims do not allow this route",
        false,
    ),
    (
        "404",
        "No such object, or one the caller may not know exists",
        false,
    ),
    (
        "409",
        "A concurrent change won twice in a row (reload and try again), or what is created exists already (`portfolio_exists`, with its `portfolio_id`)",
        true,
    ),
    ("412", "If-Match names an older version", true),
    ("413", "The body is larger than 256 KiB", true),
    ("415", "The body is not application/json", true),
    (
        "422",
        "Well-formed but refused: wrong types, unknown fields, or a rule (see `code`)",
        true,
    ),
    (
        "429",
        "Too many failed authentications from the caller's address: refused without checking the token until Retry-After seconds have passed",
        false,
    ),
    ("500", "Our failure; logged, nothing internal shown", false),
];

/// Routes anyone may call without a token (besides `/healthz` and `/readyz`, described below):
/// the API's description, the metrics, and what a verifier of a credential reads.
const PUBLIC: [&str; 7] = [
    "/openapi.json",
    "/metrics",
    "/issuer",
    "/issuer/keys",
    "/credentials/status/{list}",
    "/credentials/{credential_id}",
    "/verify",
];

impl Modify for Conventions {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            if PUBLIC.contains(&path.as_str()) {
                continue;
            }
            // A PUT replaces a setting whole: it takes a body, as a command does.
            let operations = [
                (&mut item.get, false),
                (&mut item.post, true),
                (&mut item.put, true),
            ];
            for (operation, is_command) in operations {
                if let Some(operation) = operation {
                    operation.security = Some(vec![SecurityRequirement::new(
                        "bearer",
                        Vec::<String>::new(),
                    )]);
                    add_problems(operation, is_command);
                }
            }
        }
        for (path, summary) in [
            ("/healthz", "Liveness: the process serves HTTP"),
            (
                "/readyz",
                "Readiness: database reachable and migrated, token keys fetched, projections in touch (503 otherwise); the service's parts that are behind (projection lag, export worker, Ladok, outbox) are named under `degraded` without changing the status",
            ),
        ] {
            let mut operation = Operation::new();
            operation.summary = Some(summary.to_owned());
            operation.tags = Some(vec!["operations".to_owned()]);
            let example = if path == "/healthz" {
                json!({"status": "ok"})
            } else {
                json!({
                    "status": "ready",
                    "checks": {
                        "database": "ok", "token_keys": "ok", "projections": "ok",
                        "projection_lag": "ok", "export_worker": "last success 27 h ago",
                        "ladok": "ok", "outbox": "ok"
                    },
                    "degraded": ["export_worker"]
                })
            };
            let content = ContentBuilder::new()
                .schema(Some(health_schema()))
                .example(Some(example))
                .build();
            operation.responses.responses.insert(
                "200".to_owned(),
                ResponseBuilder::new()
                    .description(summary)
                    .content("application/json", content.clone())
                    .build()
                    .into(),
            );
            if path == "/readyz" {
                operation.responses.responses.insert(
                    "503".to_owned(),
                    ResponseBuilder::new()
                        .description("Not ready: the check that failed says why")
                        .content("application/json", content)
                        .build()
                        .into(),
                );
            }
            openapi
                .paths
                .paths
                .insert(path.to_owned(), PathItem::new(HttpMethod::Get, operation));
        }
    }
}

/// `{"status": "…", "checks": {"name": "ok" | why not}}` of the health routes.
fn health_schema() -> Schema {
    let text = || ObjectBuilder::new().schema_type(Type::String);
    ObjectBuilder::new()
        .property("status", text())
        .required("status")
        .property(
            "checks",
            ObjectBuilder::new().additional_properties(Some(text())),
        )
        .property("degraded", ArrayBuilder::new().items(text()))
        .into()
}

/// The `Retry-After` header of a 429.
fn retry_after() -> Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1)),
        )
        .description(Some("Seconds until the address's window ends"))
        .build()
}

fn add_problems(operation: &mut Operation, is_command: bool) {
    for (status, description, commands_only) in PROBLEMS {
        if *commands_only && !is_command {
            continue;
        }
        let mut response = ResponseBuilder::new().description(*description).content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        );
        if *status == "429" {
            response = response.header("Retry-After", retry_after());
        }
        let response = response.build();
        operation
            .responses
            .responses
            .entry((*status).to_owned())
            .or_insert_with(|| response.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn the_document_is_openapi_3_1_with_the_shared_shapes() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let problem = &doc["components"]["schemas"]["Problem"]["properties"];
        for field in ["type", "title", "status", "code", "detail", "field"] {
            assert!(problem[field].is_object(), "Problem.{field} missing");
        }
        let reflection = &doc["components"]["schemas"]["ReflectionBody"];
        assert_eq!(reflection["oneOf"].as_array().map(Vec::len), Some(3));
        let open = &doc["components"]["schemas"]["OpenPortfolio"];
        assert_eq!(open["additionalProperties"], false, "{open}");
        // Personal details come from the token and Ladok: only the UID and the date are required.
        let required: Vec<&str> = open["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(required, ["student_uid", "expected_completion"], "{open}");
        assert!(
            problem["portfolio_id"].is_object(),
            "Problem.portfolio_id missing"
        );
        assert!(doc["paths"]["/healthz"]["get"].is_object());
        let limited = &doc["paths"]["/portfolios/{portfolio_id}"]["get"]["responses"]["429"];
        assert!(limited["headers"]["Retry-After"].is_object(), "{limited}");
    }
}
