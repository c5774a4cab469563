//! What students and coordinators ask of a portfolio.
//!
//! Commands carry validated values (parsed by the handler from the request), except where validity
//! depends on the program's rules in force or on the portfolio's history: reflection contents are
//! measured and judged in `decide`, never trusted from the client.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::domain::ids::{
    ActivityId, CatalogItemId, CertificateId, PortfolioId, StaffId, StudentUid,
};
use crate::domain::values::{Email, IdentityNumber, MediaRef, NonEmptyText, PersonName};

use super::events::IdentityCheck;

/// What Ladok answered when asked for the portfolio's student, as the identity check reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LadokRecord {
    /// Ladok's record of the portfolio's Ladok UID, with its identity number if it has one.
    Student {
        identity_number: Option<IdentityNumber>,
    },
    /// Ladok has no student with the portfolio's Ladok UID.
    NoSuchStudent,
    /// Ladok's number is held by another student of this service (found when claiming it).
    NumberHeldByAnother,
    /// A record this service cannot use: another student's, or a number it cannot read.
    Unusable,
}

/// Longest activity description accepted.
pub const MAX_DESCRIPTION_LEN: usize = 2_000;
/// Longest feedback or reason accepted from staff.
pub const MAX_STAFF_TEXT_LEN: usize = 5_000;
/// Longest reflection text accepted, in characters: far above any word band, it only stops abuse.
pub const MAX_REFLECTION_TEXT_LEN: usize = 100_000;

/// An activity reflection as submitted. Word counts and link checks are computed from it by `decide`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum ReflectionContent {
    Written {
        text: String,
    },
    /// `duration_measured` says whether the upload service could read the duration from the container;
    /// otherwise `duration_s` is the student's declaration and the event flags it for the coordinator.
    /// The recording is `media` (an upload) or `link` (to the video platform, checked against the
    /// rules' hosts in `decide`); neither is accepted only where the rules allow declared durations.
    Oral {
        media: Option<MediaRef>,
        #[serde(default)]
        link: Option<String>,
        duration_s: u32,
        duration_measured: bool,
    },
    Instagram {
        links: Vec<String>,
        text: String,
    },
}

/// The final reflection as submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum FinalContent {
    Written {
        text: String,
    },
    Oral {
        media: Option<MediaRef>,
        #[serde(default)]
        link: Option<String>,
        duration_s: u32,
        duration_measured: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum PortfolioCommand {
    /// Enrolment. The program is the one passed to `decide`; ids are minted by the caller.
    OpenPortfolio {
        portfolio_id: PortfolioId,
        student_uid: StudentUid,
        identity_number: IdentityNumber,
        name: PersonName,
        email: Email,
        expected_completion: NaiveDate,
        /// What Ladok said of `identity_number`; `None` when Ladok could not be asked.
        identity_check: Option<IdentityCheck>,
    },
    /// The system checks a typed identity number against Ladok's record of the student.
    CheckIdentityInLadok {
        record: LadokRecord,
    },
    /// A coordinator sets the date the final deadline is computed from (the trusted source).
    SetExpectedCompletion {
        expected_completion: NaiveDate,
        reason: NonEmptyText,
        by: StaffId,
    },
    /// A coordinator confirms the date given at enrolment as the trusted one.
    ConfirmExpectedCompletion {
        by: StaffId,
    },
    /// The student asks for another date; a coordinator decides.
    ProposeExpectedCompletion {
        expected_completion: NaiveDate,
        reason: NonEmptyText,
    },
    AcceptExpectedCompletion {
        by: StaffId,
        reason: NonEmptyText,
    },
    DeclineExpectedCompletion {
        by: StaffId,
        reason: NonEmptyText,
    },
    LogActivity {
        activity_id: ActivityId,
        item: CatalogItemId,
        started_on: NaiveDate,
        ended_on: NaiveDate,
        description: NonEmptyText,
        evidence: Option<MediaRef>,
    },
    WithdrawActivity {
        activity_id: ActivityId,
    },
    SubmitReflection {
        activity_id: ActivityId,
        content: ReflectionContent,
    },
    ResubmitReflection {
        activity_id: ActivityId,
        content: ReflectionContent,
    },
    ApproveReflection {
        activity_id: ActivityId,
        by: StaffId,
    },
    ReturnReflection {
        activity_id: ActivityId,
        by: StaffId,
        feedback: NonEmptyText,
    },
    SubmitFinalReflection {
        content: FinalContent,
    },
    ResubmitFinalReflection {
        content: FinalContent,
    },
    ApproveFinalReflection {
        by: StaffId,
    },
    ReturnFinalReflection {
        by: StaffId,
        feedback: NonEmptyText,
    },
    GrantExtension {
        until: NaiveDate,
        reason: NonEmptyText,
        by: StaffId,
    },
    Apply,
    ApproveApplication {
        certificate_id: CertificateId,
        by: StaffId,
    },
    RejectApplication {
        by: StaffId,
        reason: NonEmptyText,
    },
    RevokeCertificate {
        by: StaffId,
        reason: NonEmptyText,
    },
}
