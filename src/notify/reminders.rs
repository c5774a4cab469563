//! The reminders the daily schedule decides for students: the final reflection due in N weeks
//! (by default 6 and 2 weeks before the deadline), and nothing done for N days (by default 30)
//! while the final reflection is still to come.
//! Configurable per program (`CIM_REMINDERS_FILE`, `docs/notifications.md`).
//!
//! Each reminder is keyed by what it is about (the deadline and the milestone, or the day the quiet
//! spell began), so it fires on its day, not twice, and once more only when that changes (an
//! extension moves the deadline; the student acts and falls quiet again). A day the service did not
//! run is caught up the next day with the most urgent milestone reached, not with every one missed.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::kind::{Decision, MessageKind, Recipient};
use crate::domain::{PortfolioId, stockholm_date};

/// One program's reminder settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReminderRule {
    /// Weeks before the final reflection's deadline at which the student is reminded.
    #[serde(default = "default_weeks")]
    pub final_reflection_weeks: Vec<u32>,
    /// Days without anything happening in the portfolio after which the student is reminded; 0
    /// turns the reminder off.
    #[serde(default = "default_inactive_days")]
    pub inactive_days: u32,
    /// The coordinators' digest counts a student as at risk this many days before the deadline.
    #[serde(default = "default_at_risk_days")]
    pub at_risk_days: u32,
}

fn default_weeks() -> Vec<u32> {
    vec![6, 2]
}

fn default_inactive_days() -> u32 {
    30
}

fn default_at_risk_days() -> u32 {
    28
}

impl Default for ReminderRule {
    fn default() -> Self {
        Self {
            final_reflection_weeks: default_weeks(),
            inactive_days: default_inactive_days(),
            at_risk_days: default_at_risk_days(),
        }
    }
}

/// The default rule and each program's own, by program code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReminderSettings {
    #[serde(default)]
    pub default: ReminderRule,
    #[serde(default)]
    pub programs: BTreeMap<String, ReminderRule>,
}

impl ReminderSettings {
    pub fn rule(&self, program_code: Option<&str>) -> &ReminderRule {
        program_code
            .and_then(|code| self.programs.get(code))
            .unwrap_or(&self.default)
    }
}

/// A portfolio still collecting, as the read model has it.
#[derive(Debug, Clone)]
pub struct Collecting {
    pub portfolio: Uuid,
    pub program_code: Option<String>,
    /// The final reflection's last day, after extensions.
    pub deadline: NaiveDate,
    /// No final reflection submitted yet.
    pub deadline_binding: bool,
    /// When something last happened in the portfolio.
    pub last_change: DateTime<Utc>,
}

/// The reminders due on `today` (a Stockholm date) for one portfolio.
pub fn decide(p: &Collecting, rule: &ReminderRule, today: NaiveDate) -> Vec<Decision> {
    let mut out = Vec::new();
    let recipient = Recipient::Student(PortfolioId::new(p.portfolio));
    let days_left = (p.deadline - today).num_days();
    if p.deadline_binding && days_left >= 0 {
        // The most urgent milestone reached: on the day of the 2-week one, that one, not the 6.
        let reached = rule
            .final_reflection_weeks
            .iter()
            .filter(|w| days_left <= i64::from(**w) * 7)
            .min();
        if let Some(weeks) = reached {
            out.push(Decision::scheduled(
                &format!("final_due:{}:{}:{weeks}", p.portfolio, p.deadline),
                MessageKind::FinalReflectionDue,
                recipient.clone(),
                json!({
                    "portfolio_id": p.portfolio.to_string(),
                    "deadline": p.deadline,
                    "weeks": (days_left + 6) / 7,
                }),
            ));
        }
    }
    let quiet_since = stockholm_date(p.last_change);
    let quiet_days = (today - quiet_since).num_days();
    // Only while the student still has their part to do: a quiet portfolio whose final reflection
    // waits for the coordinator is not the student's to move.
    if p.deadline_binding
        && rule.inactive_days > 0
        && quiet_days >= i64::from(rule.inactive_days)
        && days_left >= 0
    {
        out.push(Decision::scheduled(
            &format!("inactive:{}:{quiet_since}", p.portfolio),
            MessageKind::Inactive,
            recipient,
            json!({
                "portfolio_id": p.portfolio.to_string(),
                "days": quiet_days,
                "deadline": p.deadline,
            }),
        ));
    }
    out
}

/// Every portfolio still collecting, with its program's code (from the program stream's first
/// event, which registers it).
pub async fn collecting(pool: &PgPool) -> Result<Vec<Collecting>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT p.portfolio_id, p.deadline, p.deadline_binding, p.updated_at,
                  program.payload->>'code' AS code
           FROM rm_portfolios p
           LEFT JOIN events program
             ON program.stream_id = 'program-' || p.program_id::text AND program.version = 1
           WHERE p.phase = 'collecting'"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Collecting {
            portfolio: r.portfolio_id,
            program_code: r.code,
            deadline: r.deadline,
            deadline_binding: r.deadline_binding,
            last_change: r.updated_at,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn portfolio(deadline: &str, last_change: &str) -> Collecting {
        Collecting {
            portfolio: Uuid::nil(),
            program_code: None,
            deadline: deadline.parse().unwrap(),
            deadline_binding: true,
            last_change: last_change.parse().unwrap(),
        }
    }

    fn kinds_on(p: &Collecting, today: &str) -> Vec<String> {
        decide(p, &ReminderRule::default(), today.parse().unwrap())
            .into_iter()
            .map(|d| d.dedup_key)
            .collect()
    }

    #[test]
    fn the_final_reflection_reminders_fire_from_their_day_with_one_key_each() {
        let p = portfolio("2027-03-01", "2027-01-10T10:00:00Z");
        // 43 days before: nothing; 42 (6 weeks): the 6-week one, the same key the day after.
        assert!(kinds_on(&p, "2027-01-17").is_empty());
        let six = kinds_on(&p, "2027-01-18");
        assert_eq!(six.len(), 1);
        assert!(six[0].contains(":6:"), "{six:?}");
        assert_eq!(kinds_on(&p, "2027-01-19"), six);
        // 14 days before: the 2-week one, a new key.
        let two = kinds_on(&p, "2027-02-15");
        assert!(two[0].contains(":2:"), "{two:?}");
        // After the deadline, or once the final reflection is in: nothing.
        assert!(kinds_on(&p, "2027-03-02").is_empty());
        let handed_in = Collecting {
            deadline_binding: false,
            ..p
        };
        assert!(kinds_on(&handed_in, "2027-02-15").is_empty());
    }

    #[test]
    fn a_quiet_portfolio_is_reminded_once_per_quiet_spell() {
        let p = portfolio("2027-12-01", "2027-01-01T10:00:00Z");
        assert!(kinds_on(&p, "2027-01-30").is_empty());
        let first = kinds_on(&p, "2027-01-31");
        assert_eq!(first.len(), 1);
        assert_eq!(kinds_on(&p, "2027-02-20"), first);
        let active_again = portfolio("2027-12-01", "2027-02-21T10:00:00Z");
        assert_ne!(kinds_on(&active_again, "2027-03-23"), first);
    }

    #[test]
    fn settings_read_per_program_with_a_default() {
        let settings: ReminderSettings = serde_json::from_str(
            r#"{"programs": {"BIOMED": {"final_reflection_weeks": [8], "inactive_days": 0}}}"#,
        )
        .unwrap();
        assert_eq!(
            settings.rule(Some("BIOMED")).final_reflection_weeks,
            vec![8]
        );
        assert_eq!(settings.rule(Some("OTHER")), &ReminderRule::default());
        assert!(serde_json::from_str::<ReminderSettings>(r#"{"bogus": 1}"#).is_err());
    }
}
