//! The operators' health watch: every few minutes, whether a part of the service is stuck (a
//! projection that has events to apply and has not moved for a while, the export worker without
//! a successful run for too long, messages the outbox gave up on). Each stuck spell is announced
//! once, keyed by the part and the moment it got stuck; a part that recovers and gets stuck again
//! is announced again.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgPool;

use super::kind::{Decision, MessageKind, Recipient};
use super::schedule::{DailyOutcome, store_once};

/// How long is too long.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    /// A projection with events to apply that has not moved for this long is stuck.
    pub projection_stall: Duration,
    /// The export worker without a successful run for this long is stuck (the nightly run plus
    /// a margin).
    pub export_silence: Duration,
}

impl Default for WatchSettings {
    fn default() -> Self {
        Self {
            projection_stall: Duration::from_secs(10 * 60),
            export_silence: Duration::from_secs(26 * 3600),
        }
    }
}

/// A part found stuck.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stuck {
    /// e.g. `projection audit`, `export worker`, `outbox`.
    pub part: String,
    /// A sentence for the operators, without personal data.
    pub detail: String,
    pub since: DateTime<Utc>,
}

/// One message per stuck spell.
pub fn decide(stuck: &[Stuck]) -> Vec<Decision> {
    stuck
        .iter()
        .map(|s| {
            Decision::scheduled(
                &format!("stuck:{}:{}", s.part, s.since.timestamp()),
                MessageKind::ServiceStuck,
                Recipient::Operations,
                json!({ "part": s.part, "detail": s.detail, "since": s.since.to_rfc3339() }),
            )
        })
        .collect()
}

/// Looks, decides and stores.
pub async fn run(
    pool: &PgPool,
    settings: &WatchSettings,
    now: DateTime<Utc>,
) -> Result<DailyOutcome, sqlx::Error> {
    let stuck = observe(pool, settings, now).await?;
    let period = now.format("%Y-%m-%dT%H:%M").to_string();
    store_once(pool, "notify_watch", &period, &decide(&stuck)).await
}

/// What is stuck now.
pub async fn observe(
    pool: &PgPool,
    settings: &WatchSettings,
    now: DateTime<Utc>,
) -> Result<Vec<Stuck>, sqlx::Error> {
    let mut stuck = Vec::new();
    let stall = chrono::Duration::from_std(settings.projection_stall).unwrap_or_default();
    // A projection with an event after its checkpoint that has not moved since long before.
    let projections = sqlx::query!(
        r#"SELECT c.name, c.updated_at FROM projection_checkpoints c
           WHERE c.updated_at < $1
             AND EXISTS (SELECT 1 FROM events e
                         WHERE (e.transaction_id, e.position) >
                               (c.transaction_id::text::xid8, c.position)
                           AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot()))"#,
        now - stall,
    )
    .fetch_all(pool)
    .await?;
    for p in projections {
        stuck.push(Stuck {
            part: format!("projection {}", p.name),
            detail: "events wait and the projection has not moved".into(),
            since: p.updated_at,
        });
    }
    let failed = sqlx::query!(
        r#"SELECT min(created_at) AS since, count(*) AS "count!" FROM outbox WHERE state = 'failed'"#
    )
    .fetch_one(pool)
    .await?;
    if let (Some(since), true) = (failed.since, failed.count > 0) {
        stuck.push(Stuck {
            part: "outbox".into(),
            detail: format!("{} messages could not be sent", failed.count),
            since,
        });
    }
    Ok(stuck)
}
