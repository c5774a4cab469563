//! Downloading a batch's files: only names the batch recorded, from a path built from that name.

use super::*;

#[derive(Debug, Deserialize)]
pub struct FilePath {
    pub batch_id: Uuid,
    pub name: String,
}

/// The media type of a batch file, by its extension.
pub(super) fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("csv") => "text/csv; charset=utf-8",
        Some("txt") => "text/plain; charset=utf-8",
        Some("xml") => "application/xml",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// A file name as the caller sent it is only ever compared with the recorded names; this refuses
/// what can never be one of them (and would be dangerous anywhere near a path) with a 400 first.
fn check_name(name: &str) -> Result<(), Problem> {
    let bad = name.is_empty()
        || name.len() > 255
        || name == "."
        || name.contains("..")
        || name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    if bad {
        Err(
            Problem::bad_request("invalid_file_name", "this is not a batch file name")
                .with_field("name"),
        )
    } else {
        Ok(())
    }
}

/// `GET /exports/batches/{batch_id}/files/{name}` (registrar): one file of the batch, exactly as
/// its manifest hashes it. `name` must be one of the batch's recorded file names (`404
/// file_not_found` otherwise; `400 invalid_file_name` for names with separators, `..` or control
/// characters).
#[utoipa::path(
    get,
    path = "/exports/batches/{batch_id}/files/{name}",
    tag = "registrar",
    params(
        ("batch_id" = Uuid, Path, description = "The batch"),
        ("name" = String, Path, description = "A file name the batch lists"),
    ),
    responses((status = 200, description = "The file: text/csv, text/plain, application/xml or application/json", content_type = "application/octet-stream"))
)]
pub async fn download(
    caller: Caller,
    State(state): State<AppState>,
    path: Result<ApiPath<FilePath>, Problem>,
) -> Result<Response, Problem> {
    registrar_only(&caller)?;
    let ApiPath(path) = path?;
    check_name(&path.name)?;
    let config = config(&state)?;
    let batch = load(&state, path.batch_id).await?;
    // The recorded name, not the caller's, is what touches the file system.
    let Some((name, (sha256, _))) = batch.written.get_key_value(path.name.as_str()) else {
        return Err(Problem::not_found(
            "file_not_found",
            "the batch has no file of this name",
        ));
    };
    let file = config
        .batch_dir(BatchId::new(path.batch_id))
        .join(name.as_str());
    let bytes = tokio::fs::read(&file).await.map_err(|e| {
        tracing::error!(batch_id = %path.batch_id, file = %name, error = %e, "batch file unreadable");
        Problem::new(
            StatusCode::GONE,
            "file_unavailable",
            "the batch lists this file but it is no longer in the export folder",
        )
    })?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(name)),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{sha256}\"")) {
        headers.insert(header::ETAG, v);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_the_folder_are_refused() {
        for bad in [
            "",
            ".",
            "..",
            "../../etc/passwd",
            "a/b.csv",
            "a\\b.csv",
            "manifest.json\0",
            "x..csv",
            "line\nbreak.csv",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["manifest.json", "ladok-entry.csv", "elmo-1.xml"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("a.csv"), "text/csv; charset=utf-8");
        assert_eq!(content_type("a.txt"), "text/plain; charset=utf-8");
        assert_eq!(content_type("a.xml"), "application/xml");
        assert_eq!(content_type("manifest.json"), "application/json");
    }
}
