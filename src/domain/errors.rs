//! Why a command was refused.
//!
//! Every refusal is something the person can act on, so each variant carries the measured value and the
//! rule it broke, and its message is written for the student or coordinator who will read it. `code()`
//! is the stable machine-readable name the HTTP layer puts in `application/problem+json`; messages may be
//! reworded, codes may not. Messages never quote personal data (texts, links, numbers), because error
//! messages end up in logs.

use chrono::NaiveDate;

use super::ids::{CatalogItemId, SlugError, StaffIdError};
use super::portfolio::ReflectionFormat;
use super::rules::{DurationBand, RulesError};
use super::values::{
    EmailError, IdentityNumberError, InstagramLinkError, MediaRefError, TextError, VideoLinkError,
    language_name,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    // Values (normally refused already at the border; here so handlers can use `?`).
    #[error(transparent)]
    Text(#[from] TextError),
    #[error(transparent)]
    IdentityNumber(#[from] IdentityNumberError),
    #[error(transparent)]
    Email(#[from] EmailError),
    #[error(transparent)]
    Media(#[from] MediaRefError),
    #[error(transparent)]
    Slug(#[from] SlugError),
    #[error(transparent)]
    StaffId(#[from] StaffIdError),

    // Programs and catalogs.
    #[error("the program is not registered")]
    ProgramNotRegistered,
    #[error("the program is already registered")]
    ProgramAlreadyRegistered,
    #[error("the catalog already has an item with the key {item}{}", if *retired { " (retired; keys are never reused)" } else { "" })]
    CatalogItemExists { item: CatalogItemId, retired: bool },
    #[error("the catalog already has an activity called {name:?}")]
    CatalogItemNameTaken { name: String },
    #[error("the activity {item} is not in this program's catalog")]
    CatalogItemUnknown { item: CatalogItemId },
    #[error("the activity {name:?} has been retired from this program's catalog")]
    CatalogItemRetired { item: CatalogItemId, name: String },
    #[error("the new rules are not accepted: {0}")]
    InvalidRules(RulesError),
    #[error("this staff member is already a coordinator of the program")]
    CoordinatorAlreadyAssigned,
    #[error("this staff member is not a coordinator of the program")]
    CoordinatorNotAssigned,
    #[error("nothing to change: the {what} already has that value")]
    NoChange { what: &'static str },

    // Portfolio lifecycle and permissions.
    #[error("there is no portfolio yet; it must be opened first")]
    PortfolioNotOpened,
    #[error("the portfolio is already open")]
    PortfolioAlreadyOpened,
    #[error("the portfolio belongs to a different program")]
    WrongProgram,
    #[error("only a coordinator of this program can do this")]
    NotACoordinator,
    #[error(
        "the expected completion date {date} is in the past (today is {today}); give the date you expect to finish"
    )]
    ExpectedCompletionInPast { date: NaiveDate, today: NaiveDate },
    #[error(
        "your expected completion date ({expected_completion}) has not been confirmed by a coordinator of your program yet; the final reflection's deadline is computed from it, so it can be submitted once they confirm it or set the right date"
    )]
    ExpectedCompletionUnconfirmed { expected_completion: NaiveDate },
    #[error(
        "there is no proposed expected completion date waiting for a decision; the student proposes one first"
    )]
    NoPendingCompletionProposal,
    #[error(
        "an application for the certificate is waiting for a decision; nothing can change until it is approved or rejected"
    )]
    ApplicationPending,
    #[error("the certificate has been issued; the portfolio can no longer change")]
    CertificateAlreadyIssued,
    #[error("the certificate was revoked and the portfolio is closed")]
    PortfolioClosed,

    // Activities.
    #[error("an activity with this id already exists in the portfolio")]
    ActivityIdTaken,
    #[error("there is no such activity in the portfolio")]
    ActivityUnknown,
    #[error("the activity has been withdrawn")]
    ActivityWithdrawn,
    #[error("the activity ends on {ended_on}, before it starts on {started_on}")]
    ActivityDatesReversed {
        started_on: NaiveDate,
        ended_on: NaiveDate,
    },
    #[error(
        "the activity ends on {ended_on}, which is in the future (today is {today}); log it once it is done"
    )]
    ActivityInFuture {
        ended_on: NaiveDate,
        today: NaiveDate,
    },
    #[error(
        "you have already logged {name:?}; this program counts each activity once, so choose a different one"
    )]
    RepeatedCatalogItem { name: String },
    #[error("the activity's reflection is approved, so the activity can no longer be withdrawn")]
    ActivityReflectionApproved,

    // Activity reflections.
    #[error(
        "a reflection on this activity has already been submitted; it can be resubmitted only if the coordinator returns it"
    )]
    ReflectionAlreadySubmitted,
    #[error("only a reflection the coordinator has returned can be resubmitted")]
    ReflectionNotReturned,
    #[error("there is no reflection on this activity waiting for review")]
    ReflectionNotAwaitingReview,
    #[error("the {} has {words} words; this program accepts {min} to {max}", word_subject(*format))]
    ReflectionWordCountOutOfBand {
        format: ReflectionFormat,
        words: u32,
        min: u32,
        max: u32,
    },
    #[error(
        "the recording is {duration_s} seconds long; this program accepts {} to {} seconds, with {} seconds tolerance on each side ({} to {} seconds)",
        band.min_s, band.max_s, band.tolerance_s, band.accepted_min_s(), band.accepted_max_s()
    )]
    ReflectionDurationOutOfBand { duration_s: u32, band: DurationBand },
    #[error("a duration can only be measured from an uploaded recording; none was attached")]
    DurationMeasuredWithoutMedia,
    #[error(
        "an oral reflection needs its recording: upload the file (POST /portfolios/{{portfolio_id}}/media) and send its media_sha256, or send a link to the university's video platform; this program does not accept a declared duration alone"
    )]
    RecordingRequired,
    #[error("send either an uploaded recording or a video platform link, not both")]
    RecordingTwice,
    #[error(transparent)]
    VideoLink(#[from] VideoLinkError),
    #[error("Instagram link {position} {reason}")]
    InstagramLinkInvalid {
        position: usize,
        reason: InstagramLinkError,
    },
    #[error("Instagram link {position} is the same post as link {same_as}")]
    InstagramLinkDuplicate { position: usize, same_as: usize },
    #[error(
        "the Instagram reflection links {posts} posts; this program asks for at least {min} different posts"
    )]
    InstagramTooFewPosts { posts: u32, min: u32 },

    // The final reflection.
    #[error(
        "the final reflection can be submitted once {required} activities have a reflection each; {with_reflection} do so far"
    )]
    FinalReflectionTooEarly { with_reflection: u32, required: u32 },
    #[error("{}", past_deadline_message(*deadline, *expected_completion, *offset_days, *extended))]
    FinalReflectionPastDeadline {
        deadline: NaiveDate,
        expected_completion: NaiveDate,
        offset_days: u32,
        extended: bool,
    },
    #[error(
        "a final reflection has already been submitted; it can be resubmitted only if the coordinator returns it"
    )]
    FinalReflectionAlreadySubmitted,
    #[error("only a final reflection the coordinator has returned can be resubmitted")]
    FinalReflectionNotReturned,
    #[error("there is no final reflection waiting for review")]
    FinalReflectionNotAwaitingReview,
    #[error("the final reflection has {words} words; this program accepts {min} to {max}")]
    FinalReflectionWordCountOutOfBand { words: u32, min: u32, max: u32 },
    #[error("{}", not_english_message(*detected))]
    FinalReflectionNotEnglish { detected: Option<&'static str> },
    #[error(
        "the final recording is {duration_s} seconds long; this program asks for at least {min_s} seconds"
    )]
    FinalReflectionTooShort { duration_s: u32, min_s: u32 },

    // Deadline extensions.
    #[error("the extension date {until} is in the past (today is {today})")]
    ExtensionInPast { until: NaiveDate, today: NaiveDate },
    #[error("the extension date {until} is not later than the current deadline {deadline}")]
    ExtensionNotLater {
        until: NaiveDate,
        deadline: NaiveDate,
    },

    // Application and certificate.
    #[error(
        "the certificate needs {required} approved activity reflections{}; there are {approved}",
        if *distinct { " on different activities" } else { "" }
    )]
    NotEnoughApprovedReflections {
        approved: u32,
        required: u32,
        distinct: bool,
    },
    #[error("the final reflection must be approved by the coordinator before applying")]
    FinalReflectionNotApproved,
    #[error("there is no application waiting for a decision")]
    NoApplicationPending,
    #[error("there is no issued certificate to revoke")]
    NoCertificate,

    // Export batches (decided for the export worker and the registrar).
    #[error("there is no such export batch")]
    BatchNotCreated,
    #[error("this export batch exists already")]
    BatchAlreadyCreated,
    #[error("this export batch's folder is complete; no file can be added to it")]
    BatchAlreadyComplete,
    #[error(
        "this export batch's folder is not complete yet; its certificates go to Ladok once it is"
    )]
    BatchIncomplete,
    #[error("certificate {certificate_id} is not in this export batch")]
    CertificateNotInBatch {
        certificate_id: crate::domain::CertificateId,
    },
}

fn word_subject(format: ReflectionFormat) -> &'static str {
    match format {
        ReflectionFormat::Instagram => "text of the Instagram reflection",
        ReflectionFormat::Written | ReflectionFormat::Oral => "reflection",
    }
}

/// "4 weeks" reads better than "28 days", but only when it is exact.
fn describe_days(days: u32) -> String {
    match days {
        1 => "1 day".to_owned(),
        7 => "1 week".to_owned(),
        d if d > 0 && d % 7 == 0 => format!("{} weeks", d / 7),
        d => format!("{d} days"),
    }
}

fn past_deadline_message(
    deadline: NaiveDate,
    expected_completion: NaiveDate,
    offset_days: u32,
    extended: bool,
) -> String {
    if extended {
        format!(
            "the final reflection was due on {deadline} (the extended deadline your coordinator granted); ask your coordinator for a further extension"
        )
    } else {
        format!(
            "the final reflection was due on {deadline} ({} before your expected completion on {expected_completion}); ask your coordinator for an extension",
            describe_days(offset_days)
        )
    }
}

fn not_english_message(detected: Option<&'static str>) -> String {
    match detected {
        Some(code) => format!(
            "the final reflection must be written in English; this text looks like {}",
            language_name(code)
        ),
        None => "the final reflection must be written in English; no language could be recognised in this text"
            .to_owned(),
    }
}

impl DomainError {
    /// The stable, snake_case code clients and tests match on.
    pub fn code(&self) -> &'static str {
        use DomainError::*;
        match self {
            Text(e) => e.code(),
            IdentityNumber(e) => e.code(),
            Email(e) => e.code(),
            Media(e) => e.code(),
            Slug(e) => e.code(),
            StaffId(e) => e.code(),
            ProgramNotRegistered => "program_not_registered",
            ProgramAlreadyRegistered => "program_already_registered",
            CatalogItemExists { .. } => "catalog_item_exists",
            CatalogItemNameTaken { .. } => "catalog_item_name_taken",
            CatalogItemUnknown { .. } => "catalog_item_unknown",
            CatalogItemRetired { .. } => "catalog_item_retired",
            InvalidRules(e) => e.code(),
            CoordinatorAlreadyAssigned => "coordinator_already_assigned",
            CoordinatorNotAssigned => "coordinator_not_assigned",
            NoChange { .. } => "no_change",
            PortfolioNotOpened => "portfolio_not_opened",
            PortfolioAlreadyOpened => "portfolio_already_opened",
            WrongProgram => "wrong_program",
            NotACoordinator => "not_a_coordinator",
            ExpectedCompletionInPast { .. } => "expected_completion_in_past",
            ExpectedCompletionUnconfirmed { .. } => "expected_completion_unconfirmed",
            NoPendingCompletionProposal => "no_pending_proposal",
            ApplicationPending => "application_pending",
            CertificateAlreadyIssued => "certificate_already_issued",
            PortfolioClosed => "portfolio_closed",
            ActivityIdTaken => "activity_id_taken",
            ActivityUnknown => "activity_unknown",
            ActivityWithdrawn => "activity_withdrawn",
            ActivityDatesReversed { .. } => "activity_dates_reversed",
            ActivityInFuture { .. } => "activity_in_future",
            RepeatedCatalogItem { .. } => "repeated_catalog_item",
            ActivityReflectionApproved => "activity_reflection_approved",
            ReflectionAlreadySubmitted => "reflection_already_submitted",
            ReflectionNotReturned => "reflection_not_returned",
            ReflectionNotAwaitingReview => "reflection_not_awaiting_review",
            ReflectionWordCountOutOfBand { .. } => "reflection_word_count_out_of_band",
            ReflectionDurationOutOfBand { .. } => "reflection_duration_out_of_band",
            DurationMeasuredWithoutMedia => "duration_measured_without_media",
            RecordingRequired => "recording_required",
            RecordingTwice => "recording_twice",
            VideoLink(e) => e.code(),
            InstagramLinkInvalid { .. } => "instagram_link_invalid",
            InstagramLinkDuplicate { .. } => "instagram_link_duplicate",
            InstagramTooFewPosts { .. } => "instagram_too_few_posts",
            FinalReflectionTooEarly { .. } => "final_reflection_too_early",
            FinalReflectionPastDeadline { .. } => "final_reflection_past_deadline",
            FinalReflectionAlreadySubmitted => "final_reflection_already_submitted",
            FinalReflectionNotReturned => "final_reflection_not_returned",
            FinalReflectionNotAwaitingReview => "final_reflection_not_awaiting_review",
            FinalReflectionWordCountOutOfBand { .. } => "final_reflection_word_count_out_of_band",
            FinalReflectionNotEnglish { .. } => "final_reflection_not_english",
            FinalReflectionTooShort { .. } => "final_reflection_too_short",
            ExtensionInPast { .. } => "extension_in_past",
            ExtensionNotLater { .. } => "extension_not_later",
            NotEnoughApprovedReflections { .. } => "not_enough_approved_reflections",
            FinalReflectionNotApproved => "final_reflection_not_approved",
            NoApplicationPending => "no_application_pending",
            NoCertificate => "no_certificate",
            BatchNotCreated => "batch_not_found",
            BatchAlreadyCreated => "batch_exists",
            BatchAlreadyComplete => "batch_complete",
            BatchIncomplete => "batch_incomplete",
            CertificateNotInBatch { .. } => "certificate_not_in_batch",
        }
    }

    /// The command field at fault, so a form can put the message next to it.
    pub fn field(&self) -> Option<&'static str> {
        use DomainError::*;
        match self {
            Text(e) => Some(e.field()),
            IdentityNumber(_) => Some("identity_number"),
            Email(_) => Some("email"),
            Media(_) => Some("media"),
            Slug(e) => Some(e.field()),
            StaffId(_) => Some("by"),
            CatalogItemExists { .. } | CatalogItemUnknown { .. } | CatalogItemRetired { .. } => {
                Some("item")
            }
            RepeatedCatalogItem { .. } => Some("item"),
            CatalogItemNameTaken { .. } => Some("name"),
            InvalidRules(_) => Some("rules"),
            CoordinatorAlreadyAssigned | CoordinatorNotAssigned => Some("staff"),
            NotACoordinator => Some("by"),
            ExpectedCompletionInPast { .. } => Some("expected_completion"),
            ActivityIdTaken | ActivityUnknown | ActivityWithdrawn => Some("activity_id"),
            ActivityDatesReversed { .. } | ActivityInFuture { .. } => Some("ended_on"),
            ReflectionWordCountOutOfBand { .. } | FinalReflectionWordCountOutOfBand { .. } => {
                Some("text")
            }
            FinalReflectionNotEnglish { .. } => Some("text"),
            ReflectionDurationOutOfBand { .. } | FinalReflectionTooShort { .. } => {
                Some("duration_s")
            }
            DurationMeasuredWithoutMedia => Some("duration_measured"),
            RecordingRequired => Some("media_sha256"),
            RecordingTwice | VideoLink(_) => Some("link"),
            InstagramLinkInvalid { .. }
            | InstagramLinkDuplicate { .. }
            | InstagramTooFewPosts { .. } => Some("links"),
            ExtensionInPast { .. } | ExtensionNotLater { .. } => Some("until"),
            _ => None,
        }
    }
}

impl From<RulesError> for DomainError {
    fn from(e: RulesError) -> Self {
        DomainError::InvalidRules(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn word_count_message_states_the_count_and_the_band() {
        let e = DomainError::ReflectionWordCountOutOfBand {
            format: ReflectionFormat::Written,
            words: 642,
            min: 900,
            max: 1100,
        };
        assert_eq!(
            e.to_string(),
            "the reflection has 642 words; this program accepts 900 to 1100"
        );
        assert_eq!(e.code(), "reflection_word_count_out_of_band");
        assert_eq!(e.field(), Some("text"));
    }

    #[test]
    fn deadline_message_explains_the_rule_and_the_way_out() {
        let e = DomainError::FinalReflectionPastDeadline {
            deadline: d(2026, 5, 4),
            expected_completion: d(2026, 6, 1),
            offset_days: 28,
            extended: false,
        };
        assert_eq!(
            e.to_string(),
            "the final reflection was due on 2026-05-04 (4 weeks before your expected completion on 2026-06-01); ask your coordinator for an extension"
        );
        let odd = DomainError::FinalReflectionPastDeadline {
            deadline: d(2026, 5, 22),
            expected_completion: d(2026, 6, 1),
            offset_days: 10,
            extended: false,
        };
        assert!(odd.to_string().contains("(10 days before"));
        let extended = DomainError::FinalReflectionPastDeadline {
            deadline: d(2026, 5, 20),
            expected_completion: d(2026, 6, 1),
            offset_days: 28,
            extended: true,
        };
        assert!(extended.to_string().contains("further extension"));
    }

    #[test]
    fn duration_message_states_range_and_tolerance() {
        let e = DomainError::ReflectionDurationOutOfBand {
            duration_s: 95,
            band: DurationBand {
                min_s: 120,
                max_s: 180,
                tolerance_s: 15,
            },
        };
        assert_eq!(
            e.to_string(),
            "the recording is 95 seconds long; this program accepts 120 to 180 seconds, with 15 seconds tolerance on each side (105 to 195 seconds)"
        );
    }

    #[test]
    fn not_english_message_names_the_language() {
        let e = DomainError::FinalReflectionNotEnglish {
            detected: Some("swe"),
        };
        assert!(e.to_string().ends_with("looks like Swedish"));
        let none = DomainError::FinalReflectionNotEnglish { detected: None };
        assert!(none.to_string().contains("no language could be recognised"));
    }

    #[test]
    fn value_errors_keep_their_own_codes() {
        let e: DomainError = IdentityNumberError::CheckDigit {
            found: 3,
            expected: 8,
        }
        .into();
        assert_eq!(e.code(), "identity_number_check_digit");
        assert_eq!(e.to_string(), "the check digit is 3 but should be 8");
        assert_eq!(e.field(), Some("identity_number"));
        let rules: DomainError = RulesError::NoRequiredActivities.into();
        assert_eq!(rules.code(), "rules_no_required_activities");
    }
}
