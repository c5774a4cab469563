//! `cim`: the Certificate of International Merits backend.
//!
//! The tree shows the architecture (see the README's "Architecture" section):
//! - [`app`]: the command handler that drives the domain into the store.
//! - [`domain`]: the CIM rules as pure functions; depends on nothing else in this crate.
//! - [`store`]: the append-only event log in PostgreSQL.
//! - [`crypto`]: keys and cipher of the personal data sealed in the log (crypto-shredding).
//! - [`db`]: connecting, migrating, and the embedded default PostgreSQL cluster.
//! - [`http`]: the web API.
//! - [`cli`]: the `cim` binary's subcommands.
pub mod app;
pub mod cli;
pub mod crypto;
pub mod db;
pub mod demo;
pub mod domain;
pub mod export;
pub mod http;
pub mod media;
pub mod projections;
pub mod store;
