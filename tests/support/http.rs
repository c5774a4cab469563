//! The web API as the HTTP tests see it: one answer read whole, and a new student's portfolio.

use super::auth::token;
use super::flow::enrolment;
use cim::domain::ProgramId;
use cim::http::auth::Role;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use uuid::Uuid;

/// One answer: status, headers, the body's bytes, and the body as JSON (`Null` when it is not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
    pub body: Value,
}

impl Answer {
    /// The problem code (`""` when the body has none).
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// The body as text (CSV, Prometheus metrics, or to show in a failure).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    pub fn etag(&self) -> String {
        self.headers["etag"].to_str().unwrap().to_owned()
    }

    /// A problem document (RFC 9457) whose status is the answer's and which names its code.
    pub fn is_problem(&self) -> bool {
        self.headers
            .get("content-type")
            .is_some_and(|v| v == "application/problem+json")
            && !self.code().is_empty()
            && self.body["status"] == self.status.as_u16()
    }

    /// The items of a page.
    pub fn items(&self) -> &Vec<Value> {
        self.body["items"].as_array().expect("a page has items")
    }
}

/// Sends `request` and reads the whole answer.
pub async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap().to_vec();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        bytes,
        body,
    }
}

/// `GET {base}{path}` with `token`.
pub async fn get(http: &reqwest::Client, base: &str, path: &str, token: &str) -> Answer {
    send(http.get(format!("{base}{path}")).bearer_auth(token)).await
}

/// `POST {base}{path}` of `body` (JSON) with `token`.
pub async fn post(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
    body: &Value,
) -> Answer {
    send(
        http.post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(body),
    )
    .await
}

/// Opens a portfolio in `program` for a new student (an identity number of their own, the date
/// not yet confirmed) on the API at `base`; returns the portfolio id, the student's uid and token.
pub async fn open_portfolio(
    http: &reqwest::Client,
    base: &str,
    program: ProgramId,
) -> (String, String, String) {
    let uid = Uuid::now_v7().to_string();
    let student = token(Role::Student, &uid);
    let path = format!("/programs/{program}/portfolios");
    let body = enrolment(&uid, &super::unique_identity_number());
    let answer = post(http, base, &path, &student, &body).await;
    assert_eq!(
        answer.status,
        StatusCode::CREATED,
        "POST {path}: {}",
        answer.body
    );
    let id = answer.body["view"]["portfolio_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, uid, student)
}
