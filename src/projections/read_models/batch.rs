//! What the read models share to apply a batch of events in memory and write it once.
//!
//! A projection used to spend two or three round trips per event (the program's rules as the log
//! stood, the row's upsert), inside the batch transaction: `cim-bench` rebuilt the slowest read
//! model at about 1,300 events/s while a plain scan read 80,000-150,000. Now a read model folds the
//! whole batch in memory, keeps the last row per key in [`Pending`], and writes each table with one
//! multi-row statement at the end of the batch (rows sent as one JSON array and unpacked with
//! `jsonb_to_recordset`, which handles NULLs and every column type without a bound array per
//! column). The rules of a program are asked of the database once per batch ([`BatchRules`]).
//!
//! Applying a batch this way gives the rows that applying its events one by one gave, whatever the
//! batch's size: the events are still folded one at a time in log order, only the writes are
//! deferred, and a read model that must read its own table mid-batch (the portfolio's re-render on a
//! rules change) writes what is pending first.

use super::ReadError;
use super::stream::ProgramFolds;
use crate::domain::ProgramId;
use crate::domain::rules::ProgramRules;
use crate::log::{StreamKind, stream_kind};
use crate::store::{RecordedEvent, Upcasters};
use serde::Serialize;
use sqlx::PgConnection;
use std::collections::{BTreeMap, HashMap};

/// The rules of each program as the log stood before the event being applied, asked of the
/// database at most once per program and batch.
///
/// Exact, not an approximation: rules folded before event `e1` of the batch still hold before a
/// later event `e2` unless an event of the program's stream lies between them, and every event
/// between two events of a batch is in the batch. So an entry is dropped when the batch reaches an
/// event of its program ([`BatchRules::saw`]), and asked for again at the next event that needs it.
#[derive(Debug)]
pub(super) struct BatchRules<'a> {
    folds: &'a ProgramFolds,
    upcasters: &'a Upcasters,
    known: HashMap<ProgramId, ProgramRules>,
}

impl<'a> BatchRules<'a> {
    pub(super) fn new(folds: &'a ProgramFolds, upcasters: &'a Upcasters) -> Self {
        BatchRules {
            folds,
            upcasters,
            known: HashMap::new(),
        }
    }

    /// The rules of `program_id` as the log stood before `event`.
    pub(super) async fn before(
        &mut self,
        conn: &mut PgConnection,
        program_id: ProgramId,
        event: &RecordedEvent,
    ) -> Result<&ProgramRules, ReadError> {
        if !self.known.contains_key(&program_id) {
            let rules = self
                .folds
                .rules_before(conn, self.upcasters, program_id, event.checkpoint)
                .await?;
            self.known.insert(program_id, rules);
        }
        Ok(&self.known[&program_id])
    }

    /// To be called with every event of the batch, in order, once it has been applied.
    pub(super) fn saw(&mut self, event: &RecordedEvent) {
        if let StreamKind::Program(id) = stream_kind(&event.stream_id) {
            self.known.remove(&id);
        }
    }
}

/// The rows a batch has changed so far, the last one per key, in key order (so the statement that
/// writes them touches rows in a stable order).
#[derive(Debug)]
pub(super) struct Pending<K, R> {
    rows: BTreeMap<K, R>,
}

impl<K: Ord, R> Pending<K, R> {
    pub(super) fn new() -> Self {
        Pending {
            rows: BTreeMap::new(),
        }
    }

    /// `row` replaces whatever this batch held for `key`.
    pub(super) fn put(&mut self, key: K, row: R) {
        self.rows.insert(key, row);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows as one JSON array for `jsonb_to_recordset`, each written by `columns` (as an
    /// object whose fields are the table's columns), and forgotten.
    pub(super) fn take_json_with(
        &mut self,
        columns: impl Fn(&K, &R, &mut Vec<u8>) -> serde_json::Result<()>,
    ) -> Result<String, ReadError> {
        let rows = std::mem::take(&mut self.rows);
        let mut out = Vec::with_capacity(rows.len() * 512);
        out.push(b'[');
        for (i, (key, row)) in rows.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            columns(key, row, &mut out).map_err(unserialisable)?;
        }
        out.push(b']');
        text(out)
    }
}

/// Rows as one JSON array for `jsonb_to_recordset`: each row's serde field names are its columns.
/// Written straight to text (bound as `$1::text::jsonb`), with no JSON tree in between.
pub(super) fn json_rows<'r, R: Serialize + 'r>(
    rows: impl IntoIterator<Item = &'r R>,
) -> Result<String, ReadError> {
    let mut out = Vec::new();
    out.push(b'[');
    for (i, row) in rows.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, row).map_err(unserialisable)?;
    }
    out.push(b']');
    text(out)
}

/// serde_json writes UTF-8 only.
fn text(bytes: Vec<u8>) -> Result<String, ReadError> {
    String::from_utf8(bytes).map_err(|e| super::undecodable(format!("row JSON is not UTF-8: {e}")))
}

/// A row that cannot be turned into JSON: a bug in the read model, reported like a decoding error.
fn unserialisable(e: serde_json::Error) -> ReadError {
    super::undecodable(format!("a read model row cannot be serialised: {e}"))
}
