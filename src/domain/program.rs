//! The "program" aggregate (stream `program-{id}`): an educational program's CIM catalog, rules and
//! coordinators. Portfolios read it when deciding, so that "in the catalog", "rules in force" and "is a
//! coordinator" always mean the program as it is at that moment.

mod commands;
mod decide;
mod events;
mod evolve;
mod state;

pub use commands::{MAX_NAME_LEN, ProgramCommand};
pub use decide::decide;
pub use events::{
    CatalogItemAdded, CatalogItemRenamed, CatalogItemRetired, CoordinatorAssigned,
    CoordinatorUnassigned, ProgramEvent, ProgramRegistered, RulesChanged,
};
pub use evolve::evolve;
pub use state::{CatalogItem, Program, ProgramState};

use super::ids::CatalogItemId;

/// The seed's example activities, the list a program picks its catalog from.
///
/// Only a starting point: a program adds the ones it offers (the seed says each program selects), so
/// nothing adds these automatically.
pub fn default_catalog() -> Vec<(CatalogItemId, &'static str)> {
    const ITEMS: [(&str, &str); 13] = [
        (
            "physical-mobility",
            "Physical mobility (independently or as exchange studies)",
        ),
        ("student-representative", "Student representative"),
        ("student-ambassador", "Student ambassador"),
        (
            "welcoming-exchange-students",
            "Welcoming incoming exchange students within your educational program",
        ),
        (
            "non-credit-lectures-in-english",
            "Non-credit lectures in English",
        ),
        ("chase-career-fair", "Chase - career fair"),
        ("tedx", "TEDx"),
        (
            "welcome-week-ambassador",
            "Participation as an ambassador during welcome week/day",
        ),
        ("mentor-study-buddy", "Mentor/Study buddy"),
        ("online-lectures-in-english", "Online lectures in English"),
        (
            "bip-hybrid-virtual-mobility",
            "Blended Intensive Programme (BIP), hybrid mobility, virtual mobility",
        ),
        ("course-in-global-health", "Course in global health"),
        (
            "language-cafe",
            "Participation in language café, participant and/or coordinator",
        ),
    ];
    ITEMS
        .iter()
        .map(|(slug, name)| {
            let id = CatalogItemId::parse(slug).expect("the built-in catalog slugs are valid");
            (id, *name)
        })
        .collect()
}

/// The four programs of the 2025/2026 pilot as (code, name), for seeding a fresh installation.
pub fn pilot_programs() -> Vec<(&'static str, &'static str)> {
    vec![
        ("occupational-therapy", "Occupational Therapy Program"),
        (
            "bioentrepreneurship",
            "Master's Program in Bioentrepreneurship",
        ),
        (
            "translational-physiology-pharmacology",
            "Master's Program in Translational Physiology and Pharmacology",
        ),
        ("dentistry", "Dental Program"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::ProgramCode;
    use std::collections::BTreeSet;

    #[test]
    fn default_catalog_has_the_seeds_thirteen_distinct_activities() {
        let catalog = default_catalog();
        assert_eq!(catalog.len(), 13);
        let ids: BTreeSet<_> = catalog.iter().map(|(id, _)| id.clone()).collect();
        let names: BTreeSet<_> = catalog
            .iter()
            .map(|(_, name)| name.to_lowercase())
            .collect();
        assert_eq!(ids.len(), 13);
        assert_eq!(names.len(), 13);
        assert!(
            catalog
                .iter()
                .all(|(_, name)| name.chars().count() <= MAX_NAME_LEN)
        );
    }

    #[test]
    fn pilot_programs_have_valid_distinct_codes() {
        let programs = pilot_programs();
        assert_eq!(programs.len(), 4);
        let codes: BTreeSet<_> = programs
            .iter()
            .map(|(code, _)| ProgramCode::parse(code).unwrap())
            .collect();
        assert_eq!(codes.len(), 4);
        assert!(programs.iter().any(|(_, name)| *name == "Dental Program"));
    }
}
