//! `cim ladok check`: before the first real run, the registrar's office asks the configured Ladok,
//! with the configured client certificate, whether every operation of the table is answered, and
//! writes nothing.
//!
//! Reads are sent as they would be (the authenticated user, one given student, the first page of
//! their merits, one of their merits). Writes are never sent: their path is asked with `OPTIONS`,
//! and the answer's `Allow` header says whether the method is accepted there. A server that does not
//! answer `OPTIONS` leaves a write unconfirmed, and the check says so instead of guessing.

use reqwest::StatusCode;
use serde_json::Value;

use super::client::text;
use super::operations::{Evidence, Operation};
use super::{LadokClient, LadokError};

/// What one operation's check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Answered as expected.
    Answered(String),
    /// Answered, but not as the operation needs (wrong path, media type, method, permission).
    Refused(String),
    /// Not checked, and why.
    Unconfirmed(String),
}

impl Outcome {
    pub fn is_answered(&self) -> bool {
        matches!(self, Outcome::Answered(_))
    }
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct CheckLine {
    pub operation: Operation,
    pub method: String,
    pub path: String,
    pub media_type: String,
    pub evidence: Evidence,
    pub outcome: Outcome,
}

/// Checks every operation, with `student` (a 12-digit identity number or a Ladok UID) as the
/// student looked up read-only.
pub async fn run(client: &LadokClient, student: &str) -> Vec<CheckLine> {
    let by_pnr = student.len() == 12 && student.bytes().all(|b| b.is_ascii_digit());
    let mut student_uid = (!by_pnr).then(|| student.to_owned());
    let mut pnr = by_pnr.then(|| student.to_owned());
    let mut merit_uid: Option<String> = None;
    let mut lines = Vec::new();
    // Student look-ups first in the order that finds the other key.
    let order = if by_pnr {
        [Operation::StudentByPnr, Operation::StudentByUid]
    } else {
        [Operation::StudentByUid, Operation::StudentByPnr]
    };
    let mut operations = vec![Operation::AuthenticatedUser];
    operations.extend(order);
    let rest: Vec<Operation> = Operation::ALL
        .into_iter()
        .filter(|op| !operations.contains(op))
        .collect();
    operations.extend(rest);
    for operation in operations {
        let limit = client.config().page_size.to_string();
        let values: Vec<(&str, String)> = vec![
            ("student_uid", student_uid.clone().unwrap_or_default()),
            ("pnr", pnr.clone().unwrap_or_default()),
            ("merit_uid", merit_uid.clone().unwrap_or_default()),
            ("page", "1".to_owned()),
            ("limit", limit),
        ];
        let values: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let outcome = if operation.writes() {
            options(client, operation, &values).await
        } else {
            let missing = match operation {
                Operation::StudentByUid if student_uid.is_none() => Some("no student UID found"),
                Operation::StudentByPnr if pnr.is_none() => {
                    Some("Ladok gave the student no identity number")
                }
                Operation::ReadMerit if merit_uid.is_none() => {
                    Some("the student has no other merit to read")
                }
                _ => None,
            };
            match missing {
                Some(why) => Outcome::Unconfirmed(why.to_owned()),
                None => match client.send(operation, &values, None).await {
                    Ok(body) => {
                        learn(operation, &body, &mut student_uid, &mut pnr, &mut merit_uid);
                        Outcome::Answered("answered with JSON".to_owned())
                    }
                    Err(e) => refused(&e),
                },
            }
        };
        let endpoint = client.config().operations.get(operation);
        lines.push(CheckLine {
            operation,
            method: endpoint.method.clone(),
            path: endpoint.path.clone(),
            media_type: endpoint.media_type.clone(),
            evidence: endpoint.evidence,
            outcome,
        });
    }
    lines
}

/// What a read's answer tells the next checks: the student's keys, a merit to read.
fn learn(
    operation: Operation,
    body: &Value,
    student_uid: &mut Option<String>,
    pnr: &mut Option<String>,
    merit_uid: &mut Option<String>,
) {
    match operation {
        Operation::StudentByPnr | Operation::StudentByUid => {
            *student_uid = student_uid.take().or_else(|| text(body, "Uid"));
            *pnr = pnr.take().or_else(|| text(body, "Personnummer"));
        }
        Operation::MeritsOfStudent => {
            *merit_uid = body
                .get("AnnanMerit")
                .and_then(Value::as_array)
                .and_then(|m| m.first())
                .and_then(|m| text(m, "Uid"));
        }
        _ => {}
    }
}

fn refused(error: &LadokError) -> Outcome {
    Outcome::Refused(match error {
        LadokError::NotFound => "404: no such path (or no such entity)".to_owned(),
        LadokError::Authentication => {
            "not permitted for this client certificate (401/403, or an HTML login page)".to_owned()
        }
        LadokError::Unavailable(why) => format!("Ladok unavailable: {why}"),
        LadokError::Rule { felgrupp, .. } => format!("refused: {felgrupp}"),
        other => other.to_string(),
    })
}

/// Asks a write's path with `OPTIONS`: no body, nothing written.
async fn options(client: &LadokClient, operation: Operation, values: &[(&str, &str)]) -> Outcome {
    let endpoint = client.config().operations.get(operation);
    let path = super::operations::fill(&endpoint.path, values);
    let answer = client
        .raw(reqwest::Method::OPTIONS, &path, &endpoint.media_type, None)
        .send()
        .await;
    let response = match answer {
        Ok(response) => response,
        Err(e) => return Outcome::Unconfirmed(format!("no answer to OPTIONS: {e}")),
    };
    let status = response.status();
    let allow = response
        .headers()
        .get(reqwest::header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    match status {
        s if s.is_success() => {
            let allowed = allow
                .split(',')
                .any(|m| m.trim().eq_ignore_ascii_case(&endpoint.method));
            if allowed {
                Outcome::Answered(format!("OPTIONS allows {}", endpoint.method))
            } else {
                Outcome::Refused(format!(
                    "OPTIONS answered, but allows only {allow:?}, not {}",
                    endpoint.method
                ))
            }
        }
        StatusCode::NOT_FOUND => Outcome::Refused("404: no such path".to_owned()),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            Outcome::Refused("not permitted for this client certificate".to_owned())
        }
        other => Outcome::Unconfirmed(format!(
            "OPTIONS answered {}: the path may exist; confirm with Ladok's integration support",
            other.as_u16()
        )),
    }
}
