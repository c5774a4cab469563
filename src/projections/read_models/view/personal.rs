//! The personal content of a portfolio view: names, texts, feedback and reasons.

use serde::{Deserialize, Serialize};

use crate::domain::ActivityId;
use crate::domain::portfolio::{
    ActivityPersonal, Portfolio, ReflectionPersonal, Review, StudentDetails,
};
use crate::domain::values::NonEmptyText;

/// The personal content of a portfolio, for the student themself and their coordinators. Built
/// from a state folded *with* the personal column; every field is `None`/empty once erased.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PortfolioPersonal {
    pub student: Option<StudentDetails>,
    pub activities: Vec<ActivityPersonalView>,
    pub final_attempts: Vec<AttemptPersonal>,
    /// In the order of [`DeadlineView::extensions`].
    pub extension_reasons: Vec<Option<NonEmptyText>>,
    pub rejection_reasons: Vec<RejectionReason>,
    pub revocation_reason: Option<NonEmptyText>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActivityPersonalView {
    pub activity_id: ActivityId,
    pub details: Option<ActivityPersonal>,
    pub attempts: Vec<AttemptPersonal>,
}

/// What the student handed in for one attempt, and the feedback they got on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttemptPersonal {
    pub attempt: u32,
    pub content: Option<ReflectionPersonal>,
    pub feedback: Option<NonEmptyText>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RejectionReason {
    pub application: u32,
    pub reason: Option<NonEmptyText>,
}

fn feedback_of(review: Option<&Review>) -> Option<NonEmptyText> {
    match review {
        Some(Review::Returned {
            personal: Some(p), ..
        }) => Some(p.feedback.clone()),
        _ => None,
    }
}

impl PortfolioPersonal {
    /// Pure, like [`PortfolioView::build`].
    pub fn build(p: &Portfolio) -> Self {
        PortfolioPersonal {
            student: p.student.clone(),
            activities: p
                .activities
                .iter()
                .map(|a| ActivityPersonalView {
                    activity_id: a.id(),
                    details: a.logged.personal.clone(),
                    attempts: a
                        .attempts
                        .iter()
                        .map(|t| AttemptPersonal {
                            attempt: t.submitted.attempt,
                            content: t.submitted.personal.clone(),
                            feedback: feedback_of(t.review.as_ref()),
                        })
                        .collect(),
                })
                .collect(),
            final_attempts: p
                .final_attempts
                .iter()
                .map(|t| AttemptPersonal {
                    attempt: t.submitted.attempt,
                    content: t.submitted.personal.clone(),
                    feedback: feedback_of(t.review.as_ref()),
                })
                .collect(),
            extension_reasons: p
                .extensions
                .iter()
                .map(|e| e.personal.as_ref().map(|r| r.reason.clone()))
                .collect(),
            rejection_reasons: p
                .rejections
                .iter()
                .map(|r| RejectionReason {
                    application: r.application,
                    reason: r.personal.as_ref().map(|p| p.reason.clone()),
                })
                .collect(),
            revocation_reason: p
                .revocation
                .as_ref()
                .and_then(|r| r.personal.as_ref().map(|p| p.reason.clone())),
        }
    }
}
