//! Who is calling: bearer JWTs as an OpenID Connect provider issues them.
//!
//! Claims are read through a configured mapping ([`claims`]): the student UID from a configurable
//! claim, the names and e-mail from the standard claims, the role and program codes from group
//! names. A coordinator's programs are those the programs' own streams assign them now
//! ([`assignments`]), narrowed to the codes the token names when it names any. Verification is in
//! [`verify`]; the [`Caller`] extractor answers 401 with a `WWW-Authenticate: Bearer` challenge
//! when the token is missing or refused.
//!
//! What a caller may *do* is decided by the routes (see `http::access`): the token only says who
//! the caller is. An address that fails too often is refused for a while ([`limit`]).
//!
//! [`Authenticator`] reads the caller from a request's headers; the `Caller` extractor
//! (`http::extract`) hands it the parts of the application state it needs. So this module knows
//! nothing of the state, which is built from it (the verifier, the limiter), and imports of `http`
//! only `problem` and `metrics`.

mod assignments;
pub mod claims;
mod jwks;
pub mod limit;
mod verify;

pub use jwks::JwksTiming;
pub use limit::{AuthLimitSettings, AuthLimiter};
pub use verify::{AuthSettings, KeyError, MIN_SECRET_LEN, TokenError, Verifier};

use super::metrics::Metrics;
use super::problem::Problem;
use crate::domain::{ProgramId, StaffId, StudentUid};
use crate::store::ActorRole;
use axum::http::header;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::collections::BTreeSet;
use std::time::Instant;

/// Default `iss` of development tokens and of the verifier.
pub const DEFAULT_ISSUER: &str = "cim-dev";
/// Default `aud`.
pub const DEFAULT_AUDIENCE: &str = "cim";

/// The roles of `domain.md` that call the API (`system` never does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Student,
    Coordinator,
    Registrar,
    Admin,
}

impl Role {
    pub fn actor_role(self) -> ActorRole {
        match self {
            Role::Student => ActorRole::Student,
            Role::Coordinator => ActorRole::Coordinator,
            Role::Registrar => ActorRole::Registrar,
            Role::Admin => ActorRole::Admin,
        }
    }
}

/// The claims `cim token` writes: the shape an OpenID Connect provider issues, read through
/// [`claims::ClaimMapping::default`].
#[derive(Debug, Clone, Serialize)]
struct DevClaims {
    sub: String,
    groups: Vec<String>,
    iss: String,
    aud: String,
    exp: i64,
    nbf: i64,
    iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    family_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
}

/// The authenticated caller of a request.
#[derive(Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub`, as it is recorded as the actor of events.
    pub subject: String,
    pub role: Role,
    /// The programs a coordinator coordinates (empty for everyone else).
    pub programs: BTreeSet<ProgramId>,
    /// Who the identity provider says the caller is. Personal: never in `Debug` or logs.
    pub profile: Profile,
}

/// The caller's names and e-mail from the token's standard claims, when it carries them.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("subject", &self.subject)
            .field("role", &self.role)
            .field("programs", &self.programs)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Profile { .. }")
    }
}

impl Caller {
    /// The student's Ladok UID, for student callers (checked to be a UUID when the token was read).
    pub fn student_uid(&self) -> Option<StudentUid> {
        (self.role == Role::Student)
            .then(|| self.subject.parse().ok())
            .flatten()
    }

    /// The staff id of a coordinator, registrar or admin.
    pub fn staff_id(&self) -> Option<StaffId> {
        (self.role != Role::Student)
            .then(|| StaffId::parse(&self.subject).ok())
            .flatten()
    }

    pub fn coordinates(&self, program: ProgramId) -> bool {
        self.role == Role::Coordinator && self.programs.contains(&program)
    }

    /// Checks what the signature cannot: that the subject has the shape its role needs. The
    /// programs are filled in by the extractor, from the programs' streams.
    fn from_identity(identity: claims::Identity) -> Result<Self, TokenError> {
        let caller = Caller {
            subject: identity.subject,
            role: identity.role,
            programs: BTreeSet::new(),
            profile: identity.profile,
        };
        let subject_ok = match caller.role {
            Role::Student => caller.student_uid().is_some(),
            _ => caller.staff_id().is_some(),
        };
        if subject_ok {
            Ok(caller)
        } else {
            Err(TokenError::Claims)
        }
    }
}

/// What checking a request's credentials needs: the token keys, the limit on failures, the
/// database (a coordinator's programs) and the counters of refusals.
#[derive(Debug, Clone, Copy)]
pub struct Authenticator<'a> {
    pub verifier: &'a Verifier,
    pub limiter: &'a AuthLimiter,
    pub pool: &'a PgPool,
    pub metrics: &'a Metrics,
}

impl Authenticator<'_> {
    /// The caller of a request, or the 401 (429 for a limited address) that refuses it.
    pub async fn caller(&self, parts: &Parts) -> Result<Caller, Problem> {
        let limiter = self.limiter;
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            // Not counted against the address: it costs nothing to refuse, and a web client that
            // calls before its user has signed in must not lock out every user behind the same
            // campus NAT. Counted in the metrics, like every refusal.
            self.metrics.record_auth_failure("token_missing");
            return Err(Problem::unauthorized(
                "token_missing",
                "this resource needs a bearer token (Authorization: Bearer <token>)",
            ));
        };
        let client = limiter.client(parts);
        // Checked before the token is even read: a limited address costs no signature check.
        if let Some(wait) = limiter.refused(client, Instant::now()) {
            self.metrics.record_auth_refused();
            return Err(Problem::too_many_authentication_failures(wait));
        }
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                self.failed(
                    client,
                    Problem::unauthorized(
                        "token_malformed",
                        "the Authorization header must be \"Bearer <token>\"",
                    ),
                )
            })?;
        let verified = self.verifier.verify::<serde_json::Value>(token).await;
        let identity = verified
            .and_then(|claims| self.verifier.claims().identity(&claims))
            .map_err(|e| self.failed(client, Problem::unauthorized(e.code(), e.to_string())))?;
        let program_codes = identity.program_codes.clone();
        let caller = Caller::from_identity(identity)
            .map_err(|e| self.failed(client, Problem::unauthorized(e.code(), e.to_string())))?;
        with_programs(self.pool, caller, program_codes.as_ref()).await
    }

    /// The caller a console session holds (`console::session`): the identity it was signed in
    /// with, its programs read from the programs' streams now, as for a token, so an unassigned
    /// coordinator loses a program at the next page and not at the next sign-in.
    pub async fn caller_of(pool: &PgPool, identity: claims::Identity) -> Result<Caller, Problem> {
        let program_codes = identity.program_codes.clone();
        let caller = Caller::from_identity(identity)
            .map_err(|e| Problem::unauthorized(e.code(), e.to_string()))?;
        with_programs(pool, caller, program_codes.as_ref()).await
    }

    /// Counts a refused authentication against its client and in the metrics; returns the refusal.
    fn failed(&self, client: limit::ClientKey, refusal: Problem) -> Problem {
        self.metrics.record_auth_failure(&refusal.code);
        if self.limiter.record_failure(client, Instant::now()) == limit::Recorded::LimitReached {
            let settings = self.limiter.settings();
            // Which address is never logged (an IP address is personal data); the metrics count it.
            tracing::warn!(
                max_failures = settings.max_failures,
                window_s = settings.window.as_secs(),
                "a client address used up its budget of failed authentications; it is refused with 429 until its window ends"
            );
        }
        refusal
    }
}

/// What a development token says.
#[derive(Debug, Clone)]
pub struct DevToken<'a> {
    pub secret: &'a str,
    pub issuer: &'a str,
    pub audience: &'a str,
    pub role: Role,
    pub subject: &'a str,
    /// Program codes, written as program groups (none: the programs' streams alone decide).
    pub programs: Vec<String>,
    pub now: DateTime<Utc>,
    pub ttl: chrono::Duration,
    /// The standard name and e-mail claims to put in (none: left out).
    pub profile: Profile,
}

/// Signs a development token with the shared HS256 secret (`cim token`, tests).
pub fn dev_token(t: &DevToken<'_>) -> Result<String, jsonwebtoken::errors::Error> {
    let now = t.now.timestamp();
    let mut groups = vec![claims::dev_role_group(t.role)];
    groups.extend(
        t.programs
            .iter()
            .map(|code| format!("{}{code}", claims::DEV_PROGRAM_PREFIX)),
    );
    let claims = DevClaims {
        sub: t.subject.to_owned(),
        groups,
        iss: t.issuer.to_owned(),
        aud: t.audience.to_owned(),
        exp: now + t.ttl.num_seconds(),
        nbf: now,
        iat: now,
        given_name: t.profile.given_name.clone(),
        family_name: t.profile.family_name.clone(),
        email: t.profile.email.clone(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(t.secret.as_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-development-secret-of-32-bytes!";

    fn verifier() -> Verifier {
        Verifier::from_settings(&AuthSettings {
            dev_secret: Some(SECRET.into()),
            issuer: DEFAULT_ISSUER.into(),
            audience: DEFAULT_AUDIENCE.into(),
            ..AuthSettings::default()
        })
        .unwrap()
    }

    fn token(role: Role, subject: &str, ttl_s: i64, secret: &str) -> String {
        dev_token(&DevToken {
            secret,
            issuer: DEFAULT_ISSUER,
            audience: DEFAULT_AUDIENCE,
            role,
            subject,
            programs: vec![],
            now: Utc::now(),
            ttl: chrono::Duration::seconds(ttl_s),
            profile: Profile::default(),
        })
        .unwrap()
    }

    fn check(token: &str) -> Result<Caller, TokenError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let verifier = verifier();
        runtime
            .block_on(verifier.verify::<serde_json::Value>(token))
            .and_then(|claims| verifier.claims().identity(&claims))
            .and_then(Caller::from_identity)
    }

    #[test]
    fn a_dev_token_round_trips() {
        let uid = uuid::Uuid::now_v7().to_string();
        let caller = check(&token(Role::Student, &uid, 60, SECRET)).unwrap();
        assert_eq!(caller.role, Role::Student);
        assert_eq!(caller.student_uid().unwrap().to_string(), uid);
    }

    #[test]
    fn bad_tokens_are_refused_with_their_reason() {
        let uid = uuid::Uuid::now_v7().to_string();
        assert_eq!(
            check(&token(Role::Student, &uid, -600, SECRET)),
            Err(TokenError::Expired)
        );
        let other = "another-secret-that-is-32-bytes-long";
        assert_eq!(
            check(&token(Role::Student, &uid, 60, other)),
            Err(TokenError::Signature)
        );
        // A student's subject must be a Ladok UID.
        assert_eq!(
            check(&token(Role::Student, "bob", 60, SECRET)),
            Err(TokenError::Claims)
        );
        assert_eq!(check("not a token"), Err(TokenError::Malformed));
        let none = format!(
            "eyJhbGciOiJub25lIn0.{}.",
            token(Role::Admin, "root", 60, SECRET)
                .split('.')
                .nth(1)
                .unwrap()
        );
        assert_eq!(check(&none), Err(TokenError::Algorithm));
        let refused = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(Verifier::refuse_all().verify::<serde_json::Value>(&token(
                Role::Admin,
                "a",
                60,
                SECRET,
            )));
        assert_eq!(refused.unwrap_err(), TokenError::Signature);
    }
}

/// A coordinator's programs: those whose streams assign them now, narrowed to the codes the
/// identity names (when it names any). Everyone else has none.
async fn with_programs(
    pool: &PgPool,
    mut caller: Caller,
    program_codes: Option<&BTreeSet<String>>,
) -> Result<Caller, Problem> {
    if caller.role == Role::Coordinator {
        let assigned = assignments::assigned_programs(pool, &caller.subject)
            .await
            .map_err(|e| Problem::internal(&e))?;
        caller.programs = assigned
            .into_iter()
            .filter(|(_, code)| program_codes.is_none_or(|c| c.contains(code)))
            .map(|(id, _)| id)
            .collect();
    }
    Ok(caller)
}

/// A caller the web console has already authenticated from its session (`console::session`),
/// attached to the requests the console sends the API inside this process. Only code in this
/// process can put an extension on a request: a request from the network never carries one.
#[derive(Debug, Clone)]
pub struct SignedIn(pub Caller);
