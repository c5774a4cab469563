//! The Open Badges 3.0 `OpenBadgeCredential` of an approved certificate, as plain JSON built from
//! the `CertificateApproved` event, the program's rules as they applied, and the student's details.
//! A pure function of its inputs: the same certificate gives the same credential (and, Ed25519
//! being deterministic, the same signature), so nothing of it needs to be stored.
//!
//! Where the model has a place for what the certificate says:
//! - the issuer is the university's `Profile` (`issuer::IssuerConfig`);
//! - the achievement is "Certificate of International Merits" of the program, with the program's
//!   rules as they applied as its `criteria.narrative`;
//! - the three activities and the final reflection are `evidence` (what the award rests on);
//! - `validFrom` and `awardedDate` are the approval date (Stockholm midnight);
//! - the subject is a pseudonymous `urn:uuid:` derived from the certificate, identified by the
//!   student's name and a salted hash of their e-mail (the holder shows these to whom they choose;
//!   nothing of it is published by the service).

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Europe::Stockholm;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::issuer::IssuerConfig;
use crate::domain::portfolio::{CertificateApproved, FinalFormat, ReflectionFormat};
use crate::domain::rules::ProgramRules;

/// The namespace of the ids derived from a certificate id.
const NAMESPACE: Uuid = Uuid::from_u128(0x0b3c_5a1e_7d24_4f6b_8e91_c2a0_5d7f_3e48);

/// The credential's id (a UUID derived from the certificate's): the last part of its URL.
pub fn credential_id(certificate: Uuid) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("credential:{certificate}").as_bytes())
}

/// Where a credential's status stands in the published status list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusEntry {
    pub list: i32,
    pub index: i32,
}

/// Who the credential is about, as the holder may show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub name: String,
    pub email: String,
    /// Salt of the e-mail's hash: derived, so the credential is the same each time.
    pub salt: String,
}

pub fn credential_url(config: &IssuerConfig, id: Uuid) -> String {
    format!("{}/credentials/{id}", config.public_url)
}

pub fn status_list_url(config: &IssuerConfig, list: i32) -> String {
    format!("{}/credentials/status/{list}", config.public_url)
}

/// The approval date as an instant: midnight in Stockholm.
pub fn valid_from(date: NaiveDate) -> String {
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    Stockholm
        .from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.to_rfc3339())
        .unwrap_or_else(|| format!("{date}T00:00:00Z"))
}

/// The credential (without proof: the VC-JWT around it is the proof).
pub fn credential(
    config: &IssuerConfig,
    approved: &CertificateApproved,
    rules: &ProgramRules,
    holder: &Holder,
    status: StatusEntry,
) -> Value {
    let certificate = *approved.certificate_id.as_uuid();
    let id = credential_url(config, credential_id(certificate));
    let subject = format!(
        "urn:uuid:{}",
        Uuid::new_v5(&NAMESPACE, format!("subject:{certificate}").as_bytes())
    );
    let hash = Sha256::digest(format!("{}{}", holder.email, holder.salt).as_bytes());
    let mut evidence: Vec<Value> = approved
        .activities
        .iter()
        .map(|a| {
            json!({
                "type": ["Evidence"],
                "name": a.item_name,
                "genre": "International activity",
                "description": format!(
                    "{} to {}, with a {} reflection",
                    a.started_on, a.ended_on, reflection(a.reflection_format)
                ),
            })
        })
        .collect();
    evidence.push(json!({
        "type": ["Evidence"],
        "name": "Final reflection",
        "genre": "Reflection",
        "description": format!(
            "A {} final reflection in English on the competencies developed and how they serve in the workplace",
            match approved.final_format { FinalFormat::Written => "written", FinalFormat::Oral => "oral" }
        ),
    }));
    let list_url = status_list_url(config, status.list);
    json!({
        "@context": [
            "https://www.w3.org/ns/credentials/v2",
            "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
        ],
        "id": id,
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": "Certificate of International Merits",
        "issuer": {
            "id": config.issuer_id(),
            "type": ["Profile"],
            "name": config.name,
        },
        "validFrom": valid_from(approved.decided_on),
        "awardedDate": valid_from(approved.decided_on),
        "credentialSubject": {
            "id": subject,
            "type": ["AchievementSubject"],
            "identifier": [
                {
                    "type": "IdentityObject",
                    "identityType": "emailAddress",
                    "hashed": true,
                    "identityHash": format!("sha256${}", hex::encode(hash)),
                    "salt": holder.salt,
                },
                {
                    "type": "IdentityObject",
                    "identityType": "name",
                    "hashed": false,
                    "identityHash": holder.name,
                }
            ],
            "achievement": {
                "id": format!("{}/achievements/cim/{}", config.public_url, approved.program_code.as_str()),
                "type": ["Achievement"],
                "achievementType": "Certificate",
                "name": "Certificate of International Merits",
                "description": format!(
                    "Global competence shown at home in the program {} ({}): international activities, a reflection on each, and a final reflection in English, approved by the program.",
                    approved.program_name, approved.program_code.as_str()
                ),
                "criteria": { "narrative": criteria(rules) },
            },
        },
        "evidence": evidence,
        "credentialStatus": {
            "id": format!("{list_url}#{}", status.index),
            "type": "BitstringStatusListEntry",
            "statusPurpose": "revocation",
            "statusListIndex": status.index.to_string(),
            "statusListCredential": list_url,
        },
    })
}

fn reflection(format: ReflectionFormat) -> &'static str {
    match format {
        ReflectionFormat::Written => "written",
        ReflectionFormat::Oral => "recorded (podcast or video)",
        ReflectionFormat::Instagram => "Instagram",
    }
}

/// The rules as they applied, in Markdown.
pub fn criteria(rules: &ProgramRules) -> String {
    let distinct = if rules.allow_repeat_items {
        "from the program's catalog"
    } else {
        "from the program's catalog, each a different one"
    };
    format!(
        "- {n} international activities {distinct}.\n\
         - A reflection on each: a written report of {w0}-{w1} words, a podcast or video of {o0}-{o1} seconds, or an Instagram report of at least {ip} posts and {i0}-{i1} words.\n\
         - A final reflection in English on the competencies developed and how they serve in the workplace: {f0}-{f1} words written, or at least {fo} seconds recorded, submitted no later than {d} days before the end of studies.\n\
         - Every reflection and the application approved by the program's coordinator.",
        n = rules.required_activities,
        w0 = rules.written.min,
        w1 = rules.written.max,
        o0 = rules.oral.min_s,
        o1 = rules.oral.max_s,
        ip = rules.instagram.min_posts,
        i0 = rules.instagram.words.min,
        i1 = rules.instagram.words.max,
        f0 = rules.final_written.min,
        f1 = rules.final_written.max,
        fo = rules.final_oral_min_s,
        d = rules.final_deadline_offset_days,
    )
}

/// The claims of the VC-JWT around `credential`: the credential itself, plus `iss`, `jti`, `nbf`
/// and `sub` taken from it, as Open Badges 3.0 asks.
pub fn jwt_claims(credential: &Value, valid_from: i64) -> Value {
    let mut claims = credential.clone();
    claims["iss"] = credential["issuer"]["id"].clone();
    claims["jti"] = credential["id"].clone();
    claims["sub"] = credential["credentialSubject"]["id"].clone();
    claims["nbf"] = json!(valid_from);
    claims
}
