//! The "portfolio" aggregate (stream `portfolio-{id}`): one student's path to the certificate in one
//! program, from enrolment to approval (and, rarely, revocation).
//!
//! `decide` takes the program's current state as well, because "in the catalog", "rules in force" and
//! "is a coordinator" belong to the program; the event records whatever of it the decision relied on
//! (item names, rules version and band), so the portfolio's history never needs the program to replay.

mod activities;
mod application;
mod commands;
mod completion;
mod content;
mod decide;
mod events;
mod evolve;
mod final_reflection;
mod identity;
mod recording;
mod state;

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod proptests;

pub use commands::{
    FinalContent, LadokRecord, MAX_DESCRIPTION_LEN, MAX_REFLECTION_TEXT_LEN, MAX_STAFF_TEXT_LEN,
    PortfolioCommand, ReflectionContent,
};
pub use decide::decide;
pub use events::*;
pub use evolve::evolve;
pub use state::{
    Activity, Deadline, FinalAttempt, Phase, Portfolio, PortfolioState, ReflectionAttempt,
    ReflectionStatus, Review,
};
