//! The registrar's view of certificates: approved and revoked ones of every program, with their
//! export and Ladok delivery status. No names or identity numbers (the export worker takes those
//! from the log when it writes a batch); the student is named by their pseudonymous Ladok UID.
//!
//! Registrar only: administrators administer programs and do not read certificates, and
//! coordinators see their programs' certificates in the portfolios.

use crate::domain::{CertificateId, ProgramId};
use crate::http::auth::{Caller, Role};
use crate::http::cursor::{self, Page};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::problem::Problem;
use crate::http::reads;
use crate::http::state::AppState;
use crate::projections::read_models::registrar::{
    self, CertificateFilter, CertificateRecord, CertificateStatus,
};
use crate::store::Checkpoint;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;

/// The list a certificates cursor belongs to.
const CERTIFICATES_LIST: &str = "certificates";

fn registrar_only(caller: &Caller) -> Result<(), Problem> {
    if caller.role == Role::Registrar {
        Ok(())
    } else {
        Err(Problem::forbidden("certificates are the registrar's"))
    }
}

#[derive(Debug, Deserialize)]
pub struct CertificatesQuery {
    pub program: Option<ProgramId>,
    pub status: Option<CertificateStatus>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// `GET /certificates?program=&status=&cursor=&limit=` (registrar): certificates in the order they
/// were approved, optionally of one program and one status (`approved`, `revoked`).
#[utoipa::path(
    get,
    path = "/certificates",
    tag = "registrar",
    params(
        ("program" = Option<Uuid>, Query, description = "Only this program's"),
        ("status" = Option<String>, Query, description = "approved or revoked"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("limit" = Option<i64>, Query, description = "Page size, 1-200 (default 50)"),
    ),
    responses((status = 200, description = "One page of certificates", body = Page<CertificateRecord>))
)]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    query: Result<ApiQuery<CertificatesQuery>, Problem>,
) -> Result<Json<Page<CertificateRecord>>, Problem> {
    registrar_only(&caller)?;
    let ApiQuery(query) = query?;
    let limit = cursor::limit(query.limit)?;
    let after: Option<Checkpoint> = cursor::decode(CERTIFICATES_LIST, query.cursor.as_deref())?;
    let filter = CertificateFilter {
        program_id: query.program,
        status: query.status,
    };
    reads::caught_up(&state, "registrar").await?;
    let page = registrar::certificates(&state.pool, &filter, after, limit)
        .await
        .map_err(reads::read_failed)?;
    Ok(Json(Page {
        items: page.certificates,
        next_cursor: page.next.map(|at| cursor::encode(CERTIFICATES_LIST, &at)),
    }))
}

#[derive(Debug, Deserialize)]
pub struct CertificatePath {
    pub certificate_id: CertificateId,
}

/// `GET /certificates/{certificate_id}` (registrar): one certificate (`404 certificate_not_found`).
#[utoipa::path(
    get,
    path = "/certificates/{certificate_id}",
    tag = "registrar",
    params(("certificate_id" = Uuid, Path, description = "The certificate")),
    responses((status = 200, description = "The certificate and its delivery status", body = CertificateRecord))
)]
pub async fn show(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(path): ApiPath<CertificatePath>,
) -> Result<Json<CertificateRecord>, Problem> {
    registrar_only(&caller)?;
    reads::caught_up(&state, "registrar").await?;
    registrar::certificate(&state.pool, path.certificate_id)
        .await
        .map_err(reads::read_failed)?
        .map(Json)
        .ok_or_else(|| Problem::not_found("certificate_not_found", "there is no such certificate"))
}
