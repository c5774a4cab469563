//! The application layer: runs commands through the pure domain into the event log.
//!
//! A command is handled in four steps: load the stream (and, for a portfolio, its program), fold the
//! events into state with `evolve`, `decide` the command, and append the result with the version
//! that was loaded as the expected one. A lost race is retried once against the new state; a retried
//! command id returns the first outcome.

mod codec;
pub mod erasure;
mod handler;
mod identity;
mod seed;

pub use codec::{decode_portfolio, decode_program, encode, upcasters};
pub use erasure::{ErasureError, ErasureOutcome, ErasureRequest, erase};
pub use handler::{CommandContext, CommandError, CommandHandler, Handled};
pub use seed::{SeededProgram, pilot_program_id, seed_pilot_programs};
