//! Request bodies that several routes take: a staff member's reason (rejecting an application,
//! revoking a certificate, erasing a student's data), and [`Reasoned`], what a coordinator's
//! decision with a reason needs of its body (`pipeline::CommandRequest::coordinator_decision`).

use super::problem::Problem;
use crate::domain::DomainError;
use crate::domain::portfolio::MAX_STAFF_TEXT_LEN;
use crate::domain::values::NonEmptyText;
use serde::Deserialize;
use utoipa::ToSchema;

/// A reason from staff: `{"reason": "…"}` (rejections, revocations).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"reason": "The final reflection discusses an activity that is not in the portfolio."}))]
#[serde(deny_unknown_fields)]
pub struct Reason {
    pub reason: String,
}

impl Reason {
    pub fn parse(self) -> Result<NonEmptyText, DomainError> {
        Ok(NonEmptyText::parse(
            &self.reason,
            "reason",
            MAX_STAFF_TEXT_LEN,
        )?)
    }
}

/// A body that carries a staff member's reason, checked like every staff text.
pub trait Reasoned {
    fn reason(self) -> Result<NonEmptyText, Problem>;
}

impl Reasoned for Reason {
    fn reason(self) -> Result<NonEmptyText, Problem> {
        Ok(self.parse()?)
    }
}
