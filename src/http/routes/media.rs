//! Media of a portfolio: the student uploads a recording or a piece of evidence, and the student and
//! the coordinators of the program download it.
//!
//! `POST /portfolios/{portfolio_id}/media` takes the raw bytes as the body (not multipart), streams
//! them into the content-addressed store ([`crate::media::store`]) under the size limit, detects the
//! type from the bytes ([`crate::media::sniff`]; the declared `Content-Type` is ignored), measures the
//! duration of audio and video ([`crate::media::duration`]) and remembers the upload in
//! `media_uploads`. The file gets its final name and its row in one transaction under the student's
//! lock ([`crate::media::uploads`]), so an upload and an erasure of the same student never
//! interleave, and an upload that cannot be made durable is answered 500 and leaves nothing.
//! Commands then reference it by `media_sha256` (oral reflections, the oral final reflection) or
//! `evidence_sha256` (activities), and the server, not the client, supplies the type, size and
//! measured duration to the event (`http::media_ref`).

use crate::domain::{PortfolioId, StudentUid};
use crate::http::access::{self, PortfolioActor};
use crate::http::auth::Caller;
use crate::http::extract::ApiPath;
use crate::http::paths::PortfolioPath;
use crate::http::problem::Problem;
use crate::http::state::AppState;
use crate::media::{self, MeasuredDuration, StoreError, uploads};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use utoipa::ToSchema;

#[derive(Debug, Deserialize)]
pub struct MediaPath {
    pub portfolio_id: PortfolioId,
    /// Checked to be 64 lower-case hex characters before it is used for anything.
    pub sha256: String,
}

/// An accepted upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct Uploaded {
    /// Lower-case hex SHA-256 of the bytes; reference the upload with it.
    pub sha256: String,
    /// The type detected from the bytes, e.g. `audio/wav`.
    pub content_type: String,
    pub size_bytes: u64,
    /// The duration the server measured, in seconds; `null` when it could not be measured (or the
    /// file is not audio or video).
    pub duration_s: Option<f64>,
    pub duration_measured: bool,
}

/// `POST /portfolios/{portfolio_id}/media` (student owner): the raw bytes of one file.
#[utoipa::path(
    post,
    path = "/portfolios/{portfolio_id}/media",
    tag = "portfolios",
    params(PortfolioPath),
    request_body(
        content = String,
        content_type = "application/octet-stream",
        description = "The file's bytes (MP4/M4A, MP3, WAV, Ogg, WebM/Matroska, PDF, JPEG or PNG), not multipart. \
                       The type is detected from the bytes; the Content-Type header is not trusted."
    ),
    responses(
        (status = 201, description = "Stored durably (or already stored); reference it by `sha256`", body = Uploaded),
        (status = 413, description = "Larger than the configured limit (CIM_MEDIA_MAX_BYTES)"),
        (status = 415, description = "The bytes are not one of the accepted formats"),
    )
)]
pub async fn upload(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(path): ApiPath<PortfolioPath>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Uploaded>), Problem> {
    access::role_may(&caller, PortfolioActor::Owner)?;
    let student = visible_portfolio(&state, &caller, path.portfolio_id).await?;
    let max = state.media.max_bytes();
    let declared_len = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_len.is_some_and(|len| len > max) {
        return Err(too_large(max));
    }
    let staged = state
        .media
        .stage(body.into_data_stream())
        .await
        .map_err(|e| match e {
            StoreError::TooLarge { max } => too_large(max),
            StoreError::NotMedia => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "media_type_not_accepted",
                "the file is not one of the accepted formats (MP4/M4A, MP3, WAV, Ogg, WebM, PDF, JPEG, PNG); \
                 the type is read from the bytes, not from Content-Type",
            ),
            StoreError::Empty => Problem::unprocessable("media_empty", "the file is empty"),
            StoreError::Read(_) => {
                Problem::bad_request("body_unreadable", "the request body could not be read")
            }
            StoreError::Io(e) => Problem::internal(&e),
        })?;
    // Measured before the locks are taken: parsing a container can take a while.
    let (file, kind) = (staged.path().to_owned(), staged.kind);
    let measured = tokio::task::spawn_blocking(move || media::measure(&file, kind))
        .await
        .unwrap_or_else(|e| MeasuredDuration::Unmeasured {
            reason: e.to_string(),
        });
    if let MeasuredDuration::Unmeasured { reason } = &measured {
        // Nothing personal in logs: the reason only, not the hash or the portfolio.
        tracing::info!(%reason, "media duration not measured");
    }
    let size_bytes = i64::try_from(staged.size_bytes).map_err(|e| Problem::internal(&e))?;
    let upload = uploads::NewUpload {
        portfolio: path.portfolio_id,
        student,
        content_type: kind.content_type(),
        size_bytes,
        duration_ms: measured.millis(),
        uploaded_by: &caller.subject,
    };
    let stored = uploads::record(&state.pool, &state.media, staged, &upload)
        .await
        .map_err(|e| Problem::internal(&e))?;
    let duration_s = measured.millis().map(|ms| ms as f64 / 1000.0);
    Ok((
        StatusCode::CREATED,
        Json(Uploaded {
            sha256: stored.sha256,
            content_type: kind.content_type().to_owned(),
            size_bytes: stored.size_bytes,
            duration_s,
            duration_measured: duration_s.is_some(),
        }),
    ))
}

/// `GET /portfolios/{portfolio_id}/media/{sha256}` (the student owner or a coordinator of the
/// program): the file, as an attachment of its detected type.
#[utoipa::path(
    get,
    path = "/portfolios/{portfolio_id}/media/{sha256}",
    tag = "portfolios",
    params(
        PortfolioPath,
        ("sha256" = String, Path, description = "The upload's SHA-256, 64 lower-case hex characters"),
    ),
    responses(
        (status = 200, description = "The file (Content-Type is the detected type; Content-Disposition: attachment; X-Content-Type-Options: nosniff)",
         content_type = "application/octet-stream", body = String),
    )
)]
pub async fn download(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(path): ApiPath<MediaPath>,
) -> Result<Response, Problem> {
    access::role_may(&caller, PortfolioActor::OwnerOrCoordinator)?;
    visible_portfolio(&state, &caller, path.portfolio_id).await?;
    if !media::is_sha256_hex(&path.sha256) {
        return Err(bad_sha256("sha256"));
    }
    let content_type = sqlx::query_scalar!(
        "SELECT content_type FROM media_uploads WHERE portfolio_id = $1 AND sha256 = $2",
        path.portfolio_id.as_uuid(),
        path.sha256,
    )
    .fetch_optional(&state.pool)
    .await
    .map_err(|e| Problem::internal(&e))?
    .ok_or_else(media_not_found)?;
    let file_path = state
        .media
        .path_of(&path.sha256)
        .ok_or_else(|| bad_sha256("sha256"))?;
    let file = match tokio::fs::File::open(&file_path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(media_not_found()),
        Err(e) => return Err(Problem::internal(&e)),
    };
    let length = file
        .metadata()
        .await
        .map_err(|e| Problem::internal(&e))?
        .len();
    let stream = futures::stream::try_unfold(file, |mut file| async move {
        let mut buf = vec![0u8; 64 * 1024];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            Ok::<_, std::io::Error>(None)
        } else {
            buf.truncate(n);
            Ok(Some((Bytes::from(buf), file)))
        }
    });
    let mut response = Body::from_stream(stream).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The hash was validated above, so the file name is plain ASCII.
    if let Ok(disposition) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}.{}\"",
        path.sha256,
        extension_of(&content_type)
    )) {
        h.insert(header::CONTENT_DISPOSITION, disposition);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    Ok(response)
}

/// Steps 3 of the access rule: the portfolio exists and the caller may see it (else 404). Returns
/// the portfolio's student, whose lock an upload takes.
async fn visible_portfolio(
    state: &AppState,
    caller: &Caller,
    id: PortfolioId,
) -> Result<StudentUid, Problem> {
    let (current, _) = state.commands.load_portfolio(id).await?;
    let portfolio = current.opened().ok_or_else(access::portfolio_not_found)?;
    access::may_see(caller, portfolio)?;
    Ok(portfolio.student_uid)
}

fn too_large(max: u64) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "media_too_large",
        format!("the file is larger than {max} bytes"),
    )
}

fn bad_sha256(field: &str) -> Problem {
    Problem::bad_request(
        "invalid_path_parameter",
        "the path parameter sha256 must be 64 lower-case hex characters",
    )
    .with_field(field)
}

fn media_not_found() -> Problem {
    Problem::not_found(
        "media_not_found",
        "this portfolio has no upload with that SHA-256",
    )
}

fn extension_of(content_type: &str) -> &'static str {
    match content_type {
        "audio/mp4" => "m4a",
        "video/mp4" => "mp4",
        "audio/mpeg" => "mp3",
        "audio/wav" => "wav",
        "audio/ogg" => "ogg",
        "video/webm" => "webm",
        "video/x-matroska" => "mkv",
        "application/pdf" => "pdf",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        _ => "bin",
    }
}
