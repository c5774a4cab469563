//! The coordinators' daily digest: per program they are assigned to, how many items wait for
//! review and how long the oldest has waited, how many students are near their deadline without a
//! final reflection, and how many have been quiet. Counts only: the names are in the console,
//! behind the coordinator's own sign-in, not in a mailbox. Nothing waits: no digest.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;
use sqlx::PgPool;

use super::kind::{Decision, MessageKind, Recipient};
use super::reminders::ReminderSettings;
use crate::domain::stockholm_date;

/// What one program's coordinators are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramDigest {
    pub code: String,
    pub waiting: i64,
    pub oldest_days: i64,
    pub at_risk: i64,
    pub inactive: i64,
}

/// The digests due on `today` for every coordinator who wants one.
pub async fn decide(
    pool: &PgPool,
    settings: &ReminderSettings,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Vec<Decision>, sqlx::Error> {
    let programs = program_digests(pool, settings, today, now).await?;
    // The current assignments: the last assignment event per (program, staff) decides.
    let assignments = sqlx::query!(
        r#"SELECT last.staff AS "staff!", last.stream_id AS "stream_id!"
           FROM (SELECT DISTINCT ON (stream_id, payload->>'staff')
                        stream_id, payload->>'staff' AS staff, event_type
                 FROM events
                 WHERE event_type IN ('CoordinatorAssigned', 'CoordinatorUnassigned')
                 ORDER BY stream_id, payload->>'staff', version DESC) last
           LEFT JOIN notification_preferences pref ON pref.subject = last.staff
           WHERE last.event_type = 'CoordinatorAssigned' AND COALESCE(pref.digests, true)"#
    )
    .fetch_all(pool)
    .await?;
    let mut per_staff: BTreeMap<String, Vec<&ProgramDigest>> = BTreeMap::new();
    for row in &assignments {
        let program = row.stream_id.strip_prefix("program-").unwrap_or_default();
        if let Some(digest) = programs.get(program) {
            per_staff.entry(row.staff.clone()).or_default().push(digest);
        }
    }
    Ok(per_staff
        .into_iter()
        .filter_map(|(staff, mut digests)| {
            digests.retain(|d| d.waiting > 0 || d.at_risk > 0);
            if digests.is_empty() {
                return None;
            }
            digests.sort_by(|a, b| a.code.cmp(&b.code));
            let programs: Vec<_> = digests
                .iter()
                .map(|d| {
                    json!({ "code": d.code, "waiting": d.waiting, "oldest_days": d.oldest_days,
                            "at_risk": d.at_risk, "inactive": d.inactive })
                })
                .collect();
            Some(Decision::scheduled(
                &format!("digest:{today}"),
                MessageKind::CoordinatorDigest,
                Recipient::Staff(staff),
                json!({ "date": today, "programs": programs }),
            ))
        })
        .collect())
}

/// Each program's counts, by program id.
async fn program_digests(
    pool: &PgPool,
    settings: &ReminderSettings,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<BTreeMap<String, ProgramDigest>, sqlx::Error> {
    let mut out: BTreeMap<String, ProgramDigest> = BTreeMap::new();
    let registered = sqlx::query!(
        r#"SELECT stream_id, payload->>'code' AS "code!" FROM events
           WHERE event_type = 'ProgramRegistered'"#
    )
    .fetch_all(pool)
    .await?;
    for row in registered {
        let id = row.stream_id.trim_start_matches("program-").to_owned();
        out.insert(
            id,
            ProgramDigest {
                code: row.code,
                waiting: 0,
                oldest_days: 0,
                at_risk: 0,
                inactive: 0,
            },
        );
    }
    let queue = sqlx::query!(
        r#"SELECT program_id, count(*) AS "waiting!", min(submitted_at) AS "oldest!"
           FROM rm_review_queue GROUP BY program_id"#
    )
    .fetch_all(pool)
    .await?;
    for row in queue {
        if let Some(d) = out.get_mut(&row.program_id.to_string()) {
            d.waiting = row.waiting;
            d.oldest_days = (now - row.oldest).num_days().max(0);
        }
    }
    let collecting = sqlx::query!(
        "SELECT program_id, deadline, deadline_binding, updated_at FROM rm_portfolios
         WHERE phase = 'collecting'"
    )
    .fetch_all(pool)
    .await?;
    for row in collecting {
        let Some(d) = out.get_mut(&row.program_id.to_string()) else {
            continue;
        };
        let rule = settings.rule(Some(&d.code));
        let days_left = (row.deadline - today).num_days();
        if row.deadline_binding && (0..=i64::from(rule.at_risk_days)).contains(&days_left) {
            d.at_risk += 1;
        }
        // Quiet as the reminders count it (`reminders::decide`): only while the final reflection is
        // still to come and its deadline has not passed.
        let quiet = (today - stockholm_date(row.updated_at)).num_days();
        if row.deadline_binding
            && days_left >= 0
            && rule.inactive_days > 0
            && quiet >= i64::from(rule.inactive_days)
        {
            d.inactive += 1;
        }
    }
    Ok(out)
}
