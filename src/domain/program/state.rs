//! A program as its events leave it.

use crate::domain::ids::{CatalogItemId, ProgramCode, ProgramId, StaffId};
use crate::domain::rules::ProgramRules;
use crate::domain::values::NonEmptyText;

#[derive(Debug, Clone, Default, PartialEq)]
pub enum ProgramState {
    /// No `ProgramRegistered` yet: the only state in which registering is allowed.
    #[default]
    Unregistered,
    Registered(Program),
}

impl ProgramState {
    pub fn registered(&self) -> Option<&Program> {
        match self {
            ProgramState::Registered(program) => Some(program),
            ProgramState::Unregistered => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub id: ProgramId,
    pub name: NonEmptyText,
    pub code: ProgramCode,
    /// In insertion order, which is the order students see; retired items stay so that old activities
    /// can still be explained.
    pub catalog: Vec<CatalogItem>,
    pub rules: ProgramRules,
    pub rules_version: u32,
    pub coordinators: Vec<StaffId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CatalogItem {
    pub id: CatalogItemId,
    pub name: NonEmptyText,
    pub retired: bool,
}

impl Program {
    pub fn item(&self, id: &CatalogItemId) -> Option<&CatalogItem> {
        self.catalog.iter().find(|item| &item.id == id)
    }

    pub fn is_coordinator(&self, staff: &StaffId) -> bool {
        self.coordinators.contains(staff)
    }
}
