//! `cim`: the Certificate of International Merits backend.
//!
//! The tree shows the architecture (see the README's "Architecture" section), roughly bottom layer
//! first (the domain imports nothing; a few helpers still cross between neighbours, which issue 21's
//! redesign removes):
//! - [`domain`]: the CIM rules as pure functions; depends on nothing else in this crate.
//! - [`crypto`]: keys and cipher of the personal data sealed in the log (crypto-shredding).
//! - [`store`]: the append-only event log in PostgreSQL.
//! - [`db`]: connecting, migrating, and the embedded default PostgreSQL cluster.
//! - [`media`]: uploaded recordings and evidence on disk, measured and ordered with erasure.
//! - [`app`]: the command handler that drives the domain into the store, and erasure.
//! - [`projections`]: the read models kept from the log, and their runner.
//! - [`export`]: the registrar's export formats, the export worker and Ladok delivery.
//! - [`http`]: the web API.
//! - [`cli`]: the `cim` binary's subcommands; [`demo`]: the demonstration data `cim demo` drives.
pub mod app;
pub mod cli;
pub mod crypto;
pub mod db;
pub mod demo;
pub mod domain;
pub mod export;
pub mod http;
pub mod log;
pub mod media;
pub mod projections;
pub mod store;
