//! The CIM rules, as pure functions.
//!
//! Nothing here performs I/O, reads the clock or draws random numbers: ids and `now` arrive in commands
//! and arguments. Each aggregate is a pair of functions, `decide(state, …, command, now) -> events | error`
//! and `evolve(state, event) -> state`, which is what makes every rule testable in microseconds and lets
//! property tests replay thousands of random histories.
//!
//! - [`program`]: a program's activity catalog, rules and coordinators (stream `program-{id}`).
//! - [`portfolio`]: one student's portfolio (stream `portfolio-{id}`).
//! - [`batch`]: one export batch: what it took, its files, its Ladok deliveries (stream
//!   `export-batch-{id}`).
//! - [`values`]: validated values (identity numbers, e-mail, names, text, media, measurements).
//! - [`rules`]: per-program configurable rules with the defaults from `docs/domain.md`.
//! - [`event_payload`]: how events become `(event_type, JSON)` for the store, with personal data in a
//!   separable `personal` field.
//! - [`errors`]: why a command was refused, with stable codes.

pub mod batch;
pub mod calendar;
pub mod errors;
pub mod event_payload;
pub mod ids;
pub mod portfolio;
pub mod program;
pub mod rules;
pub mod values;

pub use calendar::stockholm_date;
pub use errors::DomainError;
pub use event_payload::{PERSONAL_FIELD, PayloadError};
pub use ids::{
    ActivityId, BatchId, CatalogItemId, CertificateId, PortfolioId, ProgramCode, ProgramId,
    StaffId, StudentUid,
};
pub use portfolio::{PortfolioCommand, PortfolioEvent, PortfolioState};
pub use program::{ProgramCommand, ProgramEvent, ProgramState};
pub use rules::ProgramRules;
