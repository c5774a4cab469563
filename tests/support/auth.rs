//! Development tokens for the API tests: one secret, signed and verified the way `cim token` and
//! `cim serve --jwt-dev-secret` do it.

use chrono::{TimeDelta, Utc};
use cim::http::auth::{
    AuthSettings, DEFAULT_AUDIENCE, DEFAULT_ISSUER, DevToken, Role, Verifier, dev_token,
};

/// The HS256 development secret every API test server verifies with.
pub const SECRET: &str = "test-secret-for-the-api-tests-0123456789";

/// A verifier that accepts tokens signed with [`SECRET`] for the default issuer and audience.
pub fn dev_verifier() -> Verifier {
    Verifier::from_settings(&AuthSettings {
        dev_secret: Some(SECRET.into()),
        issuer: DEFAULT_ISSUER.into(),
        audience: DEFAULT_AUDIENCE.into(),
        ..AuthSettings::default()
    })
    .unwrap()
}

/// A token valid for ten minutes, with no program groups: a coordinator's programs are those the
/// programs' own streams assign them (see `src/http/auth/assignments.rs`).
pub fn token(role: Role, subject: &str) -> String {
    signed(role, subject, Default::default())
}

/// A student's token that carries the standard name and e-mail claims, as a university's identity
/// provider issues them.
pub fn student_token_with_profile(
    subject: &str,
    given_name: &str,
    family_name: &str,
    email: &str,
) -> String {
    let profile = cim::http::auth::Profile {
        given_name: Some(given_name.to_owned()),
        family_name: Some(family_name.to_owned()),
        email: Some(email.to_owned()),
    };
    signed(Role::Student, subject, profile)
}

/// A staff member's token that carries their e-mail, as a university's identity provider issues it
/// (notifications take a staff member's address from there).
pub fn staff_token_with_email(role: Role, subject: &str, email: &str) -> String {
    let profile = cim::http::auth::Profile {
        email: Some(email.to_owned()),
        ..Default::default()
    };
    signed(role, subject, profile)
}

/// A development token for `subject` in `role`, valid for ten minutes, with `profile`'s claims.
fn signed(role: Role, subject: &str, profile: cim::http::auth::Profile) -> String {
    dev_token(&DevToken {
        secret: SECRET,
        issuer: DEFAULT_ISSUER,
        audience: DEFAULT_AUDIENCE,
        role,
        subject,
        programs: Vec::new(),
        now: Utc::now(),
        ttl: TimeDelta::minutes(10),
        profile,
    })
    .unwrap()
}
