//! What happened to a program. Program events hold no personal data: staff ids are the audit trail of
//! officials acting in their role, and names are those of programs and activities.

use serde::{Deserialize, Serialize};

use crate::domain::event_payload::domain_events;
use crate::domain::ids::{CatalogItemId, ProgramCode, ProgramId, StaffId};
use crate::domain::rules::ProgramRules;
use crate::domain::values::NonEmptyText;

/// Carries the rules the program starts with, so that replaying the stream gives the same rules even
/// after the code's defaults change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramRegistered {
    pub program_id: ProgramId,
    pub name: NonEmptyText,
    pub code: ProgramCode,
    pub rules: ProgramRules,
    pub rules_version: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogItemAdded {
    pub item: CatalogItemId,
    pub name: NonEmptyText,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogItemRenamed {
    pub item: CatalogItemId,
    pub name: NonEmptyText,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogItemRetired {
    pub item: CatalogItemId,
}

/// `rules_version` is what reflection events cite, so an audit can show the exact band applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulesChanged {
    pub rules: ProgramRules,
    pub rules_version: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoordinatorAssigned {
    pub staff: StaffId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoordinatorUnassigned {
    pub staff: StaffId,
}

domain_events!(
    /// Events of the `program-{id}` stream.
    ProgramEvent {
        ProgramRegistered,
        CatalogItemAdded,
        CatalogItemRenamed,
        CatalogItemRetired,
        RulesChanged,
        CoordinatorAssigned,
        CoordinatorUnassigned,
    }
);
