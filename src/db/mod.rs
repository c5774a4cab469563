//! Database connection, migrations and the embedded cluster.

mod availability;
mod database;
pub mod embedded;
mod pool;
pub mod scratch;

pub use availability::{unavailable, unavailable_in};
pub use database::{Database, DatabaseError, DatabaseSettings};
pub use pool::{MIGRATOR, connect, migrate, migrations_applied};
