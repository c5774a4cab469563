//! What happened to a portfolio.
//!
//! Every event keeps all personal data in one field named `personal` (see
//! [`event_payload`](crate::domain::event_payload)): `None` there means the data was erased, and the
//! non-personal facts beside it (ids, dates, counts, formats, catalog names, rules applied) are enough
//! for every rule and every statistic.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::domain::event_payload::domain_events;
use crate::domain::ids::{
    ActivityId, CatalogItemId, CertificateId, PortfolioId, ProgramCode, ProgramId, StaffId,
    StudentUid,
};
use crate::domain::rules::AppliedBand;
use crate::domain::values::{
    Email, IdentityNumber, InstagramPostLink, MediaRef, NonEmptyText, PersonName, RecordingKind,
    VideoLink,
};

/// The format a student chose for an activity reflection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReflectionFormat {
    Written,
    Oral,
    Instagram,
}

/// The format of the final reflection (the seed offers no Instagram option for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FinalFormat {
    Written,
    Oral,
}

/// Who the student is. Erasable; the Ladok UID outside it is what the registrar keys on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StudentDetails {
    pub identity_number: IdentityNumber,
    pub name: PersonName,
    pub email: Email,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortfolioOpened {
    pub portfolio_id: PortfolioId,
    pub program_id: ProgramId,
    pub student_uid: StudentUid,
    pub expected_completion: NaiveDate,
    /// What Ladok said of the identity number at enrolment; absent when Ladok could not be asked
    /// (the number is then the typed one, checked later: [`IdentityCheckedInLadok`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_check: Option<IdentityCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal: Option<StudentDetails>,
}

/// What Ladok said of a student's identity number (`docs/identity.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdentityCheck {
    /// Ladok gave the number, or has the same one as was typed.
    Confirmed,
    /// Ladok has another number than the one typed; the portfolio carries Ladok's from then on.
    Corrected,
    /// Ladok knows the student but has no number for them: the typed one stays.
    NoNumberInLadok,
    /// Ladok has no student with the portfolio's Ladok UID.
    NotInLadok,
    /// Ladok's number belongs to another student of this service: nothing was changed; the
    /// delivery's identity check stops the certificate for the registrar.
    NumberHeldByAnother,
    /// Ladok answered with a record this service cannot use (another student's, or a number it
    /// cannot read): nothing was changed; the delivery's identity check stops the certificate.
    Unusable,
}

/// The identity number typed at enrolment, while Ladok could not be asked, checked against Ladok
/// afterwards (by the export run, `export::identity_check`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityCheckedInLadok {
    pub outcome: IdentityCheck,
    /// Ladok's number when `outcome` is `corrected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal: Option<LadokIdentityNumber>,
}

/// The number Ladok has for the student. Erasable like every personal value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LadokIdentityNumber {
    pub identity_number: IdentityNumber,
}

/// The student moved their own date. No longer decided (a coordinator sets the date now, see
/// [`ExpectedCompletionSet`]); kept so that logs written before still fold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectedCompletionChanged {
    pub expected_completion: NaiveDate,
    /// Kept so the audit can show what the deadline was before the change without replaying.
    pub previous: NaiveDate,
}

/// A coordinator set the expected completion date, the trusted source of the final deadline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectedCompletionSet {
    pub expected_completion: NaiveDate,
    pub previous: NaiveDate,
    pub by: StaffId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal: Option<ReasonPersonal>,
}

/// A coordinator confirmed the date in force (given by the student at enrolment) as the one the final
/// deadline is computed from. Nothing personal: confirming is not a change, so it needs no reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectedCompletionConfirmed {
    pub expected_completion: NaiveDate,
    pub by: StaffId,
}

/// The student asked for another date; nothing changes until a coordinator accepts it. A newer
/// proposal replaces a pending one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectedCompletionProposed {
    /// 1 for the first proposal of the portfolio, counting up.
    pub proposal: u32,
    pub expected_completion: NaiveDate,
    /// The date in force when proposed.
    pub current: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal: Option<ReasonPersonal>,
}

/// A coordinator accepted the pending proposal: the date moves to the proposed one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectedCompletionProposalAccepted {
    pub proposal: u32,
    pub expected_completion: NaiveDate,
    pub previous: NaiveDate,
    pub by: StaffId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal: Option<ReasonPersonal>,
}

/// A coordinator declined the pending proposal: the date stays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectedCompletionProposalDeclined {
    pub proposal: u32,
    pub by: StaffId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal: Option<ReasonPersonal>,
}

/// The student's own words about an activity and their evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActivityPersonal {
    pub description: NonEmptyText,
    pub evidence: Option<MediaRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityLogged {
    pub activity_id: ActivityId,
    pub item: CatalogItemId,
    /// The item's name when the activity was logged: renames later do not rewrite the student's history.
    pub item_name: String,
    pub started_on: NaiveDate,
    pub ended_on: NaiveDate,
    /// Whether evidence was attached, kept outside `personal` for the pilot evaluation.
    pub has_evidence: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal: Option<ActivityPersonal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityWithdrawn {
    pub activity_id: ActivityId,
}

/// The content of a reflection: the text, normalised Instagram links and any recording (an upload or
/// a link to the video platform).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReflectionPersonal {
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<InstagramPostLink>,
    pub media: Option<MediaRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_link: Option<VideoLink>,
}

/// One attempt at an activity reflection (attempt 1 is the first submission, later ones follow returns).
///
/// The measured values sit outside `personal` so that coordinators and the pilot evaluation see them
/// after erasure, and `rules_version` + `band` record exactly what the reflection was judged by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReflectionSubmitted {
    pub activity_id: ActivityId,
    pub attempt: u32,
    pub format: ReflectionFormat,
    pub word_count: Option<u32>,
    pub duration_s: Option<u32>,
    /// `false` means the server could not measure the recording and kept the declared duration: the
    /// coordinator should check it.
    pub duration_measured: Option<bool>,
    /// What an oral reflection rests on; `None` for other formats and for events written before it
    /// was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<RecordingKind>,
    pub link_count: Option<u32>,
    pub rules_version: u32,
    pub band: AppliedBand,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal: Option<ReflectionPersonal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReflectionApproved {
    pub activity_id: ActivityId,
    pub attempt: u32,
    pub by: StaffId,
}

/// Coordinator feedback is about the student's work and may quote it, so it is personal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackPersonal {
    pub feedback: NonEmptyText,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReflectionReturned {
    pub activity_id: ActivityId,
    pub attempt: u32,
    pub by: StaffId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal: Option<FeedbackPersonal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalReflectionSubmitted {
    pub attempt: u32,
    pub format: FinalFormat,
    pub word_count: Option<u32>,
    pub duration_s: Option<u32>,
    pub duration_measured: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<RecordingKind>,
    /// ISO 639-3 code whatlang detected for a written text, with its confidence, so that the coordinator
    /// can see how sure the automatic English check was.
    pub language: Option<String>,
    pub language_confidence: Option<f64>,
    pub rules_version: u32,
    pub band: AppliedBand,
    /// The Stockholm date of submission and the deadline it was judged against (`None` for
    /// resubmissions after a return, which the deadline does not bind).
    pub submitted_on: NaiveDate,
    pub deadline: Option<NaiveDate>,
    /// Whether the deadline applied came from an extension.
    pub extended: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal: Option<ReflectionPersonal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalReflectionApproved {
    pub attempt: u32,
    pub by: StaffId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalReflectionReturned {
    pub attempt: u32,
    pub by: StaffId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal: Option<FeedbackPersonal>,
}

/// A reason written by staff or the student; it may describe the student's circumstances, so it is
/// personal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonPersonal {
    pub reason: NonEmptyText,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtensionGranted {
    /// The new last day (inclusive, Stockholm) for submitting the final reflection.
    pub until: NaiveDate,
    pub by: StaffId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal: Option<ReasonPersonal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplicationSubmitted {
    /// 1 for the first application, counting up after rejections.
    pub application: u32,
    /// The activities the application rests on: every approved, non-withdrawn activity.
    pub activity_ids: Vec<ActivityId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplicationRejected {
    pub application: u32,
    pub by: StaffId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal: Option<ReasonPersonal>,
}

/// One activity as the certificate states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CertifiedActivity {
    pub activity_id: ActivityId,
    pub item: CatalogItemId,
    pub item_name: String,
    pub started_on: NaiveDate,
    pub ended_on: NaiveDate,
    pub reflection_format: ReflectionFormat,
}

/// The certificate holder as the registrar records them, snapshotted at approval so that exports do not
/// depend on the portfolio's personal data still being there. Whether this part is kept on an erasure
/// request (archiving rules) is the store's policy; the domain only keeps it separable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateHolder {
    pub identity_number: IdentityNumber,
    pub name: PersonName,
}

/// The moment the certificate exists: everything the registrar and Ladok need, in one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateApproved {
    pub certificate_id: CertificateId,
    pub portfolio_id: PortfolioId,
    pub program_id: ProgramId,
    pub program_code: ProgramCode,
    pub program_name: String,
    pub student_uid: StudentUid,
    pub application: u32,
    pub activities: Vec<CertifiedActivity>,
    pub final_format: FinalFormat,
    /// The Stockholm date of the decision (the DS and Ladok record a date, not an instant).
    pub decided_on: NaiveDate,
    pub decided_by: StaffId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal: Option<CertificateHolder>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateRevoked {
    pub certificate_id: CertificateId,
    pub by: StaffId,
    pub revoked_on: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal: Option<ReasonPersonal>,
}

/// The student's personal data was erased on request (GDPR, by crypto-shredding: their key is gone, so
/// the personal part of every earlier event of theirs reads as erased). Appended to each of the
/// student's portfolios so the audit shows that an erasure happened, when, by whom and why. Nothing
/// in it is personal: the reason is an administrator's case reference, and it is kept for good.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonalDataErased {
    pub student_uid: StudentUid,
    pub by: StaffId,
    pub reason: NonEmptyText,
    /// Uploaded files of this portfolio that were deleted (recordings, evidence).
    pub media_deleted: u32,
}

domain_events!(
    /// Events of the `portfolio-{id}` stream.
    PortfolioEvent {
        PortfolioOpened,
        IdentityCheckedInLadok,
        ExpectedCompletionChanged,
        ExpectedCompletionSet,
        ExpectedCompletionConfirmed,
        ExpectedCompletionProposed,
        ExpectedCompletionProposalAccepted,
        ExpectedCompletionProposalDeclined,
        ActivityLogged,
        ActivityWithdrawn,
        ReflectionSubmitted,
        ReflectionApproved,
        ReflectionReturned,
        FinalReflectionSubmitted,
        FinalReflectionApproved,
        FinalReflectionReturned,
        ExtensionGranted,
        ApplicationSubmitted,
        ApplicationRejected,
        CertificateApproved,
        CertificateRevoked,
        PersonalDataErased,
    }
);

#[cfg(test)]
mod tests;
