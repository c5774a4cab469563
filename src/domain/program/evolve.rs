//! Folding program events into state.

use super::events::ProgramEvent;
use super::state::{CatalogItem, Program, ProgramState};

/// Applies one event. Events that cannot apply to the state (which `decide` never produces) leave it
/// unchanged rather than panic, so one corrupt stored event cannot take a whole projection down.
pub fn evolve(state: ProgramState, event: &ProgramEvent) -> ProgramState {
    let mut program = match (state, event) {
        (ProgramState::Unregistered, ProgramEvent::ProgramRegistered(e)) => {
            return ProgramState::Registered(Program {
                id: e.program_id,
                name: e.name.clone(),
                code: e.code.clone(),
                catalog: Vec::new(),
                rules: e.rules.clone(),
                rules_version: e.rules_version,
                coordinators: Vec::new(),
            });
        }
        (ProgramState::Registered(program), _) => program,
        (state, _) => return state,
    };
    match event {
        ProgramEvent::ProgramRegistered(_) => {}
        ProgramEvent::CatalogItemAdded(e) => program.catalog.push(CatalogItem {
            id: e.item.clone(),
            name: e.name.clone(),
            retired: false,
        }),
        ProgramEvent::CatalogItemRenamed(e) => {
            if let Some(item) = program.catalog.iter_mut().find(|i| i.id == e.item) {
                item.name = e.name.clone();
            }
        }
        ProgramEvent::CatalogItemRetired(e) => {
            if let Some(item) = program.catalog.iter_mut().find(|i| i.id == e.item) {
                item.retired = true;
            }
        }
        ProgramEvent::RulesChanged(e) => {
            program.rules = e.rules.clone();
            program.rules_version = e.rules_version;
        }
        ProgramEvent::CoordinatorAssigned(e) => program.coordinators.push(e.staff.clone()),
        ProgramEvent::CoordinatorUnassigned(e) => program.coordinators.retain(|s| s != &e.staff),
    }
    ProgramState::Registered(program)
}
