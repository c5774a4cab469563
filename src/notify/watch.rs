//! The operators' health watch: every five minutes, the parts that are behind by the same reading
//! and thresholds `/readyz` and the example alert rules use (`ops`): read models lagging, the
//! export worker without a success for 26 hours or failing, certificates waiting for Ladok for
//! days, the outbox backed up or giving up on messages. One message per part and Stockholm day
//! while the concern lasts: a part that stays stuck is announced again the next morning, not every
//! five minutes.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgPool;

use super::kind::{Decision, MessageKind, Recipient};
use super::schedule::{DailyOutcome, store_once};
use crate::domain::stockholm_date;
use crate::ops::{self, Concern, Thresholds};

/// One message per concern, keyed by its part and the day.
pub fn decide(concerns: &[Concern], now: DateTime<Utc>) -> Vec<Decision> {
    let day = stockholm_date(now);
    concerns
        .iter()
        .map(|c| {
            let part = c.part.as_str();
            Decision::scheduled(
                &format!("stuck:{part}:{day}"),
                MessageKind::ServiceStuck,
                Recipient::Operations,
                json!({ "part": part, "detail": c.message, "since": now.to_rfc3339() }),
            )
        })
        .collect()
}

/// Reads the health of every part, decides and stores.
pub async fn run(
    pool: &PgPool,
    thresholds: &Thresholds,
    now: DateTime<Utc>,
) -> Result<DailyOutcome, sqlx::Error> {
    let concerns = ops::snapshot(pool).await?.concerns(thresholds);
    let period = now.format("%Y-%m-%dT%H:%M").to_string();
    store_once(pool, "notify_watch", &period, &decide(&concerns, now)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Part;

    #[test]
    fn a_concern_is_announced_once_a_day() {
        let concern = Concern {
            part: Part::ExportWorker,
            message: "last success 27 h ago".into(),
        };
        let morning: DateTime<Utc> = "2026-12-07T06:00:00Z".parse().unwrap();
        let noon: DateTime<Utc> = "2026-12-07T11:00:00Z".parse().unwrap();
        let tomorrow: DateTime<Utc> = "2026-12-08T06:00:00Z".parse().unwrap();
        let key = |at| {
            decide(std::slice::from_ref(&concern), at)[0]
                .dedup_key
                .clone()
        };
        assert_eq!(key(morning), key(noon));
        assert_ne!(key(morning), key(tomorrow));
        assert_eq!(
            decide(std::slice::from_ref(&concern), noon)[0].recipient,
            Recipient::Operations
        );
    }
}
