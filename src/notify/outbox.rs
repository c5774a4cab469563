//! The `outbox` table (`migrations/20261208000001_notifications.sql`): decided messages are
//! inserted once by their key, claimed by a sender under a lease, and marked sent, retried or
//! given up. Every statement here is one round trip; none reads or writes personal data.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::kind::Decision;

/// The namespace of Message-IDs: the id of a message is derived from its key, so every attempt to
/// send it carries the same one.
const MESSAGE_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6a1c_2f0e_5b7d_4c1a_9e3f_0d2b_8c4e_7a10);

/// Stores the decisions not stored before; returns how many were new.
pub async fn insert(
    conn: &mut PgConnection,
    decisions: &[Decision],
    source_position: Option<i64>,
) -> Result<u64, sqlx::Error> {
    let mut inserted = 0;
    for d in decisions {
        let (recipient_kind, recipient) = d.recipient.columns();
        let message_id = Uuid::new_v5(&MESSAGE_ID_NAMESPACE, d.dedup_key.as_bytes()).to_string();
        // The key decides: a decision made again (a replay, a second instance, a schedule that
        // fires twice) inserts nothing.
        inserted += sqlx::query!(
            "INSERT INTO outbox (dedup_key, kind, recipient_kind, recipient, params, source_position, message_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (dedup_key) DO NOTHING",
            d.dedup_key,
            d.kind.as_str(),
            recipient_kind,
            recipient,
            d.params,
            source_position,
            message_id,
        )
        .execute(&mut *conn)
        .await?
        .rows_affected();
    }
    Ok(inserted)
}

/// A message claimed for sending.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub kind: String,
    pub recipient_kind: String,
    pub recipient: String,
    pub params: Value,
    /// This attempt's number (1 for the first).
    pub attempts: i32,
    /// The claim this sender holds the row under: the guard of the confirmation and the record.
    pub claim: Uuid,
    pub message_id: String,
}

/// Claims up to `limit` due messages under one new claim: each is leased for `lease_secs` (no
/// other sender takes it meanwhile; if this one dies, the lease runs out and another sends it).
pub async fn claim_due(
    pool: &PgPool,
    limit: i64,
    lease_secs: f64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    sqlx::query_as!(
        Claimed,
        r#"UPDATE outbox SET attempts = attempts + 1, claim = $3,
                next_attempt_at = now() + make_interval(secs => $2)
         WHERE id IN (
             SELECT id FROM outbox
             WHERE state = 'pending' AND next_attempt_at <= now()
             ORDER BY next_attempt_at, id
             LIMIT $1
             FOR UPDATE SKIP LOCKED)
         RETURNING id, kind, recipient_kind, recipient, params, attempts, message_id,
                   claim AS "claim!""#,
        limit,
        lease_secs,
        Uuid::new_v4(),
    )
    .fetch_all(pool)
    .await
}

/// Just before sending: whether the claim still holds, extending its lease by `lease_secs` if so.
/// A message that waited in a sender's batch past its lease may have been claimed by another
/// sender since; then this one must not send it.
pub async fn confirm(
    pool: &PgPool,
    claimed: &Claimed,
    lease_secs: f64,
) -> Result<bool, sqlx::Error> {
    let held = sqlx::query!(
        "UPDATE outbox SET next_attempt_at = now() + make_interval(secs => $3)
         WHERE id = $1 AND claim = $2 AND state = 'pending'",
        claimed.id,
        claimed.claim,
        lease_secs,
    )
    .execute(pool)
    .await?
    .rows_affected();
    Ok(held == 1)
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Sent,
    /// Try again after `delay_secs`, with this reason (a code, nothing personal).
    Retry {
        delay_secs: f64,
        error: String,
    },
    /// Give up: the SMTP server refused for good, or the last retry failed.
    Failed {
        error: String,
    },
    /// Nobody to send to: the recipient was erased, or has no address.
    Cancelled {
        reason: String,
    },
}

/// Records the outcome of the attempt `claimed` made. Guarded by the claim: a sender whose lease
/// ran out and whose message another sender took over records nothing.
pub async fn record(
    pool: &PgPool,
    claimed: &Claimed,
    outcome: &Outcome,
) -> Result<bool, sqlx::Error> {
    let (state, delay, error): (&str, f64, Option<&str>) = match outcome {
        Outcome::Sent => ("sent", 0.0, None),
        Outcome::Retry { delay_secs, error } => ("pending", *delay_secs, Some(error)),
        Outcome::Failed { error } => ("failed", 0.0, Some(error)),
        Outcome::Cancelled { reason } => ("cancelled", 0.0, Some(reason)),
    };
    let done = sqlx::query!(
        "UPDATE outbox SET state = $3, last_error = $4,
                next_attempt_at = now() + make_interval(secs => $5),
                sent_at = CASE WHEN $3 = 'sent' THEN now() END
         WHERE id = $1 AND claim = $2 AND state = 'pending'",
        claimed.id,
        claimed.claim,
        state,
        error,
        delay,
    )
    .execute(pool)
    .await?
    .rows_affected();
    Ok(done == 1)
}

/// One message as the admins see it: what, to whom (a portfolio id or staff subject, never an
/// address), and where it stands.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OutboxEntry {
    pub id: i64,
    pub kind: String,
    pub recipient_kind: String,
    pub recipient: String,
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// The newest messages in `state` (all states when `None`), newest first.
pub async fn list(
    pool: &PgPool,
    state: Option<&str>,
    limit: i64,
) -> Result<Vec<OutboxEntry>, sqlx::Error> {
    sqlx::query_as!(
        OutboxEntry,
        "SELECT id, kind, recipient_kind, recipient, state, attempts, last_error, created_at,
                next_attempt_at, sent_at
         FROM outbox WHERE ($1::text IS NULL OR state = $1)
         ORDER BY id DESC LIMIT $2",
        state,
        limit,
    )
    .fetch_all(pool)
    .await
}

/// An admin sends a failed message again: it becomes due now, with its attempts counted anew.
pub async fn retry_failed(pool: &PgPool, id: i64) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query!(
        "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = now(),
                last_error = NULL, claim = NULL
         WHERE id = $1 AND state = 'failed'",
        id,
    )
    .execute(pool)
    .await?
    .rows_affected()
        == 1)
}
