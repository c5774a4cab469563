//! The admin pages.

use super::ConsoleRoute;

/// The routes of this area.
pub fn routes() -> Vec<ConsoleRoute> {
    Vec::new()
}
