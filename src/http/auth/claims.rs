//! Who a token says the caller is, read through a mapping that is configuration, not code: a
//! university's identity provider issues standard claims and group names, and the mapping turns
//! them into our student UID, role and program codes.
//!
//! - The student UID comes from a configurable claim (`sub`, or e.g. a Ladok UID attribute).
//! - `given_name`, `family_name` and `email` are the OpenID Connect standard claims.
//! - Roles and programs come from one configurable claim holding group (or app role) names: each
//!   name maps to a role, or to a program code (by exact name, or by a prefix followed by the
//!   code). A token whose groups map to several roles gets the most privileged one (admin,
//!   registrar, coordinator, student), so a coordinator who also studies is a coordinator here.
//!
//! The file is JSON (`CIM_AUTH_CLAIMS_FILE`); `docs/auth.md` has Keycloak- and Entra-style examples.
//! Without one, [`ClaimMapping::default`] reads what `cim token` writes.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;

use super::verify::TokenError;
use super::{Profile, Role};
use crate::domain::ProgramCode;

/// How claims map to a caller.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimMapping {
    /// The claim holding a student's Ladok UID (a UUID).
    #[serde(default = "sub")]
    pub student_uid_claim: String,
    /// The claim holding group or role names: an array of strings (or one string).
    #[serde(default = "groups")]
    pub groups_claim: String,
    /// Group name → role.
    #[serde(default)]
    pub roles: BTreeMap<String, Role>,
    /// Group name → program code.
    #[serde(default)]
    pub programs: BTreeMap<String, String>,
    /// A group name made of this prefix and a program code names that program.
    #[serde(default)]
    pub program_group_prefix: Option<String>,
}

fn sub() -> String {
    "sub".to_owned()
}

fn groups() -> String {
    "groups".to_owned()
}

/// The group names `cim token` writes and the default mapping reads.
pub fn dev_role_group(role: Role) -> String {
    let name = match role {
        Role::Student => "student",
        Role::Coordinator => "coordinator",
        Role::Registrar => "registrar",
        Role::Admin => "admin",
    };
    format!("cim-{name}")
}

/// The prefix of program groups in development tokens.
pub const DEV_PROGRAM_PREFIX: &str = "cim-program-";

impl Default for ClaimMapping {
    fn default() -> Self {
        let roles = [
            Role::Student,
            Role::Coordinator,
            Role::Registrar,
            Role::Admin,
        ]
        .into_iter()
        .map(|role| (dev_role_group(role), role))
        .collect();
        Self {
            student_uid_claim: sub(),
            groups_claim: groups(),
            roles,
            programs: BTreeMap::new(),
            program_group_prefix: Some(DEV_PROGRAM_PREFIX.to_owned()),
        }
    }
}

/// Who the claims say the caller is, before the programs' streams are asked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Identity {
    /// The student UID for a student, `sub` for staff.
    pub subject: String,
    pub role: Role,
    /// The program codes the token's groups name; `None` when it names none (then the programs'
    /// streams alone decide a coordinator's programs).
    pub program_codes: Option<BTreeSet<String>>,
    pub profile: Profile,
}

/// The mapping file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("the claim mapping is not valid JSON of the documented shape: {0}")]
    Shape(#[from] serde_json::Error),
    #[error("the claim mapping names the invalid program code {0:?}")]
    ProgramCode(String),
}

impl ClaimMapping {
    pub fn from_json(json: &str) -> Result<Self, MappingError> {
        let mapping: Self = serde_json::from_str(json)?;
        for code in mapping.programs.values() {
            ProgramCode::parse(code).map_err(|_| MappingError::ProgramCode(code.clone()))?;
        }
        Ok(mapping)
    }

    /// The caller the verified `claims` describe.
    pub fn identity(&self, claims: &Value) -> Result<Identity, TokenError> {
        let text = |name: &str| -> Option<String> {
            claims
                .get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let groups: Vec<String> = match claims.get(&self.groups_claim) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        let role = [
            Role::Admin,
            Role::Registrar,
            Role::Coordinator,
            Role::Student,
        ]
        .into_iter()
        .find(|role| groups.iter().any(|g| self.roles.get(g) == Some(role)))
        .ok_or(TokenError::Claims)?;
        let codes: BTreeSet<String> = groups
            .iter()
            .filter_map(|g| {
                self.programs.get(g).cloned().or_else(|| {
                    let prefix = self.program_group_prefix.as_deref()?;
                    g.strip_prefix(prefix).map(str::to_owned)
                })
            })
            .collect();
        let subject = match role {
            Role::Student => text(&self.student_uid_claim),
            _ => text("sub"),
        }
        .ok_or(TokenError::Claims)?;
        Ok(Identity {
            subject,
            role,
            program_codes: (!codes.is_empty()).then_some(codes),
            profile: Profile {
                given_name: text("given_name"),
                family_name: text("family_name"),
                email: text("email"),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_entra_style_token_maps_app_roles_and_a_ladok_uid_attribute() {
        let mapping = ClaimMapping::from_json(
            r#"{"student_uid_claim": "extension_ladokUid", "groups_claim": "roles",
                "roles": {"CIM.Student": "student", "CIM.Coordinator": "coordinator"},
                "programs": {"CIM.Program.Dental": "dental"}}"#,
        )
        .unwrap();
        let student = mapping
            .identity(
                &json!({"sub": "opaque-pairwise-id", "roles": ["CIM.Student"],
                "extension_ladokUid": "0190f3c2-0000-7000-8000-000000000001",
                "given_name": "Tess", "family_name": "Testsson"}),
            )
            .unwrap();
        assert_eq!(student.role, Role::Student);
        assert_eq!(student.subject, "0190f3c2-0000-7000-8000-000000000001");
        assert_eq!(student.profile.given_name.as_deref(), Some("Tess"));
        let coordinator = mapping
            .identity(&json!({"sub": "anna@ki.se",
                "roles": ["CIM.Student", "CIM.Coordinator", "CIM.Program.Dental", "Other"]}))
            .unwrap();
        assert_eq!(
            coordinator.role,
            Role::Coordinator,
            "the most privileged role"
        );
        assert_eq!(coordinator.subject, "anna@ki.se");
        assert_eq!(
            coordinator.program_codes,
            Some(BTreeSet::from(["dental".to_owned()]))
        );
        // No mapped role: refused.
        assert_eq!(
            mapping.identity(&json!({"sub": "x", "roles": ["Other"]})),
            Err(TokenError::Claims)
        );
    }

    #[test]
    fn a_keycloak_style_token_maps_group_paths_and_the_default_reads_cim_token() {
        let mapping = ClaimMapping::from_json(
            r#"{"groups_claim": "groups", "roles": {"/cim/registrar": "registrar"},
                "program_group_prefix": "/cim/programs/"}"#,
        )
        .unwrap();
        let registrar = mapping
            .identity(&json!({"sub": "reg-1", "groups": ["/cim/registrar"]}))
            .unwrap();
        assert_eq!(
            (registrar.role, registrar.program_codes),
            (Role::Registrar, None)
        );
        let default = ClaimMapping::default()
            .identity(&json!({"sub": "anna", "groups": ["cim-coordinator", "cim-program-nursing"]}))
            .unwrap();
        assert_eq!(
            default.program_codes,
            Some(BTreeSet::from(["nursing".to_owned()]))
        );
        assert!(ClaimMapping::from_json(r#"{"roles": {}, "surprise": 1}"#).is_err());
        assert!(ClaimMapping::from_json(r#"{"programs": {"g": "Not A Code!"}}"#).is_err());
    }
}
