//! What operations watch: the health of the service's moving parts as the database tells it.
//!
//! - [`health`]: one reading of every part ([`health::snapshot`] → [`health::HealthSnapshot`]):
//!   the projections' positions and lag, the export worker's runs, the certificates waiting for
//!   Ladok, the outbox. Read from the database, so every process sees the same figures.
//! - [`concerns`]: which of those readings mean a part is behind, by [`concerns::Thresholds`]; the
//!   sentences `/readyz` shows and the health watch sends to the admins.
//!
//! Read by `http` (`/metrics`, `/readyz`) and by the notifications' health watch. Only reads: the
//! tables belong to their writers (the projection runner, the export worker's
//! `export::worker::runs`, the outbox of `notify`), and nothing here imports those writers, so any
//! layer above `projections` may call it.

pub mod concerns;
pub mod health;

pub use concerns::{Concern, Part, Thresholds};
pub use health::{HealthSnapshot, snapshot};
