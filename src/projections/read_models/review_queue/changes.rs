//! What a batch does to `rm_review_queue`, kept in memory and written with two statements.

use super::super::batch::json_rows;
use super::super::{ReadError, serde_name};
use super::{QueueItemKind, Waiting};
use crate::domain::{ActivityId, PortfolioId, ProgramId};
use crate::store::RecordedEvent;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

/// The items a batch settled and the items it added, in the order the batch's events did it.
///
/// Written as "delete what was settled, then insert what was added": an item added and settled
/// within the batch is dropped from `added` when it is settled, so only items settled that were
/// already stored are deleted, and an item added after a settle of the same key survives, as it did
/// when every event was its own statement.
#[derive(Debug, Default)]
pub(super) struct Changes {
    settled: Vec<Item>,
    added: Vec<Row>,
}

/// The key of a waiting item (the table's unique key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
struct Item {
    portfolio_id: PortfolioId,
    item_kind: &'static str,
    activity_id: Option<ActivityId>,
}

/// A row of `rm_review_queue` under its column names.
#[derive(Debug, Serialize)]
struct Row {
    position: i64,
    program_id: ProgramId,
    #[serde(flatten)]
    item: Item,
    attempt: i32,
    item_name: Option<String>,
    format: Option<String>,
    word_count: Option<i32>,
    duration_s: Option<i32>,
    duration_measured: Option<bool>,
    link_count: Option<i32>,
    submitted_at: DateTime<Utc>,
    recording: Option<String>,
}

fn int(n: Option<u32>) -> Option<i32> {
    n.map(|n| i32::try_from(n).unwrap_or(i32::MAX))
}

impl Changes {
    /// `w`, waiting since `event`.
    pub(super) fn insert(
        &mut self,
        event: &RecordedEvent,
        program_id: ProgramId,
        portfolio_id: PortfolioId,
        w: &Waiting<'_>,
    ) -> Result<(), ReadError> {
        self.added.push(Row {
            position: event.position(),
            program_id,
            item: Item {
                portfolio_id,
                item_kind: w.kind.as_str(),
                activity_id: w.activity_id,
            },
            attempt: int(Some(w.attempt)).unwrap_or(i32::MAX),
            item_name: w.item_name.map(str::to_owned),
            format: w.format.clone(),
            word_count: int(w.word_count),
            duration_s: int(w.duration_s),
            duration_measured: w.duration_measured,
            link_count: int(w.link_count),
            submitted_at: event.recorded_at,
            recording: w.recording.map(serde_name),
        });
        Ok(())
    }

    /// Removes the item the event settled (reviewed, decided or withdrawn). Settling something
    /// that is not waiting (an activity withdrawn before any reflection) removes nothing, which is
    /// right.
    pub(super) fn settle(
        &mut self,
        portfolio_id: PortfolioId,
        kind: QueueItemKind,
        activity_id: Option<ActivityId>,
    ) -> Result<(), ReadError> {
        let item = Item {
            portfolio_id,
            item_kind: kind.as_str(),
            activity_id,
        };
        self.added.retain(|row| row.item != item);
        self.settled.push(item);
        Ok(())
    }

    /// Writes the batch's changes: at most one DELETE and one INSERT.
    pub(super) async fn write(self, conn: &mut PgConnection) -> Result<(), ReadError> {
        if !self.settled.is_empty() {
            // The key as the unique index spells it, so the index finds each item.
            sqlx::query!(
                "DELETE FROM rm_review_queue q
                 USING jsonb_to_recordset($1::text::jsonb)
                       AS s(portfolio_id UUID, item_kind TEXT, activity_id UUID)
                 WHERE q.portfolio_id = s.portfolio_id AND q.item_kind = s.item_kind
                   AND COALESCE(q.activity_id, '00000000-0000-0000-0000-000000000000'::uuid)
                     = COALESCE(s.activity_id, '00000000-0000-0000-0000-000000000000'::uuid)",
                json_rows(&self.settled)?,
            )
            .execute(&mut *conn)
            .await?;
        }
        if !self.added.is_empty() {
            sqlx::query!(
                "INSERT INTO rm_review_queue
                     (position, program_id, portfolio_id, item_kind, activity_id, attempt,
                      item_name, format, word_count, duration_s, duration_measured, link_count,
                      submitted_at, recording)
                 SELECT position, program_id, portfolio_id, item_kind, activity_id, attempt,
                        item_name, format, word_count, duration_s, duration_measured, link_count,
                        submitted_at, recording
                 FROM jsonb_to_recordset($1::text::jsonb) AS r(
                     position BIGINT, program_id UUID, portfolio_id UUID, item_kind TEXT,
                     activity_id UUID, attempt INTEGER, item_name TEXT, format TEXT,
                     word_count INTEGER, duration_s INTEGER, duration_measured BOOLEAN,
                     link_count INTEGER, submitted_at TIMESTAMPTZ, recording TEXT)",
                json_rows(&self.added)?,
            )
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}
