//! The rules for changing a program.

use chrono::{DateTime, Utc};

use super::commands::{MAX_NAME_LEN, ProgramCommand};
use super::events::*;
use super::state::{Program, ProgramState};
use crate::domain::errors::DomainError;
use crate::domain::rules::ProgramRules;
use crate::domain::values::{NonEmptyText, TextError};

/// Decides a program command. `_now` keeps the signature the same as the portfolio's so command handling
/// is uniform; no program rule depends on time today.
pub fn decide(
    state: &ProgramState,
    cmd: ProgramCommand,
    _now: DateTime<Utc>,
) -> Result<Vec<ProgramEvent>, DomainError> {
    let program = match state {
        ProgramState::Unregistered => return register(cmd),
        ProgramState::Registered(program) => program,
    };
    let event: ProgramEvent = match cmd {
        ProgramCommand::RegisterProgram { .. } => {
            return Err(DomainError::ProgramAlreadyRegistered);
        }
        ProgramCommand::AddCatalogItem { item, name } => {
            if let Some(existing) = program.item(&item) {
                return Err(DomainError::CatalogItemExists {
                    item,
                    retired: existing.retired,
                });
            }
            check_name(&name, "name")?;
            check_name_free(program, &name)?;
            CatalogItemAdded { item, name }.into()
        }
        ProgramCommand::RenameCatalogItem { item, name } => {
            let existing = program
                .item(&item)
                .ok_or_else(|| DomainError::CatalogItemUnknown { item: item.clone() })?;
            if existing.retired {
                return Err(DomainError::CatalogItemRetired {
                    item,
                    name: existing.name.to_string(),
                });
            }
            if existing.name == name {
                return Err(DomainError::NoChange {
                    what: "catalog item name",
                });
            }
            check_name(&name, "name")?;
            check_name_free(program, &name)?;
            CatalogItemRenamed { item, name }.into()
        }
        ProgramCommand::RetireCatalogItem { item } => {
            let existing = program
                .item(&item)
                .ok_or_else(|| DomainError::CatalogItemUnknown { item: item.clone() })?;
            if existing.retired {
                return Err(DomainError::CatalogItemRetired {
                    item,
                    name: existing.name.to_string(),
                });
            }
            CatalogItemRetired { item }.into()
        }
        ProgramCommand::ChangeRules { rules } => {
            rules.validate()?;
            if rules == program.rules {
                return Err(DomainError::NoChange { what: "rules" });
            }
            RulesChanged {
                rules,
                rules_version: program.rules_version + 1,
            }
            .into()
        }
        ProgramCommand::AssignCoordinator { staff } => {
            if program.is_coordinator(&staff) {
                return Err(DomainError::CoordinatorAlreadyAssigned);
            }
            CoordinatorAssigned { staff }.into()
        }
        ProgramCommand::UnassignCoordinator { staff } => {
            if !program.is_coordinator(&staff) {
                return Err(DomainError::CoordinatorNotAssigned);
            }
            CoordinatorUnassigned { staff }.into()
        }
    };
    Ok(vec![event])
}

fn register(cmd: ProgramCommand) -> Result<Vec<ProgramEvent>, DomainError> {
    let ProgramCommand::RegisterProgram { id, name, code } = cmd else {
        return Err(DomainError::ProgramNotRegistered);
    };
    check_name(&name, "name")?;
    Ok(vec![
        ProgramRegistered {
            program_id: id,
            name,
            code,
            rules: ProgramRules::default(),
            rules_version: 1,
        }
        .into(),
    ])
}

fn check_name(name: &NonEmptyText, field: &'static str) -> Result<(), DomainError> {
    let len = name.as_str().chars().count();
    if len > MAX_NAME_LEN {
        return Err(TextError::TooLong {
            field,
            len,
            max: MAX_NAME_LEN,
        }
        .into());
    }
    Ok(())
}

/// Two active items with the same name would be indistinguishable to students; retired names may be
/// reused because retired items are no longer offered.
fn check_name_free(program: &Program, name: &NonEmptyText) -> Result<(), DomainError> {
    let wanted = name.as_str().to_lowercase();
    let taken = program
        .catalog
        .iter()
        .any(|item| !item.retired && item.name.as_str().to_lowercase() == wanted);
    if taken {
        return Err(DomainError::CatalogItemNameTaken {
            name: name.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{ProgramCommand, ProgramState, default_catalog, evolve};
    use super::*;
    use crate::domain::ids::{CatalogItemId, ProgramCode, ProgramId, StaffId};
    use crate::domain::rules::WordBand;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
    }

    fn text(s: &str) -> NonEmptyText {
        NonEmptyText::parse(s, "name", usize::MAX).unwrap()
    }

    fn slug(s: &str) -> CatalogItemId {
        CatalogItemId::parse(s).unwrap()
    }

    fn register() -> ProgramCommand {
        ProgramCommand::RegisterProgram {
            id: ProgramId::new(Uuid::from_u128(1)),
            name: text("Dental Program"),
            code: ProgramCode::parse("dentistry").unwrap(),
        }
    }

    fn run(state: ProgramState, cmd: ProgramCommand) -> ProgramState {
        let events = decide(&state, cmd, now()).unwrap();
        events.iter().fold(state, evolve)
    }

    fn refuse(state: &ProgramState, cmd: ProgramCommand) -> DomainError {
        decide(state, cmd, now()).unwrap_err()
    }

    fn registered() -> ProgramState {
        let state = run(ProgramState::default(), register());
        let state = run(
            state,
            ProgramCommand::AddCatalogItem {
                item: slug("tedx"),
                name: text("TEDx"),
            },
        );
        run(
            state,
            ProgramCommand::AddCatalogItem {
                item: slug("language-cafe"),
                name: text("Language café"),
            },
        )
    }

    fn program(state: &ProgramState) -> &Program {
        state.registered().unwrap()
    }

    #[test]
    fn registering_starts_with_the_default_rules_at_version_1() {
        let events = decide(&ProgramState::default(), register(), now()).unwrap();
        let [ProgramEvent::ProgramRegistered(e)] = events.as_slice() else {
            panic!()
        };
        assert_eq!((&e.rules, e.rules_version), (&ProgramRules::default(), 1));
        let p = registered();
        assert_eq!(program(&p).code.as_str(), "dentistry");
        assert_eq!(program(&p).catalog.len(), 2);
    }

    #[test]
    fn a_program_is_registered_once_and_first() {
        assert_eq!(
            refuse(&registered(), register()),
            DomainError::ProgramAlreadyRegistered
        );
        let add = ProgramCommand::AddCatalogItem {
            item: slug("tedx"),
            name: text("TEDx"),
        };
        assert_eq!(
            refuse(&ProgramState::default(), add),
            DomainError::ProgramNotRegistered
        );
        let long = ProgramCommand::RegisterProgram {
            id: ProgramId::new(Uuid::from_u128(1)),
            name: text(&"x".repeat(MAX_NAME_LEN + 1)),
            code: ProgramCode::parse("x1").unwrap(),
        };
        assert_eq!(
            refuse(&ProgramState::default(), long).code(),
            "text_too_long"
        );
    }

    #[test]
    fn the_whole_default_catalog_can_be_added() {
        let state = default_catalog().into_iter().fold(
            run(ProgramState::default(), register()),
            |s, (item, name)| {
                run(
                    s,
                    ProgramCommand::AddCatalogItem {
                        item,
                        name: text(name),
                    },
                )
            },
        );
        let names: Vec<_> = program(&state)
            .catalog
            .iter()
            .map(|i| i.name.as_str().to_owned())
            .collect();
        let expected: Vec<_> = default_catalog()
            .into_iter()
            .map(|(_, n)| n.to_owned())
            .collect();
        assert_eq!(names, expected, "insertion order is kept");
    }

    #[test]
    fn catalog_keys_are_never_reused_and_active_names_are_unique() {
        let state = registered();
        let dup = ProgramCommand::AddCatalogItem {
            item: slug("tedx"),
            name: text("Something"),
        };
        assert_eq!(
            refuse(&state, dup.clone()),
            DomainError::CatalogItemExists {
                item: slug("tedx"),
                retired: false
            }
        );
        let same_name = ProgramCommand::AddCatalogItem {
            item: slug("tedx-2"),
            name: text("tedx"),
        };
        assert_eq!(
            refuse(&state, same_name.clone()).code(),
            "catalog_item_name_taken"
        );
        let retired = run(
            state,
            ProgramCommand::RetireCatalogItem { item: slug("tedx") },
        );
        assert_eq!(
            refuse(&retired, dup),
            DomainError::CatalogItemExists {
                item: slug("tedx"),
                retired: true
            }
        );
        // A retired item's name is free again.
        let reused = run(retired, same_name);
        assert_eq!(program(&reused).catalog.len(), 3);
    }

    #[test]
    fn renaming_keeps_the_key_and_refuses_pointless_or_clashing_names() {
        let state = registered();
        let rename = |item: &str, name: &str| ProgramCommand::RenameCatalogItem {
            item: slug(item),
            name: text(name),
        };
        let renamed = run(state.clone(), rename("tedx", "TEDx KI"));
        assert_eq!(
            program(&renamed).item(&slug("tedx")).unwrap().name.as_str(),
            "TEDx KI"
        );
        assert_eq!(refuse(&state, rename("tedx", "TEDx")).code(), "no_change");
        assert_eq!(
            refuse(&state, rename("tedx", "LANGUAGE CAFÉ")).code(),
            "catalog_item_name_taken"
        );
        assert_eq!(
            refuse(&state, rename("nope", "x")).code(),
            "catalog_item_unknown"
        );
        let retired = run(
            state,
            ProgramCommand::RetireCatalogItem { item: slug("tedx") },
        );
        assert_eq!(
            refuse(&retired, rename("tedx", "x")).code(),
            "catalog_item_retired"
        );
    }

    #[test]
    fn retiring_marks_the_item_and_happens_once() {
        let retire = ProgramCommand::RetireCatalogItem { item: slug("tedx") };
        let state = run(registered(), retire.clone());
        assert!(program(&state).item(&slug("tedx")).unwrap().retired);
        assert_eq!(refuse(&state, retire).code(), "catalog_item_retired");
        assert_eq!(
            refuse(
                &state,
                ProgramCommand::RetireCatalogItem { item: slug("nope") }
            )
            .code(),
            "catalog_item_unknown"
        );
    }

    #[test]
    fn rules_changes_are_validated_and_versioned() {
        let state = registered();
        let rules = ProgramRules {
            written: WordBand {
                min: 800,
                max: 1200,
            },
            ..ProgramRules::default()
        };
        let changed = run(
            state.clone(),
            ProgramCommand::ChangeRules {
                rules: rules.clone(),
            },
        );
        assert_eq!(
            (&program(&changed).rules, program(&changed).rules_version),
            (&rules, 2)
        );
        let again = ProgramCommand::ChangeRules { rules };
        assert_eq!(refuse(&changed, again).code(), "no_change");
        let bad = ProgramRules {
            required_activities: 0,
            ..ProgramRules::default()
        };
        let err = refuse(&state, ProgramCommand::ChangeRules { rules: bad });
        assert_eq!(
            (err.code(), err.field()),
            ("rules_no_required_activities", Some("rules"))
        );
        let back = run(
            changed,
            ProgramCommand::ChangeRules {
                rules: ProgramRules::default(),
            },
        );
        assert_eq!(program(&back).rules_version, 3);
    }

    #[test]
    fn coordinators_are_assigned_and_unassigned() {
        let anna = StaffId::parse("anna@ki.se").unwrap();
        let assign = ProgramCommand::AssignCoordinator {
            staff: anna.clone(),
        };
        let unassign = ProgramCommand::UnassignCoordinator {
            staff: anna.clone(),
        };
        let state = run(registered(), assign.clone());
        assert!(program(&state).is_coordinator(&anna));
        assert_eq!(
            refuse(&state, assign),
            DomainError::CoordinatorAlreadyAssigned
        );
        let state = run(state, unassign.clone());
        assert!(!program(&state).is_coordinator(&anna));
        assert_eq!(
            refuse(&state, unassign),
            DomainError::CoordinatorNotAssigned
        );
    }

    #[test]
    fn program_events_round_trip_through_payloads_and_replay() {
        let anna = StaffId::parse("anna@ki.se").unwrap();
        let commands = vec![
            register(),
            ProgramCommand::AddCatalogItem {
                item: slug("tedx"),
                name: text("TEDx"),
            },
            ProgramCommand::RenameCatalogItem {
                item: slug("tedx"),
                name: text("TEDx KI"),
            },
            ProgramCommand::RetireCatalogItem { item: slug("tedx") },
            ProgramCommand::ChangeRules {
                rules: ProgramRules {
                    allow_repeat_items: true,
                    ..ProgramRules::default()
                },
            },
            ProgramCommand::AssignCoordinator {
                staff: anna.clone(),
            },
            ProgramCommand::UnassignCoordinator { staff: anna },
        ];
        let mut state = ProgramState::default();
        let mut events = Vec::new();
        for cmd in commands {
            let new = decide(&state, cmd, now()).unwrap();
            state = new.iter().fold(state, evolve);
            events.extend(new);
        }
        let types: Vec<_> = events.iter().map(ProgramEvent::event_type).collect();
        assert_eq!(types, ProgramEvent::EVENT_TYPES);
        let replayed = events
            .iter()
            .map(|e| {
                let (t, payload) = e.to_payload();
                assert!(payload.get(crate::domain::PERSONAL_FIELD).is_none());
                ProgramEvent::from_payload(t, &payload).unwrap()
            })
            .fold(ProgramState::default(), |s, e| evolve(s, &e));
        assert_eq!(replayed, state);
    }

    #[test]
    fn evolve_ignores_events_before_registration() {
        let stray: ProgramEvent =
            crate::domain::program::CatalogItemRetired { item: slug("tedx") }.into();
        assert_eq!(
            evolve(ProgramState::default(), &stray),
            ProgramState::default()
        );
    }
}
