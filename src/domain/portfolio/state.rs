//! A portfolio as its events leave it.
//!
//! The state keeps the events' own structs (attempts, extensions, the certificate) rather than copies
//! of their fields: nothing can get lost between what was recorded and what the rules see, and every
//! attempt and every piece of feedback stays visible.

use chrono::{Days, NaiveDate};

use super::events::*;
use crate::domain::ids::{ActivityId, CatalogItemId, PortfolioId, ProgramId, StaffId, StudentUid};
use crate::domain::rules::ProgramRules;

#[derive(Debug, Clone, Default, PartialEq)]
pub enum PortfolioState {
    /// No `PortfolioOpened` yet: only opening is allowed.
    #[default]
    NotOpened,
    /// Boxed because a portfolio is large and "not opened" is empty.
    Opened(Box<Portfolio>),
}

impl PortfolioState {
    pub fn opened(&self) -> Option<&Portfolio> {
        match self {
            PortfolioState::Opened(portfolio) => Some(portfolio),
            PortfolioState::NotOpened => None,
        }
    }

    /// About how many bytes of memory the state holds, for a cache bounded by memory. What people
    /// wrote dominates (a 1,000-word reflection is 6 to 8 kB, feedback and reasons up to 5 kB), so
    /// the texts are counted exactly and everything else as a fixed allowance per record.
    pub fn approx_bytes(&self) -> usize {
        const RECORD: usize = 512;
        let Some(p) = self.opened() else {
            return RECORD;
        };
        let text = |personal: Option<&ReflectionPersonal>| {
            personal
                .and_then(|p| p.text.as_ref())
                .map_or(0, String::len)
        };
        let review = |review: &Option<Review>| match review {
            Some(Review::Returned {
                personal: Some(f), ..
            }) => f.feedback.as_str().len(),
            _ => 0,
        };
        let activities: usize = p
            .activities
            .iter()
            .map(|a| {
                let description = a.logged.personal.as_ref();
                let attempts: usize = a
                    .attempts
                    .iter()
                    .map(|t| RECORD + text(t.submitted.personal.as_ref()) + review(&t.review))
                    .sum();
                RECORD + description.map_or(0, |d| d.description.as_str().len()) + attempts
            })
            .sum();
        let finals: usize = p
            .final_attempts
            .iter()
            .map(|f| RECORD + text(f.submitted.personal.as_ref()) + review(&f.review))
            .sum();
        let rejections: usize = p
            .rejections
            .iter()
            .map(|r| RECORD + r.personal.as_ref().map_or(0, |x| x.reason.as_str().len()))
            .sum();
        4 * RECORD + activities + finals + rejections
    }
}

/// Where the portfolio is on the student's path; decides which commands are possible at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Logging activities, reflecting, being reviewed.
    Collecting,
    /// An application waits for the coordinator: the portfolio is frozen so that the decision is made on
    /// exactly what the student applied with.
    Applied {
        application: u32,
    },
    Certified,
    /// The certificate was revoked; the portfolio is closed for good (a new start needs a new portfolio).
    Revoked,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Portfolio {
    pub id: PortfolioId,
    pub program_id: ProgramId,
    pub student_uid: StudentUid,
    /// `None` once erased.
    pub student: Option<StudentDetails>,
    /// What Ladok said of the identity number; `None` while it is the typed one, not yet checked.
    pub identity_check: Option<IdentityCheck>,
    pub expected_completion: NaiveDate,
    /// Whether a coordinator has set or confirmed `expected_completion`. The date given at enrolment
    /// is the student's own, so the first final reflection waits for this (`docs/rules.md`).
    pub completion_confirmed: bool,
    /// The student's proposal of another date, waiting for a coordinator (it changes nothing yet).
    pub completion_proposal: Option<ExpectedCompletionProposed>,
    /// Proposals made so far, to number the next one.
    pub completion_proposals: u32,
    /// In the order logged, withdrawn ones included.
    pub activities: Vec<Activity>,
    pub final_attempts: Vec<FinalAttempt>,
    pub extensions: Vec<ExtensionGranted>,
    pub phase: Phase,
    pub applications: u32,
    pub rejections: Vec<ApplicationRejected>,
    pub certificate: Option<CertificateApproved>,
    pub revocation: Option<CertificateRevoked>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub logged: ActivityLogged,
    pub withdrawn: bool,
    pub attempts: Vec<ReflectionAttempt>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReflectionAttempt {
    pub submitted: ReflectionSubmitted,
    pub review: Option<Review>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FinalAttempt {
    pub submitted: FinalReflectionSubmitted,
    pub review: Option<Review>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Review {
    Approved {
        by: StaffId,
    },
    Returned {
        by: StaffId,
        personal: Option<FeedbackPersonal>,
    },
}

/// Where a reflection (activity or final) stands, derived from its latest attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReflectionStatus {
    NotSubmitted,
    AwaitingReview,
    Returned,
    Approved,
}

fn status_of(last_review: Option<Option<&Review>>) -> ReflectionStatus {
    match last_review {
        None => ReflectionStatus::NotSubmitted,
        Some(None) => ReflectionStatus::AwaitingReview,
        Some(Some(Review::Returned { .. })) => ReflectionStatus::Returned,
        Some(Some(Review::Approved { .. })) => ReflectionStatus::Approved,
    }
}

impl Activity {
    pub fn id(&self) -> ActivityId {
        self.logged.activity_id
    }

    pub fn item(&self) -> &CatalogItemId {
        &self.logged.item
    }

    pub fn status(&self) -> ReflectionStatus {
        status_of(self.attempts.last().map(|a| a.review.as_ref()))
    }

    /// The format of the latest attempt, which is the one a certificate reports.
    pub fn reflection_format(&self) -> Option<ReflectionFormat> {
        self.attempts.last().map(|a| a.submitted.format)
    }
}

/// The deadline for the final reflection as it stands, and whether an extension set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub date: NaiveDate,
    pub regular: NaiveDate,
    pub extended: bool,
}

impl Portfolio {
    pub fn activity(&self, id: ActivityId) -> Option<&Activity> {
        self.activities.iter().find(|a| a.id() == id)
    }

    pub(crate) fn activity_mut(&mut self, id: ActivityId) -> Option<&mut Activity> {
        self.activities.iter_mut().find(|a| a.id() == id)
    }

    /// Activities that still count (not withdrawn).
    pub fn active_activities(&self) -> impl Iterator<Item = &Activity> {
        self.activities.iter().filter(|a| !a.withdrawn)
    }

    pub fn final_status(&self) -> ReflectionStatus {
        status_of(self.final_attempts.last().map(|a| a.review.as_ref()))
    }

    /// How many active activities satisfy `pred`, counting each catalog item once unless the rules allow
    /// repeats. Counting distinct items here (not only when logging) keeps the rule true after a program
    /// switches repeats off again.
    pub fn count_counting(&self, rules: &ProgramRules, pred: impl Fn(&Activity) -> bool) -> u32 {
        let matching = self.active_activities().filter(|a| pred(a));
        let count = if rules.allow_repeat_items {
            matching.count()
        } else {
            let mut items: Vec<&CatalogItemId> = matching.map(Activity::item).collect();
            items.sort();
            items.dedup();
            items.len()
        };
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// Activities with at least one reflection submitted (the final reflection's precondition).
    pub fn reflected_count(&self, rules: &ProgramRules) -> u32 {
        self.count_counting(rules, |a| !a.attempts.is_empty())
    }

    /// Activities whose reflection is approved (the application's precondition).
    pub fn approved_count(&self, rules: &ProgramRules) -> u32 {
        self.count_counting(rules, |a| a.status() == ReflectionStatus::Approved)
    }

    /// Expected completion minus the offset, or the latest extension if that is later.
    pub fn deadline(&self, rules: &ProgramRules) -> Deadline {
        let regular = self
            .expected_completion
            .checked_sub_days(Days::new(u64::from(rules.final_deadline_offset_days)))
            .unwrap_or(NaiveDate::MIN);
        match self.extensions.last().map(|e| e.until) {
            Some(until) if until > regular => Deadline {
                date: until,
                regular,
                extended: true,
            },
            _ => Deadline {
                date: regular,
                regular,
                extended: false,
            },
        }
    }
}
