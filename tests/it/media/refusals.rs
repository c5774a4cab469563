//! What is refused or kept flagged: non-media, oversize, downloads by others, unmeasurable recordings.

use super::*;

#[tokio::test]
async fn non_media_and_oversize_uploads_are_refused_leaving_nothing_behind() {
    let app = spawn_app().await;
    let (p, student) = app.open(app.a).await;
    let text = app
        .upload(
            &p,
            &student,
            "audio/wav",
            b"this is text, whatever the header says".to_vec(),
        )
        .await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(text.code(), "media_type_not_accepted");
    assert_eq!(text.headers["content-type"], "application/problem+json");

    // Over the limit with a Content-Length: refused before the body is read.
    let mut big = wav(150);
    big.resize(LIMIT as usize + 1, 0x80);
    let declared = app.upload(&p, &student, "audio/wav", big.clone()).await;
    assert_eq!(declared.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(declared.code(), "media_too_large");

    // Over the limit without a Content-Length (chunked): refused while streaming.
    let status = chunked_upload(&app, &p, &student, &big).await;
    assert_eq!(status, 413);
    assert!(
        files_in(app.media_dir.path()).is_empty(),
        "{:?}",
        files_in(app.media_dir.path())
    );
    app.db.drop().await;
}

/// A chunked POST written by hand (the client library sends a Content-Length for a body it holds);
/// returns the status code.
async fn chunked_upload(app: &App, portfolio: &str, token: &str, body: &[u8]) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /portfolios/{portfolio}/media HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: audio/wav\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(64 * 1024) {
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(chunk);
        framed.extend_from_slice(b"\r\n");
        // The server may answer and close before it has read everything.
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    text.split(' ').nth(1).unwrap_or("0").parse().unwrap()
}

#[tokio::test]
async fn only_the_owner_and_the_programs_coordinator_can_download() {
    let app = spawn_app().await;
    let (p, student) = app.open(app.a).await;
    let (_, other) = app.open(app.b).await;
    let recording = wav(3);
    let sha = sha256(&recording);
    let up = app
        .upload(&p, &student, "audio/wav", recording.clone())
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);

    for caller in [student.clone(), token(Role::Coordinator, ANNA)] {
        let got = app.download(&p, &sha, &caller).await;
        assert_eq!(got.status, StatusCode::OK);
        assert_eq!(got.bytes, recording);
        assert_eq!(got.headers["content-type"], "audio/wav");
        assert_eq!(got.headers["x-content-type-options"], "nosniff");
        assert!(
            got.headers["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment"),
        );
    }
    // Another student, and a coordinator of another program, do not know the portfolio exists.
    let hidden = app.download(&p, &sha, &other).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert_eq!(hidden.code(), "portfolio_not_found");
    let bert = token(Role::Coordinator, "coord-bert");
    assert_eq!(
        app.download(&p, &sha, &bert).await.status,
        StatusCode::NOT_FOUND
    );
    // Another student cannot upload to it either.
    let foreign = app.upload(&p, &other, "audio/wav", recording.clone()).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);

    // Bad hashes are refused before they come near a path.
    for bad in [
        "abc",
        &sha.to_uppercase(),
        "..%2F..%2Fetc%2Fpasswd",
        &format!("{}0", sha),
    ] {
        let got = app.download(&p, bad, &student).await;
        assert_eq!(got.status, StatusCode::BAD_REQUEST, "{bad}: {}", got.body);
        assert_eq!(got.body["field"], "sha256");
    }
    // A well-formed hash this portfolio never uploaded.
    let missing = app.download(&p, &"0".repeat(64), &student).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "media_not_found");
    app.db.drop().await;
}

#[tokio::test]
async fn an_unmeasurable_recording_keeps_the_declared_duration_flagged() {
    let app = spawn_app().await;
    let (p, student) = app.open(app.a).await;
    // WAV by its magic bytes, but with no format or data chunk a reader could time.
    let mut broken = b"RIFF\x20\0\0\0WAVEjunk\x14\0\0\0".to_vec();
    broken.resize(40, 0);
    let up = app.upload(&p, &student, "audio/wav", broken.clone()).await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    assert_eq!(up.body["duration_s"], Value::Null);
    assert_eq!(up.body["duration_measured"], false);
    let sha = sha256(&broken);

    let logged = app.activity(&p, &student, json!({})).await;
    assert_eq!(logged.status, StatusCode::OK, "{}", logged.body);
    let act = logged.body["view"]["activities"][0]["activity_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/portfolios/{p}/activities/{act}/reflection");
    // Without a measurement the student's declaration is needed ...
    let undeclared = app
        .post(
            &path,
            &student,
            json!({"format": "oral", "media_sha256": sha}),
        )
        .await;
    assert_eq!(undeclared.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(undeclared.body["field"], "duration_s");
    // ... and is recorded as such, flagged for the coordinator.
    let declared = app
        .post(
            &path,
            &student,
            json!({"format": "oral", "media_sha256": sha, "duration_s": 150}),
        )
        .await;
    assert_eq!(declared.status, StatusCode::OK, "{}", declared.body);
    let (payload, personal) = app.event(&p, "ReflectionSubmitted").await;
    assert_eq!(payload["duration_s"], 150, "{payload}");
    assert_eq!(payload["duration_measured"], false, "{payload}");
    assert!(personal.to_string().contains(&sha), "{personal}");
    app.db.drop().await;
}
