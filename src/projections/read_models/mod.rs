//! The read models of the CIM backend: what the web API answers from, each one a [`Projection`]
//! of the event log that can be thrown away and rebuilt with the same rows.
//!
//! | projection | tables | answers |
//! | --- | --- | --- |
//! | [`portfolio`] | `rm_portfolios` | a student's portfolio as it stands, and what they must do next |
//! | [`review_queue`] | `rm_review_queue` | what waits for a coordinator, oldest first |
//! | [`audit`] | `rm_audit`, `rm_audit_streams` | every event of a portfolio or program, and a portfolio at any past moment |
//! | [`registrar`] | `rm_certificates` | approved and revoked certificates, with their delivery status |
//! | [`statistics`] | `rm_stats_portfolios` | the pilot evaluation, pseudonymous |
//!
//! # Rules every read model here follows
//!
//! - **Deterministic**: rows depend only on the events applied so far, in log order. Times written
//!   are the events' `recorded_at`, never `now()`; anything that depends on "today" (days left,
//!   how long an item has waited, drop-off) is computed by the query functions from an argument.
//! - **No personal data is copied into a read model.** The `personal` column of `events` is the
//!   only place it lives, so erasing it there is enough. States are folded from the log *without*
//!   the personal column ([`stream`] reads it only when a query asks for it), which also makes every
//!   row independent of whether an erasure happened before or after it was projected. Query
//!   functions that show personal content (a student's own portfolio, the coordinator's audit)
//!   join it from `events` at query time.
//! - State that a read model needs to evolve (a portfolio's state, its program's rules) is folded
//!   from the `events` table through the batch transaction, bounded so that live application and a
//!   rebuild see exactly the same events (see [`stream::Until`]). Folds already made are kept per
//!   stream and version in memory, which can never go stale (`stream.rs`, "Fold cache").
//! - **A batch is applied in memory and written once** (`batch.rs`): events are folded one by one
//!   in log order, the changed rows are kept per key, and each table gets one multi-row statement
//!   per batch.
//!
//! Query functions are plain `async fn`s over a [`sqlx::PgPool`] returning serde-serialisable
//! structs, for the HTTP layer to call. Their static SQL is checked at compile time like the rest
//! (`.sqlx/` is prepared against a database holding these tables, see docs/projections.md).

/// Implements [`Projection`] (and `Default`, through `new()`) for a read model: its name, version,
/// DDL file in `projections/` and the tables it owns, with batches applied by its inherent
/// `apply_batch(&self, &mut PgConnection, &[RecordedEvent]) -> Result<(), ReadError>`.
macro_rules! read_model {
    ($ty:ident {
        name: $name:literal,
        version: $version:literal,
        definition: $file:literal,
        tables: [$($table:literal),+ $(,)?],
    }) => {
        impl Default for $ty {
            fn default() -> Self {
                Self::new()
            }
        }

        impl $crate::projections::Projection for $ty {
            fn name(&self) -> &'static str {
                $name
            }

            fn version(&self) -> u32 {
                $version
            }

            fn definition(&self) -> &'static str {
                include_str!(concat!("../../../projections/", $file))
            }

            fn tables(&self) -> &'static [&'static str] {
                &[$($table),+]
            }

            fn apply<'a>(
                &'a self,
                tx: &'a mut sqlx::PgConnection,
                events: &'a [$crate::store::RecordedEvent],
            ) -> futures::future::BoxFuture<'a, Result<(), $crate::projections::ProjectionError>> {
                Box::pin(async move { Ok(self.apply_batch(tx, events).await?) })
            }
        }
    };
}

pub mod audit;
mod batch;
pub mod portfolio;
pub mod registrar;
pub mod review_queue;
pub mod statistics;
mod stream;
pub mod view;

use super::{Projection, ProjectionError};
use std::sync::Arc;
use thiserror::Error;

pub use audit::AuditProjection;
pub use portfolio::PortfolioProjection;
pub use registrar::RegistrarProjection;
pub use review_queue::ReviewQueueProjection;
pub use statistics::StatisticsProjection;

/// The five read models, in the order they are registered with the runner.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(PortfolioProjection::new()),
        Arc::new(ReviewQueueProjection::new()),
        Arc::new(AuditProjection::new()),
        Arc::new(RegistrarProjection::new()),
        Arc::new(StatisticsProjection::new()),
    ]
}

/// Why a query (or the state a projection folds) could not be read.
///
/// Messages never carry personal data: they name the event by position and type only.
#[derive(Debug, Error)]
pub enum ReadError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored event or row cannot be turned back into what it was written from: a bug or a
    /// missing upcaster, never the caller's fault.
    #[error("stored event {position} ({event_type}) cannot be read: {reason}")]
    Corrupt {
        position: i64,
        event_type: String,
        reason: String,
    },
}

impl From<crate::store::StoreError> for ReadError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Database(e) => ReadError::Database(e),
            // Key and sealing errors name positions and key ids only, never content.
            other => ReadError::Corrupt {
                position: match &other {
                    crate::store::StoreError::KeyMissing { position }
                    | crate::store::StoreError::Unseal { position, .. } => *position,
                    _ => 0,
                },
                event_type: String::new(),
                reason: other.to_string(),
            },
        }
    }
}

impl From<ReadError> for ProjectionError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Database(e) => ProjectionError::Database(e),
            ReadError::Corrupt {
                position,
                event_type,
                reason,
            } => ProjectionError::Malformed {
                position,
                event_type,
                reason,
            },
        }
    }
}

/// A stored value a read model wrote itself but cannot read back: a bug, reported like a decoding
/// error of the database driver.
fn undecodable(what: String) -> ReadError {
    ReadError::Database(sqlx::Error::Decode(what.into()))
}

/// The serde name of a unit enum variant (`written`, `oral`, ...), as stored in text columns.
fn serde_name(value: impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => panic!("serde_name is only for unit enum variants, got {other:?}"),
    }
}

/// The inverse of [`serde_name`].
fn from_serde_name<T: serde::de::DeserializeOwned>(name: &str) -> Result<T, ReadError> {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .map_err(|_| undecodable(format!("unexpected stored value {name:?}")))
}

/// A page size from the caller, kept within 1..=1000 so that a careless client cannot ask the
/// database for everything at once.
fn clamp_limit(limit: i64) -> i64 {
    limit.clamp(1, 1000)
}
