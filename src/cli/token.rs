//! `cim token`: a development bearer token signed with the development secret, for trying the API
//! with curl. Refuses to run when no development secret is configured, so it cannot be used against
//! a production setup that verifies tokens from an identity provider's JWKS.

use crate::domain::ProgramCode;
use crate::http::auth::claims::ClaimMapping;
use crate::http::auth::{
    AuthSettings, DEFAULT_AUDIENCE, DEFAULT_ISSUER, DevToken, JwksTiming, MIN_SECRET_LEN, Role,
    dev_token,
};
use anyhow::{Context, bail};
use clap::Args;
use std::path::PathBuf;

/// How bearer tokens are checked. Shared by `cim serve` (verifying) and `cim token` (signing).
#[derive(Debug, Clone, Args)]
pub struct JwtArgs {
    /// HS256 secret (at least 32 bytes) for development tokens made by `cim token`. Development
    /// only: in production, verify the identity provider's tokens with --jwt-jwks-url instead.
    #[arg(long, env = "CIM_JWT_DEV_SECRET", hide_env_values = true)]
    pub jwt_dev_secret: Option<String>,
    /// A JSON Web Key Set file with the identity provider's public keys (RS256 or ES256 P-256).
    #[arg(long, env = "CIM_JWT_JWKS_FILE")]
    pub jwt_jwks_file: Option<PathBuf>,
    /// The identity provider's JWKS URL (its `jwks_uri`): fetched at start-up, again every
    /// --jwt-jwks-refresh-seconds, and at once when a token names an unknown key id.
    #[arg(long, env = "CIM_JWT_JWKS_URL")]
    pub jwt_jwks_url: Option<url::Url>,
    /// How old the fetched JWKS may get before it is fetched again.
    #[arg(long, env = "CIM_JWT_JWKS_REFRESH_SECONDS", default_value_t = 300)]
    pub jwt_jwks_refresh_seconds: u64,
    /// The `iss` every token must carry.
    #[arg(long, env = "CIM_JWT_ISSUER", default_value = DEFAULT_ISSUER)]
    pub jwt_issuer: String,
    /// The `aud` every token must carry.
    #[arg(long, env = "CIM_JWT_AUDIENCE", default_value = DEFAULT_AUDIENCE)]
    pub jwt_audience: String,
    /// A JSON file mapping the identity provider's claims and group names to the student UID,
    /// roles and program codes (docs/auth.md). Without it, the groups `cim token` writes.
    #[arg(long, env = "CIM_AUTH_CLAIMS_FILE")]
    pub auth_claims_file: Option<PathBuf>,
}

impl JwtArgs {
    /// The settings, with the claim mapping read from its file.
    pub fn settings(&self) -> anyhow::Result<AuthSettings> {
        let claims = match &self.auth_claims_file {
            None => ClaimMapping::default(),
            Some(file) => {
                let json = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                ClaimMapping::from_json(&json).with_context(|| format!("in {}", file.display()))?
            }
        };
        Ok(AuthSettings {
            dev_secret: self.dev_secret().map(str::to_owned),
            jwks_file: self.jwt_jwks_file.clone(),
            jwks_url: self.jwt_jwks_url.clone(),
            jwks_timing: JwksTiming {
                refresh_every: std::time::Duration::from_secs(self.jwt_jwks_refresh_seconds),
                ..JwksTiming::default()
            },
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
            claims,
        })
    }

    fn dev_secret(&self) -> Option<&str> {
        self.jwt_dev_secret.as_deref().filter(|s| !s.is_empty())
    }
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub jwt: JwtArgs,
    /// The caller's role.
    #[arg(long, value_enum)]
    pub role: Role,
    /// The `sub` claim: a student's Ladok UID (a UUID), or a staff member's id.
    #[arg(long)]
    pub subject: String,
    /// The code of a program the coordinator coordinates (repeat for several), written as a program
    /// group. Without any, the programs' own streams alone decide.
    #[arg(long = "program")]
    pub programs: Vec<ProgramCode>,
    /// Lifetime of the token.
    #[arg(long, default_value_t = 60)]
    pub ttl_minutes: u32,
}

pub fn run(args: TokenArgs) -> anyhow::Result<()> {
    let Some(secret) = args.jwt.dev_secret() else {
        bail!(
            "no development secret is configured: set CIM_JWT_DEV_SECRET (or --jwt-dev-secret) to the \
             secret `cim serve` uses; `cim token` only signs development tokens"
        );
    };
    if secret.len() < MIN_SECRET_LEN {
        bail!("the development secret must be at least {MIN_SECRET_LEN} bytes long");
    }
    if args.role == Role::Student && args.subject.parse::<uuid::Uuid>().is_err() {
        bail!("a student's --subject is their Ladok UID, which is a UUID");
    }
    if args.role != Role::Coordinator && !args.programs.is_empty() {
        bail!("--program is for coordinators only");
    }
    let token = dev_token(&DevToken {
        secret,
        issuer: &args.jwt.jwt_issuer,
        audience: &args.jwt.jwt_audience,
        role: args.role,
        subject: &args.subject,
        programs: args.programs.iter().map(ToString::to_string).collect(),
        now: chrono::Utc::now(),
        ttl: chrono::Duration::minutes(i64::from(args.ttl_minutes)),
        profile: Default::default(),
    })
    .context("cannot sign the token")?;
    println!("{token}");
    Ok(())
}
