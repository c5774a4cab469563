//! Which readings of a [`HealthSnapshot`] mean that a part is behind, and the sentence that says
//! so: what `/readyz` shows per part and what the health watch sends to the admins. The same
//! thresholds as the example alert rules (`docs/prometheus/alerts.yml`), so a person sees the same
//! verdict wherever they look.
//!
//! None of these makes a process unready: they describe the service's work, not whether this
//! process can answer requests (`docs/operations.md`, "Health and metrics").

use serde::Serialize;
use std::fmt::Write;
use std::time::Duration;

use super::health::HealthSnapshot;

/// When a reading counts as behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thresholds {
    /// A projection whose oldest unapplied event is older than this (and that is not rebuilding).
    pub projection_lag: Duration,
    /// The export's last success is older than this: the nightly run was missed (24 h and slack).
    pub export_success_age: Duration,
    /// This many failed export runs in a row.
    pub export_failures: i64,
    /// An approved certificate has waited this long for Ladok.
    pub ladok_wait: Duration,
    /// The oldest pending message of the outbox is older than this.
    pub outbox_pending_age: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        const HOUR: u64 = 3600;
        Self {
            projection_lag: Duration::from_secs(60),
            export_success_age: Duration::from_secs(26 * HOUR),
            export_failures: 2,
            ladok_wait: Duration::from_secs(3 * 24 * HOUR),
            outbox_pending_age: Duration::from_secs(30 * 60),
        }
    }
}

/// A moving part of the service, as `/readyz` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// The read models keeping up with the log.
    ProjectionLag,
    /// The export worker's runs.
    ExportWorker,
    /// Certificates reaching Ladok.
    Ladok,
    /// The notifications' outbox.
    Outbox,
}

impl Part {
    /// Every part, in the order `/readyz` lists them.
    pub const ALL: [Part; 4] = [
        Part::ProjectionLag,
        Part::ExportWorker,
        Part::Ladok,
        Part::Outbox,
    ];

    /// The key `/readyz` shows it under.
    pub fn as_str(self) -> &'static str {
        match self {
            Part::ProjectionLag => "projection_lag",
            Part::ExportWorker => "export_worker",
            Part::Ladok => "ladok",
            Part::Outbox => "outbox",
        }
    }
}

/// A part that is behind, and a sentence for people that says how (no personal data: names of
/// read models, counts, ages and error codes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Concern {
    pub part: Part,
    pub message: String,
}

impl HealthSnapshot {
    /// The parts that are behind by `thresholds`, at most one concern per part, in [`Part::ALL`]
    /// order. Empty when all is well.
    pub fn concerns(&self, thresholds: &Thresholds) -> Vec<Concern> {
        [
            (Part::ProjectionLag, self.projection_concern(thresholds)),
            (Part::ExportWorker, self.export_concern(thresholds)),
            (Part::Ladok, self.ladok_concern(thresholds)),
            (Part::Outbox, self.outbox_concern(thresholds)),
        ]
        .into_iter()
        .filter_map(|(part, message)| message.map(|message| Concern { part, message }))
        .collect()
    }

    fn projection_concern(&self, t: &Thresholds) -> Option<String> {
        let behind: Vec<String> = self
            .projections
            .iter()
            .filter(|p| !p.rebuilding)
            .filter_map(|p| {
                let age = p
                    .oldest_unapplied_age
                    .filter(|age| *age > t.projection_lag)?;
                Some(format!(
                    "{} is {} events behind, the oldest recorded {} ago",
                    p.name,
                    p.behind,
                    human(age)
                ))
            })
            .collect();
        (!behind.is_empty()).then(|| behind.join("; "))
    }

    fn export_concern(&self, t: &Thresholds) -> Option<String> {
        let e = &self.export;
        let mut message = String::new();
        match e.last_success_at {
            Some(at) => {
                let since = (self.taken_at - at).to_std().unwrap_or_default();
                if since > t.export_success_age {
                    let _ = write!(message, "last success {} ago", human(since));
                }
            }
            // No run recorded at all is not a concern: a new installation before its first night
            // (the certificates waiting for Ladok show an export that never runs).
            None if e.consecutive_failures > 0 => message.push_str("never succeeded"),
            None => {}
        }
        if e.consecutive_failures >= t.export_failures {
            if !message.is_empty() {
                message.push_str("; ");
            }
            let _ = write!(
                message,
                "{} failed runs in a row (last: {})",
                e.consecutive_failures,
                e.last_error_code.as_deref().unwrap_or("unknown")
            );
        }
        (!message.is_empty()).then_some(message)
    }

    fn ladok_concern(&self, t: &Thresholds) -> Option<String> {
        let l = self.ladok.as_ref()?;
        let oldest = l.oldest_age.filter(|age| *age > t.ladok_wait)?;
        Some(format!(
            "{} certificates waiting ({} not tried yet, {} retrying, {} refused by a rule), the oldest approved {} ago",
            l.waiting(),
            l.pending,
            l.retrying,
            l.failed,
            human(oldest)
        ))
    }

    fn outbox_concern(&self, t: &Thresholds) -> Option<String> {
        let o = &self.outbox;
        let mut parts = Vec::new();
        if let Some(age) = o
            .oldest_pending_age
            .filter(|age| *age > t.outbox_pending_age)
        {
            parts.push(format!(
                "{} messages pending ({} retrying), the oldest for {}",
                o.pending,
                o.retrying,
                human(age)
            ));
        }
        if o.failed_last_day > 0 {
            parts.push(format!(
                "{} messages failed in the last day",
                o.failed_last_day
            ));
        }
        if let Some(age) = o
            .consumer_oldest_undecided_age
            .filter(|age| *age > t.projection_lag)
        {
            parts.push(format!(
                "{} events not yet decided, the oldest recorded {} ago",
                o.consumer_behind,
                human(age)
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// A duration as people say it: "45 s", "12 min", "27 h", "4 days" (rounded down).
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..120 => format!("{s} s"),
        120..7200 => format!("{} min", s / 60),
        7200..172_800 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::health::{
        ExportHealth, ExportRunTotals, LadokBacklog, OutboxHealth, ProjectionHealth,
    };
    use chrono::{TimeDelta, Utc};

    fn healthy() -> HealthSnapshot {
        let now = Utc::now();
        HealthSnapshot {
            taken_at: now,
            projections: vec![ProjectionHealth {
                name: "registrar".to_owned(),
                position: 10,
                behind: 0,
                oldest_unapplied_age: None,
                rebuilding: false,
            }],
            export: ExportHealth {
                last_success_at: Some(now - TimeDelta::hours(3)),
                last_run_at: Some(now - TimeDelta::hours(3)),
                last_error_code: None,
                consecutive_failures: 0,
                runs: ExportRunTotals {
                    succeeded: 1,
                    failed: 0,
                    busy: 0,
                },
            },
            ladok: Some(LadokBacklog {
                pending: 1,
                retrying: 0,
                failed: 0,
                oldest_age: Some(Duration::from_secs(3600)),
            }),
            outbox: OutboxHealth {
                pending: 1,
                sent: 5,
                failed: 0,
                cancelled: 0,
                retrying: 0,
                oldest_pending_age: Some(Duration::from_secs(5)),
                failed_last_day: 0,
                consumer_behind: 0,
                consumer_oldest_undecided_age: None,
            },
        }
    }

    #[test]
    fn a_healthy_snapshot_has_no_concern_and_each_part_behind_names_itself() {
        let t = Thresholds::default();
        assert_eq!(healthy().concerns(&t), vec![]);

        let mut s = healthy();
        s.projections[0].behind = 7;
        s.projections[0].oldest_unapplied_age = Some(Duration::from_secs(300));
        s.export.last_success_at = Some(s.taken_at - TimeDelta::hours(27));
        s.export.consecutive_failures = 2;
        s.export.last_error_code = Some("database".to_owned());
        s.ladok.as_mut().unwrap().oldest_age = Some(Duration::from_secs(9 * 86_400));
        s.outbox.failed = 2;
        s.outbox.failed_last_day = 1;
        s.outbox.consumer_behind = 3;
        s.outbox.consumer_oldest_undecided_age = Some(Duration::from_secs(600));
        let concerns = s.concerns(&t);
        let messages: Vec<(Part, &str)> = concerns
            .iter()
            .map(|c| (c.part, c.message.as_str()))
            .collect();
        assert_eq!(
            messages,
            vec![
                (
                    Part::ProjectionLag,
                    "registrar is 7 events behind, the oldest recorded 5 min ago"
                ),
                (
                    Part::ExportWorker,
                    "last success 27 h ago; 2 failed runs in a row (last: database)"
                ),
                (
                    Part::Ladok,
                    "1 certificates waiting (1 not tried yet, 0 retrying, 0 refused by a rule), the oldest approved 9 days ago"
                ),
                (
                    Part::Outbox,
                    "1 messages failed in the last day; 3 events not yet decided, the oldest recorded 10 min ago"
                ),
            ]
        );
    }

    #[test]
    fn a_rebuild_and_a_new_installation_are_not_concerns() {
        let mut s = healthy();
        s.projections[0].rebuilding = true;
        s.projections[0].oldest_unapplied_age = Some(Duration::from_secs(3600));
        s.export.last_success_at = None;
        s.export.last_run_at = None;
        assert_eq!(s.concerns(&Thresholds::default()), vec![]);
        s.export.consecutive_failures = 1;
        assert_eq!(
            s.concerns(&Thresholds::default())[0].message,
            "never succeeded"
        );
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human(Duration::from_secs(45)), "45 s");
        assert_eq!(human(Duration::from_secs(12 * 60)), "12 min");
        assert_eq!(human(Duration::from_secs(27 * 3600)), "27 h");
        assert_eq!(human(Duration::from_secs(4 * 86_400 + 5)), "4 days");
    }
}
