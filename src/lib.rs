//! `cim`: the Certificate of International Merits backend.
//!
//! The tree shows the architecture (`docs/architecture.md`), bottom layer first; each module imports
//! only from those listed before it:
//! - [`domain`]: the CIM rules as pure functions (programs, portfolios, export batches); imports
//!   nothing else in this crate.
//! - [`crypto`]: keys and cipher of the personal data sealed in the log (crypto-shredding).
//! - [`store`]: the append-only event log in PostgreSQL.
//! - [`log`]: the log's vocabulary: domain events as stored and back, upcasters, stream kinds, folds
//!   remembered by version.
//! - [`db`]: connecting, migrating, and the embedded default PostgreSQL cluster.
//! - [`media`]: uploaded recordings and evidence on disk, measured and ordered with erasure.
//! - [`app`]: the command handler every write goes through, and erasure.
//! - [`projections`]: the read models kept from the log, and their runner.
//! - [`ops`]: the health of the moving parts (projections, export runs, Ladok backlog, outbox) as
//!   the database tells it, for `/metrics`, `/readyz` and the health watch.
//! - [`credential`]: Open Badges 3.0 credentials of approved certificates; for now their
//!   offline verification (VC-JWT and `eddsa-rdfc-2022` Data Integrity proofs).
//! - [`export`]: the registrar's export formats, the export worker and Ladok delivery.
//! - [`credential`]: what the student carries away from an approved certificate (the printable
//!   certificate).
//! - [`http`]: the web API.
//! - [`cli`]: the `cim` binary's subcommands.
//!
//! Tools that production does not run are crates of their own in `crates/`: the fake Ladok
//! (`cim-fake-ladok`, for tests and the demo), the demo (`cim-demo`) and the bench (`cim-bench`).
pub mod app;
pub mod cli;
pub mod console;
pub mod credential;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod export;
pub mod http;
pub mod log;
pub mod media;
pub mod notify;
pub mod ops;
pub mod projections;
pub mod store;
