//! What the registrar's office must still do by hand in Ladok for a certificate, which the export
//! does not (or must not) do: listed per certificate in the registrar API
//! (`GET /certificates/{id}`) and in every batch manifest.

use serde::{Deserialize, Serialize};

/// One step for a person in Ladok.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ManualStep {
    /// Stable code: `allow_in_degree_certificate`, `check_issued_degree_certificate`,
    /// `check_student_record`.
    pub code: String,
    /// What to do, for a person.
    pub text: String,
}

fn step(code: &str, text: &str) -> ManualStep {
    ManualStep {
        code: code.to_owned(),
        text: text.to_owned(),
    }
}

/// The steps of a certificate: `revoked` or approved, and the reason code of its last failed
/// delivery, if any.
pub fn manual_steps(revoked: bool, delivery_error: Option<&str>) -> Vec<ManualStep> {
    let mut steps = Vec::new();
    if delivery_error.is_some_and(|e| e.starts_with("identity_mismatch")) {
        steps.push(step(
            "check_student_record",
            "Ladok's student record for this Ladok UID is not the certificate's student: nothing \
             was written. Check the student's Ladok UID and identity number, then request \
             redelivery of the batch.",
        ));
    }
    if revoked {
        steps.push(step(
            "check_issued_degree_certificate",
            "The merit is withdrawn (makulerad) in Ladok. If a degree certificate or Diploma \
             Supplement that lists it was already issued, it must be reissued by hand.",
        ));
    } else {
        steps.push(step(
            "allow_in_degree_certificate",
            "When the degree is prepared, mark the other merit as allowed in the degree \
             certificate (TillatenIBevis) in Ladok: an administrator sets it, the export does not.",
        ));
    }
    steps
}
