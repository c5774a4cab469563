//! The application layer: runs commands through the pure domain into the event log.
//!
//! Every write of the service goes through the [`CommandHandler`]: the web API's commands, the
//! export worker's steps and the registrar's batch actions, Ladok's answers to identity checks. A
//! command is handled in four steps: load the stream (and, for a portfolio, its program) from the
//! fold cache, `decide` the command, and append the result with the version that was loaded as the
//! expected one (`commit.rs`, the one place events are appended and announced). A lost race is
//! retried once against the new state; a retried command id returns the first outcome.
//!
//! Erasure ([`erase`]) is the one operation over several streams: it appends in its own
//! transaction (with the keys it deletes), with the metadata of its [`CommandContext`].

mod aggregate;
mod batch_rows;
mod command;
mod commit;
pub mod erasure;
mod handler;
mod identity;
mod loading;
mod seed;

pub use batch_rows::SelectionMove;
pub use command::{CommandContext, CommandError, Handled};
pub use commit::Write;
pub use erasure::{ErasureError, ErasureOutcome, ErasureRequest, erase};
pub use handler::{CommandHandler, PROGRAM_TRUST};
pub use seed::{SeededProgram, pilot_program_id, seed_pilot_programs};
