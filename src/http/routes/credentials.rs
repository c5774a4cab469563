//! Open Badges credentials over the API (`docs/credentials.md`): the student downloads their
//! certificate's credential; anyone reads the issuer's profile, its keys and the status list, and
//! verifies a credential; the registrar sees whether a certificate's credential was issued.
//! Nothing personal is published: the public answers name ids, the issuer and the achievement.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::credential::issuer::{IssuerConfig, key_set};
use crate::credential::pdf;
use crate::credential::service::{self, CredentialError, Verification};
use crate::credential::status::{self, Issued};
use crate::http::access::{self, PortfolioActor};
use crate::http::auth::{Caller, Role};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::paths::PortfolioPath;
use crate::http::problem::Problem;
use crate::http::state::AppState;
use crate::notify::templates::Language;

fn issuer(state: &AppState) -> Result<&IssuerConfig, Problem> {
    state.issuer.as_deref().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "credentials_not_configured",
            "this service issues no credentials: CIM_PUBLIC_URL and CIM_ISSUER_NAME are not set",
        )
    })
}

fn master() -> Result<&'static crate::crypto::MasterKey, Problem> {
    crate::crypto::installed().map_err(|e| Problem::internal(&e))
}

fn vc_jwt(jwt: String, attachment: Option<&str>) -> Response {
    let mut response = jwt.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vc+jwt"),
    );
    if let Some(name) = attachment
        && let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// `GET /portfolios/{portfolio_id}/credential` (the student): the certificate's Open Badges
/// credential as a VC-JWT, issued (recorded) the first time.
#[utoipa::path(
    get,
    path = "/portfolios/{portfolio_id}/credential",
    tag = "credentials",
    params(PortfolioPath),
    responses(
        (status = 200, description = "The OpenBadgeCredential as a VC-JWT (EdDSA)", content_type = "application/vc+jwt", body = String),
        (status = 409, description = "`not_certified`: no approved certificate; `certificate_revoked`"),
        (status = 410, description = "`personal_data_erased`: the credential can no longer be made"),
    )
)]
pub async fn download(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(path): ApiPath<PortfolioPath>,
) -> Result<Response, Problem> {
    let signed = issued_for(&caller, &state, path.portfolio_id).await?;
    Ok(vc_jwt(signed.jwt, Some("cim-credential.jwt")))
}

/// The credential of the caller's own portfolio, issued (recorded) the first time.
async fn issued_for(
    caller: &Caller,
    state: &AppState,
    portfolio_id: crate::domain::PortfolioId,
) -> Result<service::SignedCredential, Problem> {
    access::role_may(caller, PortfolioActor::Owner)?;
    let (current, _) = state.commands.load_portfolio(portfolio_id).await?;
    let portfolio = current.opened().ok_or_else(access::portfolio_not_found)?;
    access::may_see(caller, portfolio)?;
    let config = issuer(state)?;
    service::issue(&state.commands, master()?, config, portfolio_id)
        .await
        .map_err(|e| match e {
            CredentialError::NotCertified => Problem::new(
                StatusCode::CONFLICT,
                "not_certified",
                "this portfolio has no approved certificate yet",
            ),
            CredentialError::Revoked => Problem::new(
                StatusCode::CONFLICT,
                "certificate_revoked",
                "the certificate was revoked; no credential is issued for it",
            ),
            CredentialError::Erased => Problem::new(
                StatusCode::GONE,
                "personal_data_erased",
                "the student's personal data was erased; a credential issued before stays verifiable",
            ),
            e => Problem::internal(&e),
        })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PdfQuery {
    /// `sv` (default) or `en`.
    pub lang: Option<String>,
}

/// `GET /portfolios/{portfolio_id}/certificate.pdf?lang=sv` (the student): the printable
/// certificate, with a QR code of its public verification page.
#[utoipa::path(
    get,
    path = "/portfolios/{portfolio_id}/certificate.pdf",
    tag = "credentials",
    params(PortfolioPath, PdfQuery),
    responses(
        (status = 200, description = "The certificate as an A4 PDF", content_type = "application/pdf", body = String),
        (status = 409, description = "`not_certified`, `certificate_revoked`"),
        (status = 410, description = "`personal_data_erased`"),
        (status = 422, description = "`name_not_printable`: the name has a character the PDF fonts lack"),
    )
)]
pub async fn pdf(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(path): ApiPath<PortfolioPath>,
    query: Result<ApiQuery<PdfQuery>, Problem>,
) -> Result<Response, Problem> {
    let ApiQuery(query) = query?;
    let language = match query.lang.as_deref() {
        None | Some("sv") => Language::Swedish,
        Some("en") => Language::English,
        Some(_) => {
            return Err(Problem::bad_request(
                "language_unknown",
                "lang must be sv or en",
            ));
        }
    };
    let signed = issued_for(&caller, &state, path.portfolio_id).await?;
    let config = issuer(&state)?;
    let bytes =
        pdf::render(&service::printable(config, &signed), language).map_err(|e| match e {
            pdf::PdfError::Unprintable { .. } => {
                Problem::unprocessable("name_not_printable", e.to_string())
            }
            other => Problem::internal(&other),
        })?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    let name = format!(
        "attachment; filename=\"cim-certificate-{}.pdf\"",
        language.code()
    );
    if let Ok(value) = HeaderValue::from_str(&name) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// The issuer's Open Badges `Profile`, as every credential embeds it.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuerProfile {
    #[serde(rename = "@context")]
    pub context: Vec<String>,
    /// The issuer's id, a URL of this service (`{CIM_PUBLIC_URL}/issuer`).
    pub id: String,
    #[serde(rename = "type")]
    pub kind: Vec<String>,
    /// The university's name.
    pub name: String,
    /// The university's web site.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Where the keys the issuer signs with are published.
    #[serde(rename = "publicKeys")]
    pub public_keys: String,
}

/// `GET /issuer` (public): the issuer's profile.
#[utoipa::path(get, path = "/issuer", tag = "credentials",
    responses((status = 200, description = "The issuer's Open Badges Profile", body = IssuerProfile)))]
pub async fn profile(State(state): State<AppState>) -> Result<Json<IssuerProfile>, Problem> {
    let config = issuer(&state)?;
    let profile = config.profile();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(Json(IssuerProfile {
        context: strings(&profile["@context"]),
        id: config.issuer_id(),
        kind: strings(&profile["type"]),
        name: config.name.clone(),
        url: config.url.clone(),
        public_keys: config.keys_url(),
    }))
}

/// One published key (RFC 8037 Ed25519 JWK).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PublicJwk {
    /// `OKP`.
    pub kty: String,
    /// `Ed25519`.
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    /// As in the credentials' JWT headers.
    pub kid: String,
    /// `EdDSA`.
    pub alg: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub usage: String,
}

/// The issuer's keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeySet {
    pub keys: Vec<PublicJwk>,
}

/// `GET /issuer/keys` (public): every key the issuer signs or signed credentials with.
#[utoipa::path(get, path = "/issuer/keys", tag = "credentials",
    responses((status = 200, description = "A JWK set: the Ed25519 keys of the credentials' signatures", body = KeySet)))]
pub async fn keys(State(state): State<AppState>) -> Result<Json<KeySet>, Problem> {
    issuer(&state)?;
    let set = key_set(&state.pool)
        .await
        .map_err(|e| Problem::internal(&e))?;
    let keys = set["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| serde_json::from_value(k.clone()).ok())
        .collect();
    Ok(Json(KeySet { keys }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ListPath {
    /// The status list's number (1 for the first 131,072 credentials).
    pub list: i32,
}

/// `GET /credentials/status/{list}` (public): the signed revocation status list.
#[utoipa::path(get, path = "/credentials/status/{list}", tag = "credentials", params(ListPath),
    responses((status = 200, description = "A BitstringStatusListCredential as a VC-JWT", content_type = "application/vc+jwt", body = String)))]
pub async fn status_list(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<ListPath>,
) -> Result<Response, Problem> {
    let config = issuer(&state)?;
    if !(1..=10_000).contains(&path.list) {
        return Err(Problem::not_found(
            "status_list_not_found",
            "there is no such status list",
        ));
    }
    let jwt = service::status_list(
        &state.pool,
        master()?,
        config,
        path.list,
        chrono::Utc::now(),
    )
    .await
    .map_err(|e| Problem::internal(&e))?;
    Ok(vc_jwt(jwt, None))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CredentialPath {
    /// The credential's id (the last part of its `id` URL).
    pub credential_id: Uuid,
}

/// What anyone may know of an issued credential by its id.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicCredential {
    pub credential_id: Uuid,
    pub issuer: String,
    pub achievement: String,
    /// `valid` or `revoked`.
    pub status: String,
    pub issued_at: chrono::DateTime<chrono::Utc>,
}

/// `GET /credentials/{credential_id}` (public): whether a credential this service issued is valid
/// or revoked; nothing about its holder.
#[utoipa::path(get, path = "/credentials/{credential_id}", tag = "credentials", params(CredentialPath),
    responses(
        (status = 200, description = "The credential's standing", body = PublicCredential),
        (status = 404, description = "`credential_not_found`"),
    ))]
pub async fn show(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    ApiPath(path): ApiPath<CredentialPath>,
) -> Result<Response, Problem> {
    let config = issuer(&state)?;
    let (issued, revoked) = status::by_credential(&state.pool, path.credential_id)
        .await
        .map_err(|e| Problem::internal(&e))?
        .ok_or_else(|| {
            Problem::not_found(
                "credential_not_found",
                "this service issued no credential with this id",
            )
        })?;
    let public = PublicCredential {
        credential_id: issued.credential_id,
        issuer: config.name.clone(),
        achievement: "Certificate of International Merits".into(),
        status: if revoked { "revoked" } else { "valid" }.into(),
        issued_at: issued.issued_at,
    };
    // A person who scanned the printed certificate's QR code gets a page; a program, JSON.
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if wants_html {
        return Ok(page(&public).into_response());
    }
    Ok(Json(public).into_response())
}

/// The verification page, in Swedish and English: the issuer, the achievement, the standing.
fn page(c: &PublicCredential) -> axum::response::Html<String> {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let (sv, en) = if c.status == "valid" {
        (
            "Giltigt: utfärdat och inte återkallat.",
            "Valid: issued and not revoked.",
        )
    } else {
        (
            "Återkallat: certifikatet gäller inte längre.",
            "Revoked: the certificate no longer stands.",
        )
    };
    axum::response::Html(format!(
        "<!DOCTYPE html>\n<html lang=\"sv\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{achievement} – {issuer}</title></head>\n<body><main>\
         <h1>{achievement}</h1><p>{issuer}</p>\
         <p><strong>{sv}</strong></p><p lang=\"en\"><strong>{en}</strong></p>\
         <p>Intyg / Credential: {id}<br>Utfärdat / Issued: {issued}</p>\
         </main></body></html>\n",
        achievement = escape(&c.achievement),
        issuer = escape(&c.issuer),
        id = c.credential_id,
        issued = c.issued_at.date_naive(),
    ))
}

/// A credential to verify.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"credential": "eyJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiJ9.eyJ…"}))]
pub struct VerifyBody {
    /// The VC-JWT, as downloaded.
    pub credential: String,
}

/// `POST /verify` (public): whether a VC-JWT is this issuer's, unaltered, and not revoked.
#[utoipa::path(post, path = "/verify", tag = "credentials", request_body = VerifyBody,
    responses((status = 200, description = "The verdict (also when not authentic)", body = Verification)))]
pub async fn verify(
    State(state): State<AppState>,
    body: Result<ApiJson<VerifyBody>, Problem>,
) -> Result<Json<Verification>, Problem> {
    let ApiJson(body) = body?;
    let config = issuer(&state)?;
    let verdict = service::verify(&state.pool, config, &body.credential)
        .await
        .map_err(|e| Problem::internal(&e))?;
    Ok(Json(verdict))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CertificatePath {
    pub certificate_id: Uuid,
}

/// `GET /certificates/{certificate_id}/credential` (registrar, admin): whether the certificate's
/// credential was issued, when, and where it stands in the status list.
#[utoipa::path(get, path = "/certificates/{certificate_id}/credential", tag = "registrar",
    params(CertificatePath),
    responses(
        (status = 200, description = "The credential's issue", body = Issued),
        (status = 404, description = "`credential_not_issued`"),
    ))]
pub async fn issued(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(path): ApiPath<CertificatePath>,
) -> Result<Json<Issued>, Problem> {
    if !matches!(caller.role, Role::Registrar | Role::Admin) {
        return Err(Problem::forbidden(
            "the issue of credentials is for the registrar's office and administrators",
        ));
    }
    status::issued(&state.pool, path.certificate_id)
        .await
        .map_err(|e| Problem::internal(&e))?
        .map(Json)
        .ok_or_else(|| {
            Problem::not_found(
                "credential_not_issued",
                "no credential was issued for this certificate",
            )
        })
}
