//! The integration tests, one binary: each module was a test binary of its own, and each of those
//! linked the whole crate again; one binary links it once (`docs/performance.md`, "Test build: one
//! binary"). Every test has a database of its own (`support::fresh`), so the modules run in parallel
//! beside each other as the tests of one file always did.
//!
//! Not here, each a binary of its own so that nothing else runs beside it: the tests that crash a
//! PostgreSQL cluster under a running service (`tests/database_restart.rs`), kill busy or faulted
//! `cim serve` processes under load (`tests/busy_kill.rs`, `tests/process_faults.rs`), saturate
//! the database server on purpose (`tests/bench.rs`), or need a quiet server to see their own
//! writes at once (`tests/demo.rs`). They share `tests/support/` with this binary.

#[path = "../support/mod.rs"]
mod support;

mod api;
mod api_reads;
mod auth_jwks;
mod auth_limit;
mod authorisation;
mod backup_restore;
mod command_handler;
mod console;
mod credentials;
mod embedded_serve;
mod erasure;
mod erasure_reason;
mod event_store;
mod export_formats;
mod export_resilience;
mod export_worker;
mod fuzz_api;
mod identity;
mod instances;
mod ladok;
mod ladok_outage;
mod logs;
mod master_key;
mod media;
mod media_races;
mod notifications;
mod operations;
mod projection_runner;
mod read_models;
mod registrar_api;
mod registrar_status;
mod runner_takeover;
mod safety_nets;
