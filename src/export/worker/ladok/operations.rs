//! Every Ladok request the client makes, in one table: method, path and media type per operation.
//!
//! Ladok publishes its representations (the XSDs) but not the REST paths of other merits, so each
//! entry says whether public evidence backs it ([`Endpoint::evidence`]). The defaults are the best
//! evidence we have; a deployment overrides any entry with a JSON file (`CIM_LADOK_OPERATIONS`),
//! and `cim ladok check` asks the configured Ladok, read-only, whether each one is answered.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::media;

/// What the client asks Ladok to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// Who our client certificate is (the smoke test).
    AuthenticatedUser,
    /// A student by Ladok UID (`{student_uid}`).
    StudentByUid,
    /// A student by 12-digit identity number (`{pnr}`).
    StudentByPnr,
    /// One page (`{page}` from 1, `{limit}` merits) of a student's other merits, in a stated order.
    MeritsOfStudent,
    /// One other merit (`{merit_uid}`).
    ReadMerit,
    /// Creates an other merit of the student (`{student_uid}`): body `AnnanMerit`.
    CreateMerit,
    /// Attests other merits: body `AttesteraAndraMeriter`.
    AttestMerits,
    /// Corrects an attested merit (`{merit_uid}`): body `AnnanMeritRattning`.
    CorrectMerit,
    /// Withdraws (makulerar) a merit (`{merit_uid}`): body `Beslut`.
    WithdrawMerit,
}

impl Operation {
    pub const ALL: [Operation; 9] = [
        Operation::AuthenticatedUser,
        Operation::StudentByUid,
        Operation::StudentByPnr,
        Operation::MeritsOfStudent,
        Operation::ReadMerit,
        Operation::CreateMerit,
        Operation::AttestMerits,
        Operation::CorrectMerit,
        Operation::WithdrawMerit,
    ];

    /// The name in the configuration file and in `cim ladok check`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::AuthenticatedUser => "authenticated_user",
            Operation::StudentByUid => "student_by_uid",
            Operation::StudentByPnr => "student_by_pnr",
            Operation::MeritsOfStudent => "merits_of_student",
            Operation::ReadMerit => "read_merit",
            Operation::CreateMerit => "create_merit",
            Operation::AttestMerits => "attest_merits",
            Operation::CorrectMerit => "correct_merit",
            Operation::WithdrawMerit => "withdraw_merit",
        }
    }

    /// Whether the operation changes anything in Ladok (never sent by `cim ladok check`).
    pub fn writes(self) -> bool {
        matches!(
            self,
            Operation::CreateMerit
                | Operation::AttestMerits
                | Operation::CorrectMerit
                | Operation::WithdrawMerit
        )
    }
}

/// How much we know about an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// Used by public Ladok3 clients of Swedish universities.
    Public,
    /// Our best guess from the resultat service's naming; confirm with `cim ladok check`.
    Unverified,
    /// Set by this deployment's configuration.
    Configured,
}

/// One request shape.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Endpoint {
    pub method: String,
    /// Relative to the base URL, with `{…}` placeholders.
    pub path: String,
    /// In `Accept`, and in `Content-Type` for a body.
    pub media_type: String,
    #[serde(skip, default = "configured")]
    pub evidence: Evidence,
}

fn configured() -> Evidence {
    Evidence::Configured
}

fn endpoint(method: &str, path: &str, media_type: &str, evidence: Evidence) -> Endpoint {
    Endpoint {
        method: method.to_owned(),
        path: path.to_owned(),
        media_type: media_type.to_owned(),
        evidence,
    }
}

/// The table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LadokOperations(BTreeMap<Operation, Endpoint>);

impl Default for LadokOperations {
    fn default() -> Self {
        use Evidence::{Public, Unverified};
        let kataloginformation = "application/vnd.ladok-kataloginformation+json";
        let table = [
            (
                Operation::AuthenticatedUser,
                endpoint(
                    "GET",
                    "/kataloginformation/anvandare/autentiserad",
                    kataloginformation,
                    Public,
                ),
            ),
            (
                Operation::StudentByUid,
                endpoint(
                    "GET",
                    "/studentinformation/student/{student_uid}",
                    media::STUDENTINFORMATION,
                    Public,
                ),
            ),
            (
                Operation::StudentByPnr,
                endpoint(
                    "GET",
                    "/studentinformation/student/personnummer/{pnr}",
                    media::STUDENTINFORMATION,
                    Public,
                ),
            ),
            (
                Operation::MeritsOfStudent,
                endpoint(
                    "GET",
                    "/resultat/annanmerit/student/{student_uid}?page={page}&limit={limit}&orderby=UID_ASC",
                    media::RESULTAT,
                    Unverified,
                ),
            ),
            (
                Operation::ReadMerit,
                endpoint(
                    "GET",
                    "/resultat/annanmerit/{merit_uid}",
                    media::RESULTAT,
                    Unverified,
                ),
            ),
            (
                Operation::CreateMerit,
                endpoint(
                    "POST",
                    "/resultat/annanmerit/student/{student_uid}/skapa",
                    media::RESULTAT,
                    Unverified,
                ),
            ),
            (
                Operation::AttestMerits,
                endpoint(
                    "PUT",
                    "/resultat/annanmerit/attestera",
                    media::RESULTAT,
                    Unverified,
                ),
            ),
            (
                Operation::CorrectMerit,
                endpoint(
                    "PUT",
                    "/resultat/annanmerit/{merit_uid}/ratta",
                    media::RESULTAT,
                    Unverified,
                ),
            ),
            (
                Operation::WithdrawMerit,
                endpoint(
                    "PUT",
                    "/resultat/annanmerit/{merit_uid}/makulera",
                    media::RESULTAT,
                    Unverified,
                ),
            ),
        ];
        Self(table.into_iter().collect())
    }
}

/// The configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum OperationsError {
    #[error("the Ladok operations file is not valid JSON of the documented shape: {0}")]
    Shape(#[from] serde_json::Error),
    #[error("operation {operation}: method {method:?} is not GET, POST, PUT or DELETE")]
    Method { operation: String, method: String },
}

impl LadokOperations {
    pub fn get(&self, operation: Operation) -> &Endpoint {
        &self.0[&operation]
    }

    /// The defaults with the entries of a JSON object (`{"create_merit": {"method": "POST",
    /// "path": "…", "media_type": "…"}, …}`) put over them. Unknown operation names are refused.
    pub fn with_overrides(json: &str) -> Result<Self, OperationsError> {
        let overrides: BTreeMap<Operation, Endpoint> = serde_json::from_str(json)?;
        let mut table = Self::default();
        for (operation, endpoint) in overrides {
            if !["GET", "POST", "PUT", "DELETE"].contains(&endpoint.method.as_str()) {
                return Err(OperationsError::Method {
                    operation: operation.name().to_owned(),
                    method: endpoint.method,
                });
            }
            table.0.insert(operation, endpoint);
        }
        Ok(table)
    }

    /// Overrides one entry (tests and `cim-demo`).
    pub fn set(&mut self, operation: Operation, endpoint: Endpoint) {
        self.0.insert(operation, endpoint);
    }
}

/// `path` with each `{name}` replaced by its value.
pub fn fill(path: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(path.to_owned(), |path, (name, value)| {
        path.replace(&format!("{{{name}}}"), value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_a_default_and_overrides_replace_one_entry() {
        let defaults = LadokOperations::default();
        for op in Operation::ALL {
            assert!(defaults.get(op).path.starts_with('/'), "{}", op.name());
        }
        let table = LadokOperations::with_overrides(
            r#"{"create_merit": {"method": "POST", "path": "/x/{student_uid}", "media_type": "application/vnd.ladok-resultat+json"}}"#,
        )
        .unwrap();
        assert_eq!(table.get(Operation::CreateMerit).path, "/x/{student_uid}");
        assert_eq!(
            table.get(Operation::CreateMerit).evidence,
            Evidence::Configured
        );
        assert_eq!(
            table.get(Operation::ReadMerit),
            defaults.get(Operation::ReadMerit)
        );
        assert!(LadokOperations::with_overrides(r#"{"delete_everything": {}}"#).is_err());
        assert!(
            LadokOperations::with_overrides(
                r#"{"read_merit": {"method": "PATCH", "path": "/", "media_type": "x"}}"#
            )
            .is_err()
        );
    }

    #[test]
    fn placeholders_are_filled() {
        assert_eq!(
            fill(
                "/a/{student_uid}?page={page}",
                &[("student_uid", "u"), ("page", "2")]
            ),
            "/a/u?page=2"
        );
    }
}
