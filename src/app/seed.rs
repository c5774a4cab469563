//! Seeding the four pilot programs with the default catalog.
//!
//! Program ids and command ids are derived from the program codes (UUID v5), so seeding twice, or from
//! two processes at once, registers each program and each catalog item exactly once.

use super::{CommandContext, CommandError, CommandHandler};
use crate::domain::program::{default_catalog, pilot_programs};
use crate::domain::values::NonEmptyText;
use crate::domain::{ProgramCode, ProgramCommand, ProgramId};
use crate::store::ActorRole;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Namespace of the derived ids; fixed forever, or reseeding would create new programs.
const SEED_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a9e_4b7d_4c3a_9e8f_0c1d_2e3f_4a5b);

/// The id a pilot program gets when seeded, derived from its code.
pub fn pilot_program_id(code: &str) -> ProgramId {
    ProgramId::new(Uuid::new_v5(
        &SEED_NAMESPACE,
        format!("program/{code}").as_bytes(),
    ))
}

/// What seeding did, for the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeededProgram {
    pub id: ProgramId,
    pub code: &'static str,
    pub name: &'static str,
    pub catalog_items: usize,
}

/// Registers the pilot programs and gives each the default catalog. Safe to run again.
pub async fn seed_pilot_programs(
    handler: &CommandHandler,
    actor_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<SeededProgram>, CommandError> {
    let mut seeded = Vec::new();
    for (code, name) in pilot_programs() {
        let id = pilot_program_id(code);
        let mut commands = vec![ProgramCommand::RegisterProgram {
            id,
            name: NonEmptyText::parse(name, "name", 200).expect("pilot program names are valid"),
            code: ProgramCode::parse(code).expect("pilot program codes are valid"),
        }];
        let catalog = default_catalog();
        for (item, item_name) in &catalog {
            commands.push(ProgramCommand::AddCatalogItem {
                item: item.clone(),
                name: NonEmptyText::parse(item_name, "name", 200).expect("catalog names are valid"),
            });
        }
        for (step, command) in commands.into_iter().enumerate() {
            let ctx = CommandContext {
                actor_id: actor_id.to_owned(),
                role: ActorRole::Admin,
                correlation_id: Uuid::now_v7(),
                command_id: Uuid::new_v5(&SEED_NAMESPACE, format!("seed/{code}/{step}").as_bytes()),
                now,
            };
            handler.program(id, command, &ctx).await?;
        }
        seeded.push(SeededProgram {
            id,
            code,
            name,
            catalog_items: catalog.len(),
        });
    }
    Ok(seeded)
}
