//! Issuing and verifying this service's credentials: what the routes call.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::badge::{self, Holder};
use super::issuer::{IssuerConfig, IssuerKey};
use super::pdf::{PrintableCertificate, PrintedActivity};
use super::status;
use crate::app::CommandHandler;
use crate::crypto::MasterKey;
use crate::domain::portfolio::Phase;
use crate::domain::program::{ProgramState, evolve};
use crate::domain::rules::ProgramRules;
use crate::domain::{PortfolioId, stockholm_date};
use crate::log::codec::decode_program;

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("the portfolio has no approved certificate")]
    NotCertified,
    #[error("the certificate was revoked")]
    Revoked,
    #[error("the student's personal data was erased; the credential can no longer be made")]
    Erased,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the log cannot be read: {0}")]
    Log(String),
    #[error("signing failed: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
}

/// A signed credential, what the service recorded of its issue, and what the printable
/// certificate shows.
#[derive(Debug, Clone)]
pub struct SignedCredential {
    pub jwt: String,
    pub credential: Value,
    pub issued: status::Issued,
    pub approved: crate::domain::portfolio::CertificateApproved,
    pub holder_name: String,
}

/// The credential of a portfolio's certificate, signed; its issue recorded the first time.
pub async fn issue(
    commands: &CommandHandler,
    master: &MasterKey,
    config: &IssuerConfig,
    portfolio: PortfolioId,
) -> Result<SignedCredential, CredentialError> {
    let (state, _) = commands
        .load_portfolio(portfolio)
        .await
        .map_err(|e| CredentialError::Log(e.to_string()))?;
    let opened = state.opened().ok_or(CredentialError::NotCertified)?;
    let approved = opened
        .certificate
        .clone()
        .ok_or(CredentialError::NotCertified)?;
    if matches!(opened.phase, Phase::Revoked) {
        return Err(CredentialError::Revoked);
    }
    let (Some(student), Some(holder)) = (&opened.student, &approved.personal) else {
        return Err(CredentialError::Erased);
    };
    let certificate = *approved.certificate_id.as_uuid();
    let rules = rules_as_applied(commands, &approved).await?;
    let pool = commands.store().pool();
    let key = IssuerKey::derive(master, config);
    key.publish(pool).await?;
    let issued = status::issue(
        pool,
        certificate,
        badge::credential_id(certificate),
        *portfolio.as_uuid(),
    )
    .await?;
    let salt = hex::encode(&master.derive(&format!("credential salt {certificate}"))[..16]);
    let holder_name = holder.name.full_name();
    let credential = badge::credential(
        config,
        &approved,
        &rules,
        &Holder {
            name: holder_name.clone(),
            email: student.email.as_str().to_owned(),
            salt,
        },
        badge::StatusEntry {
            list: issued.status_list,
            index: issued.status_index,
        },
    );
    let nbf = DateTime::parse_from_rfc3339(&badge::valid_from(approved.decided_on))
        .map(|t| t.timestamp())
        .unwrap_or_default();
    let jwt = key.sign(&badge::jwt_claims(&credential, nbf))?;
    Ok(SignedCredential {
        jwt,
        credential,
        issued,
        approved,
        holder_name,
    })
}

/// The printable certificate of an issued credential: what it says, with the link to its public
/// verification page (also as the QR code).
pub fn printable(config: &IssuerConfig, signed: &SignedCredential) -> PrintableCertificate {
    let a = &signed.approved;
    PrintableCertificate {
        university: config.name.clone(),
        student_name: signed.holder_name.clone(),
        program_name: a.program_name.clone(),
        program_code: a.program_code.clone(),
        activities: a
            .activities
            .iter()
            .map(|x| PrintedActivity {
                name: x.item_name.clone(),
                started_on: x.started_on,
                ended_on: x.ended_on,
            })
            .collect(),
        final_format: a.final_format,
        approved_on: a.decided_on,
        certificate_id: a.certificate_id,
        verify_url: badge::credential_url(config, signed.issued.credential_id),
    }
}

/// The program's rules in force on the day of the approval: the program stream folded up to the
/// end of that Stockholm day.
async fn rules_as_applied(
    commands: &CommandHandler,
    approved: &crate::domain::portfolio::CertificateApproved,
) -> Result<ProgramRules, CredentialError> {
    let events = commands
        .store()
        .read_stream(&approved.program_id.stream_id(), 0)
        .await
        .map_err(|e| CredentialError::Log(e.to_string()))?;
    let mut state = ProgramState::default();
    for event in events
        .iter()
        .take_while(|e| stockholm_date(e.recorded_at) <= approved.decided_on)
    {
        let decoded = decode_program(event).map_err(|e| CredentialError::Log(e.to_string()))?;
        state = evolve(state, &decoded);
    }
    Ok(state
        .registered()
        .map(|p| p.rules.clone())
        .unwrap_or_default())
}

/// What a verifier learns of a credential this service issued: nothing personal.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Verification {
    /// The signature is the issuer's, by one of its published keys, and the claims agree with
    /// the credential (`iss`, `jti`, `nbf`, `sub`).
    pub authentic: bool,
    /// The certificate was revoked after the credential was issued.
    pub revoked: bool,
    /// `valid` (authentic and not revoked), `revoked`, or `not_authentic`.
    pub status: String,
    /// Why not authentic, as a code: `malformed`, `unknown_key`, `bad_signature`, `claims_mismatch`,
    /// `unknown_credential`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub achievement: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<String>,
}

impl Verification {
    fn refused(reason: &str) -> Self {
        Self {
            authentic: false,
            revoked: false,
            status: "not_authentic".into(),
            reason: Some(reason.into()),
            credential_id: None,
            issuer: None,
            achievement: None,
            valid_from: None,
        }
    }
}

/// Checks a VC-JWT against this service's published keys and its status list.
pub async fn verify(
    pool: &sqlx::PgPool,
    config: &IssuerConfig,
    jws: &str,
) -> Result<Verification, sqlx::Error> {
    let Ok(header) = jsonwebtoken::decode_header(jws.trim()) else {
        return Ok(Verification::refused("malformed"));
    };
    let jwk: Option<Value> = sqlx::query_scalar!(
        "SELECT public_jwk FROM issuer_keys WHERE kid = $1",
        header.kid.unwrap_or_default()
    )
    .fetch_optional(pool)
    .await?;
    let Some(key) = jwk
        .and_then(|j| serde_json::from_value::<jsonwebtoken::jwk::Jwk>(j).ok())
        .and_then(|j| jsonwebtoken::DecodingKey::from_jwk(&j).ok())
    else {
        return Ok(Verification::refused("unknown_key"));
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = true;
    validation.set_issuer(&[config.issuer_id()]);
    let Ok(data) = jsonwebtoken::decode::<Value>(jws.trim(), &key, &validation) else {
        return Ok(Verification::refused("bad_signature"));
    };
    let c = &data.claims;
    let nbf = DateTime::parse_from_rfc3339(c["validFrom"].as_str().unwrap_or_default())
        .map(|t| t.timestamp())
        .ok();
    let agree = c["iss"] == c["issuer"]["id"]
        && c["jti"] == c["id"]
        && c["sub"] == c["credentialSubject"]["id"]
        && nbf.is_some()
        && c["nbf"].as_i64() == nbf;
    if !agree {
        return Ok(Verification::refused("claims_mismatch"));
    }
    let credential_id = c["id"]
        .as_str()
        .and_then(|id| id.rsplit('/').next())
        .and_then(|id| id.parse::<Uuid>().ok());
    let found = match credential_id {
        Some(id) => status::by_credential(pool, id).await?,
        None => None,
    };
    let Some((_, revoked)) = found else {
        return Ok(Verification::refused("unknown_credential"));
    };
    Ok(Verification {
        authentic: true,
        revoked,
        status: if revoked { "revoked" } else { "valid" }.into(),
        reason: None,
        credential_id,
        issuer: c["issuer"]["name"].as_str().map(str::to_owned),
        achievement: c["credentialSubject"]["achievement"]["name"]
            .as_str()
            .map(str::to_owned),
        valid_from: c["validFrom"].as_str().map(str::to_owned),
    })
}

/// The signed status list `list` as of `now`.
pub async fn status_list(
    pool: &sqlx::PgPool,
    master: &MasterKey,
    config: &IssuerConfig,
    list: i32,
    now: DateTime<Utc>,
) -> Result<String, CredentialError> {
    let credential = status::list_credential(pool, config, list, now).await?;
    let key = IssuerKey::derive(master, config);
    key.publish(pool).await?;
    let mut claims = credential.clone();
    claims["iss"] = credential["issuer"].clone();
    claims["jti"] = credential["id"].clone();
    claims["nbf"] = serde_json::json!(now.timestamp());
    Ok(key.sign(&claims)?)
}
