//! What admins and coordinators ask of a program.

use crate::domain::ids::{CatalogItemId, ProgramCode, ProgramId, StaffId};
use crate::domain::rules::ProgramRules;
use crate::domain::values::NonEmptyText;

/// Longest program or catalog item name accepted (they appear in the Diploma Supplement text).
pub const MAX_NAME_LEN: usize = 200;

#[derive(Debug, Clone, PartialEq)]
pub enum ProgramCommand {
    /// Admin: take a program into CIM. The id is minted by the caller so that retries are idempotent.
    RegisterProgram {
        id: ProgramId,
        name: NonEmptyText,
        code: ProgramCode,
    },
    AddCatalogItem {
        item: CatalogItemId,
        name: NonEmptyText,
    },
    RenameCatalogItem {
        item: CatalogItemId,
        name: NonEmptyText,
    },
    /// Retiring hides the item from new activities; activities already logged keep it.
    RetireCatalogItem {
        item: CatalogItemId,
    },
    ChangeRules {
        rules: ProgramRules,
    },
    AssignCoordinator {
        staff: StaffId,
    },
    UnassignCoordinator {
        staff: StaffId,
    },
}
