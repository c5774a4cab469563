//! Notifications over the API: everyone's own settings (`/me/notifications`), and the outbox for
//! administrators (what was sent, what waits, what failed, and sending a failed message again).
//! The outbox shows kinds, states and recipients by portfolio id or staff subject, never an
//! address or a message's text.

use crate::http::access;
use crate::http::auth::{Caller, Role};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::problem::Problem;
use crate::http::state::AppState;
use crate::notify::outbox::{self, OutboxEntry};
use crate::notify::preferences::{self, Preferences};
use crate::notify::templates::Language;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// `GET /me/notifications`: the caller's settings.
#[utoipa::path(
    get,
    path = "/me/notifications",
    tag = "notifications",
    responses((status = 200, description = "The caller's notification settings", body = Preferences))
)]
pub async fn mine(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Preferences>, Problem> {
    let p = preferences::get(&state.pool, &subject(&caller))
        .await
        .map_err(|e| Problem::internal(&e))?;
    Ok(Json(p))
}

/// What a person may set.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"language": "en", "digests": true, "email": null}))]
#[serde(deny_unknown_fields)]
pub struct PreferencesBody {
    /// `sv` or `en`; null: the service's default.
    pub language: Option<String>,
    /// Whether a coordinator gets the daily digest (default true).
    #[serde(default = "yes")]
    pub digests: bool,
    /// A staff member's address, kept from then on instead of their sign-in's; absent: the address
    /// stays as it is. Students' messages go to their portfolio's address, so a student may not
    /// set one.
    pub email: Option<String>,
}

fn yes() -> bool {
    true
}

/// `PUT /me/notifications`: replaces the caller's settings.
#[utoipa::path(
    put,
    path = "/me/notifications",
    tag = "notifications",
    request_body = PreferencesBody,
    responses(
        (status = 200, description = "The settings as stored", body = Preferences),
        (status = 422, description = "`language_unknown`, `email_invalid`, or `email_not_for_students`"),
    )
)]
pub async fn set_mine(
    caller: Caller,
    State(state): State<AppState>,
    body: Result<ApiJson<PreferencesBody>, Problem>,
) -> Result<Json<Preferences>, Problem> {
    let ApiJson(body) = body?;
    if let Some(code) = &body.language
        && Language::parse(code).is_none()
    {
        return Err(Problem::unprocessable(
            "language_unknown",
            "language must be \"sv\" or \"en\" (or null for the service's default)",
        )
        .with_field("language"));
    }
    let email = match body.email {
        Some(_) if caller.role == Role::Student => {
            return Err(Problem::unprocessable(
                "email_not_for_students",
                "a student's messages go to the address in their portfolio; it cannot be set here",
            )
            .with_field("email"));
        }
        Some(e) => Some(
            crate::domain::values::Email::parse(&e)
                .map_err(|_| {
                    Problem::unprocessable("email_invalid", "email is not an e-mail address")
                        .with_field("email")
                })?
                .as_str()
                .to_owned(),
        ),
        // Without one, the address stays as it is (from the sign-in, or set before).
        None => None,
    };
    let stored = preferences::set(
        &state.pool,
        &subject(&caller),
        body.language.as_deref(),
        body.digests,
        email.as_deref(),
    )
    .await
    .map_err(|e| Problem::internal(&e))?;
    Ok(Json(stored))
}

/// Whose settings: a student's by their Ladok UID in its one written form (the key the sender and
/// the erasure use), anyone else's by their token's subject.
fn subject(caller: &Caller) -> String {
    match caller.student_uid() {
        Some(uid) => uid.as_uuid().to_string(),
        None => caller.subject.clone(),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutboxQuery {
    /// `pending`, `sent`, `failed` or `cancelled`; all when absent.
    pub state: Option<String>,
    /// At most this many, newest first (1-500, default 100).
    pub limit: Option<i64>,
}

/// `GET /notifications/outbox?state=failed` (admin).
#[utoipa::path(
    get,
    path = "/notifications/outbox",
    tag = "notifications",
    params(OutboxQuery),
    responses((status = 200, description = "The newest messages, without addresses or texts", body = [OutboxEntry]))
)]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    query: Result<ApiQuery<OutboxQuery>, Problem>,
) -> Result<Json<Vec<OutboxEntry>>, Problem> {
    access::admin(&caller)?;
    let ApiQuery(query) = query?;
    if let Some(s) = &query.state
        && !["pending", "sent", "failed", "cancelled"].contains(&s.as_str())
    {
        return Err(Problem::bad_request(
            "state_unknown",
            "state must be pending, sent, failed or cancelled",
        ));
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Problem::bad_request(
            "limit_out_of_range",
            "limit must be between 1 and 500",
        ));
    }
    let entries = outbox::list(&state.pool, query.state.as_deref(), limit)
        .await
        .map_err(|e| Problem::internal(&e))?;
    Ok(Json(entries))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MessagePath {
    /// The message's id in the outbox.
    pub id: i64,
}

/// `POST /notifications/outbox/{id}/retry` (admin): a failed message is sent again.
#[utoipa::path(
    post,
    path = "/notifications/outbox/{id}/retry",
    tag = "notifications",
    params(MessagePath),
    responses(
        (status = 202, description = "The message is due again"),
        (status = 404, description = "No failed message with this id (`failed_message_not_found`)"),
    )
)]
pub async fn retry(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(path): ApiPath<MessagePath>,
) -> Result<StatusCode, Problem> {
    access::admin(&caller)?;
    match outbox::retry_failed(&state.pool, path.id).await {
        Ok(true) => Ok(StatusCode::ACCEPTED),
        Ok(false) => Err(Problem::not_found(
            "failed_message_not_found",
            "there is no failed message with this id",
        )),
        Err(e) => Err(Problem::internal(&e)),
    }
}
