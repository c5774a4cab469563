//! Activities and their reflections.

use chrono::NaiveDate;

use super::commands::{MAX_DESCRIPTION_LEN, MAX_STAFF_TEXT_LEN, ReflectionContent};
use super::content::judge_reflection;
use super::decide::{Ctx, check_len, require_collecting};
use super::events::*;
use super::state::{Activity, ReflectionStatus};
use crate::domain::errors::DomainError;
use crate::domain::ids::{ActivityId, CatalogItemId, StaffId};
use crate::domain::values::{MediaRef, NonEmptyText};

pub(super) fn log(
    ctx: &Ctx<'_>,
    activity_id: ActivityId,
    item: CatalogItemId,
    (started_on, ended_on): (NaiveDate, NaiveDate),
    description: NonEmptyText,
    evidence: Option<MediaRef>,
) -> Result<PortfolioEvent, DomainError> {
    require_collecting(ctx.portfolio)?;
    if ctx.portfolio.activity(activity_id).is_some() {
        return Err(DomainError::ActivityIdTaken);
    }
    let catalog_item = ctx
        .program
        .item(&item)
        .ok_or_else(|| DomainError::CatalogItemUnknown { item: item.clone() })?;
    if catalog_item.retired {
        return Err(DomainError::CatalogItemRetired {
            item,
            name: catalog_item.name.to_string(),
        });
    }
    if ended_on < started_on {
        return Err(DomainError::ActivityDatesReversed {
            started_on,
            ended_on,
        });
    }
    if ended_on > ctx.today {
        return Err(DomainError::ActivityInFuture {
            ended_on,
            today: ctx.today,
        });
    }
    let repeated = ctx.portfolio.active_activities().any(|a| a.item() == &item);
    if repeated && !ctx.rules().allow_repeat_items {
        return Err(DomainError::RepeatedCatalogItem {
            name: catalog_item.name.to_string(),
        });
    }
    check_len(&description, "description", MAX_DESCRIPTION_LEN)?;
    Ok(ActivityLogged {
        activity_id,
        item,
        item_name: catalog_item.name.to_string(),
        started_on,
        ended_on,
        has_evidence: evidence.is_some(),
        personal: Some(ActivityPersonal {
            description,
            evidence,
        }),
    }
    .into())
}

/// Students may take back anything not yet approved; an approved reflection is the program's decision
/// and stays.
pub(super) fn withdraw(
    ctx: &Ctx<'_>,
    activity_id: ActivityId,
) -> Result<PortfolioEvent, DomainError> {
    require_collecting(ctx.portfolio)?;
    let activity = active_activity(ctx, activity_id)?;
    if activity.status() == ReflectionStatus::Approved {
        return Err(DomainError::ActivityReflectionApproved);
    }
    Ok(ActivityWithdrawn { activity_id }.into())
}

/// First submission (`resubmission == false`) or a new attempt after a return.
pub(super) fn submit(
    ctx: &Ctx<'_>,
    activity_id: ActivityId,
    content: ReflectionContent,
    resubmission: bool,
) -> Result<PortfolioEvent, DomainError> {
    require_collecting(ctx.portfolio)?;
    let activity = active_activity(ctx, activity_id)?;
    match (resubmission, activity.status()) {
        (false, ReflectionStatus::NotSubmitted) | (true, ReflectionStatus::Returned) => {}
        (false, _) => return Err(DomainError::ReflectionAlreadySubmitted),
        (true, _) => return Err(DomainError::ReflectionNotReturned),
    }
    let judged = judge_reflection(content, ctx.rules())?;
    Ok(ReflectionSubmitted {
        activity_id,
        attempt: next_attempt(activity.attempts.len()),
        format: judged.format,
        word_count: judged.word_count,
        duration_s: judged.duration_s,
        duration_measured: judged.duration_measured,
        recording: judged.recording,
        link_count: judged.link_count,
        rules_version: ctx.program.rules_version,
        band: judged.band,
        personal: Some(judged.personal),
    }
    .into())
}

pub(super) fn approve(
    ctx: &Ctx<'_>,
    activity_id: ActivityId,
    by: StaffId,
) -> Result<PortfolioEvent, DomainError> {
    let attempt = awaiting_review(ctx, activity_id)?;
    Ok(ReflectionApproved {
        activity_id,
        attempt,
        by,
    }
    .into())
}

pub(super) fn return_for_revision(
    ctx: &Ctx<'_>,
    activity_id: ActivityId,
    by: StaffId,
    feedback: NonEmptyText,
) -> Result<PortfolioEvent, DomainError> {
    let attempt = awaiting_review(ctx, activity_id)?;
    check_len(&feedback, "feedback", MAX_STAFF_TEXT_LEN)?;
    Ok(ReflectionReturned {
        activity_id,
        attempt,
        by,
        personal: Some(FeedbackPersonal { feedback }),
    }
    .into())
}

/// The number of the attempt that waits for review.
fn awaiting_review(ctx: &Ctx<'_>, activity_id: ActivityId) -> Result<u32, DomainError> {
    require_collecting(ctx.portfolio)?;
    let activity = active_activity(ctx, activity_id)?;
    match activity.attempts.last() {
        Some(attempt) if attempt.review.is_none() => Ok(attempt.submitted.attempt),
        _ => Err(DomainError::ReflectionNotAwaitingReview),
    }
}

pub(super) fn next_attempt(attempts_so_far: usize) -> u32 {
    u32::try_from(attempts_so_far).unwrap_or(u32::MAX - 1) + 1
}

fn active_activity<'a>(
    ctx: &Ctx<'a>,
    activity_id: ActivityId,
) -> Result<&'a Activity, DomainError> {
    let activity = ctx
        .portfolio
        .activity(activity_id)
        .ok_or(DomainError::ActivityUnknown)?;
    if activity.withdrawn {
        return Err(DomainError::ActivityWithdrawn);
    }
    Ok(activity)
}

#[cfg(test)]
mod tests;
