//! How a command body names an upload of its portfolio (`POST …/media`, see `routes::media`): by
//! its SHA-256 (`media_sha256`, `evidence_sha256`), resolved here to the reference and the measured
//! duration the server recorded, so that the client never supplies a type, size or duration of its
//! own. Shared by the activity and reflection routes.

use super::problem::Problem;
use super::state::AppState;
use crate::domain::PortfolioId;
use crate::domain::values::MediaRef;
use crate::media;

/// An upload as a command uses it: the reference and the measured duration (whole seconds).
#[derive(Debug, Clone)]
pub struct Upload {
    pub media: MediaRef,
    pub duration_s: Option<u32>,
}

/// The upload `sha256` made to `portfolio`, as a command references it. Errors are problems naming
/// `field`: 422 `media_sha256` for a malformed hash, 422 `media_not_uploaded` for one this portfolio
/// has no upload of.
pub async fn resolve(
    state: &AppState,
    portfolio: PortfolioId,
    sha256: &str,
    field: &'static str,
) -> Result<Upload, Problem> {
    if !media::is_sha256_hex(sha256) {
        return Err(Problem::unprocessable(
            "media_sha256",
            "a media reference must be the upload's SHA-256 in 64 lower-case hex characters",
        )
        .with_field(field));
    }
    let row = sqlx::query!(
        "SELECT content_type, size_bytes, duration_ms FROM media_uploads \
         WHERE portfolio_id = $1 AND sha256 = $2",
        portfolio.as_uuid(),
        sha256,
    )
    .fetch_optional(&state.pool)
    .await
    .map_err(|e| Problem::internal(&e))?;
    let Some((content_type, size_bytes, duration_ms)) =
        row.map(|r| (r.content_type, r.size_bytes, r.duration_ms))
    else {
        return Err(Problem::unprocessable(
            "media_not_uploaded",
            "no file with this SHA-256 was uploaded to this portfolio (POST …/media first)",
        )
        .with_field(field));
    };
    let media = MediaRef::new(
        sha256,
        &content_type,
        u64::try_from(size_bytes).unwrap_or_default(),
    )
    .map_err(|e| Problem::unprocessable(e.code(), e.to_string()).with_field(field))?;
    let duration_s = duration_ms.map(|ms| u32::try_from((ms + 500) / 1000).unwrap_or(u32::MAX));
    Ok(Upload { media, duration_s })
}

/// Resolves `sha256` when the body has one; `None` otherwise. Run before the command so that the
/// (synchronous) command builder can use it; its error only surfaces from the builder, after the
/// access checks.
pub async fn resolve_optional(
    state: &AppState,
    portfolio: PortfolioId,
    sha256: Option<&str>,
    field: &'static str,
) -> Result<Option<Upload>, Problem> {
    match sha256 {
        Some(sha) => resolve(state, portfolio, sha, field).await.map(Some),
        None => Ok(None),
    }
}

/// The `(media, duration_s, duration_measured)` of an oral submission. With an upload whose duration
/// was measured, that duration is used and marked measured (a declared `duration_s` is ignored);
/// otherwise the declared duration is required, kept and marked not measured. `media` (a reference
/// typed by the client) and `media_sha256` exclude each other.
pub fn oral(
    upload: Option<Upload>,
    media: Option<MediaRef>,
    declared: Option<u32>,
) -> Result<(Option<MediaRef>, u32, bool), Problem> {
    match (upload, media) {
        (Some(_), Some(_)) => Err(Problem::unprocessable(
            "media_twice",
            "send either media_sha256 (an upload) or media, not both",
        )
        .with_field("media")),
        (
            Some(Upload {
                media,
                duration_s: Some(measured),
            }),
            None,
        ) => Ok((Some(media), measured, true)),
        (Some(Upload { media, .. }), None) => Ok((Some(media), required(declared)?, false)),
        (None, media) => Ok((media, required(declared)?, false)),
    }
}

fn required(declared: Option<u32>) -> Result<u32, Problem> {
    declared.ok_or_else(|| {
        Problem::unprocessable(
            "missing_field",
            "duration_s is required unless media_sha256 names an upload whose duration the server measured",
        )
        .with_field("duration_s")
    })
}

/// The hash of an oral submission to look up among the portfolio's uploads, with the field it came
/// from: `media_sha256`, or else the hash inside a client-typed `media`, which must name an upload of
/// the portfolio as well (a reference to a file never uploaded is no recording).
pub fn recording_hash<'a>(
    media_sha256: Option<&'a str>,
    media: Option<&'a MediaRef>,
) -> Option<(&'a str, &'static str)> {
    match (media_sha256, media) {
        (Some(sha), _) => Some((sha, "media_sha256")),
        (None, Some(m)) => Some((m.sha256(), "media")),
        (None, None) => None,
    }
}

/// [`oral`] for a body that may carry `media_sha256`, a client-typed `media` (looked up by its hash,
/// see [`recording_hash`], and then standing for that upload with the declared duration) and a
/// video platform `link` (checked by the rules in `decide`).
pub fn oral_recording(
    upload: Option<Upload>,
    by_hash: bool,
    media: Option<MediaRef>,
    declared: Option<u32>,
) -> Result<(Option<MediaRef>, u32, bool), Problem> {
    match (by_hash, media, upload) {
        (false, Some(_), Some(upload)) => oral(None, Some(upload.media), declared),
        (_, media, upload) => oral(upload, media, declared),
    }
}

/// The evidence of an activity: an upload by hash, or a client-typed reference (not both).
pub fn evidence(
    upload: Option<Upload>,
    media: Option<MediaRef>,
) -> Result<Option<MediaRef>, Problem> {
    match (upload, media) {
        (Some(_), Some(_)) => Err(Problem::unprocessable(
            "media_twice",
            "send either evidence_sha256 (an upload) or evidence, not both",
        )
        .with_field("evidence")),
        (Some(upload), None) => Ok(Some(upload.media)),
        (None, media) => Ok(media),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn upload(duration_s: Option<u32>) -> Upload {
        Upload {
            media: MediaRef::new(&"ab".repeat(32), "audio/wav", 10).unwrap(),
            duration_s,
        }
    }

    #[test]
    fn a_measured_upload_overrides_the_declared_duration() {
        let (media, d, measured) = oral(Some(upload(Some(150))), None, Some(999)).unwrap();
        assert!(media.is_some());
        assert_eq!((d, measured), (150, true));
        let (_, d, measured) = oral(Some(upload(Some(150))), None, None).unwrap();
        assert_eq!((d, measured), (150, true));
    }

    #[test]
    fn an_unmeasured_upload_keeps_the_declared_duration_flagged() {
        let (_, d, measured) = oral(Some(upload(None)), None, Some(140)).unwrap();
        assert_eq!((d, measured), (140, false));
        assert_eq!(
            oral(Some(upload(None)), None, None).unwrap_err().status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(oral(None, None, Some(130)).unwrap(), (None, 130, false));
        let both = oral(Some(upload(None)), Some(upload(None).media), Some(1));
        assert!(both.is_err());
        assert!(evidence(Some(upload(None)), Some(upload(None).media)).is_err());
        assert_eq!(evidence(None, None).unwrap(), None);
    }
}
