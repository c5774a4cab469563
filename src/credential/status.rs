//! Which credentials were issued, where each stands in the published status list, and the list
//! itself: a W3C Bitstring Status List credential (`BitstringStatusListCredential`, purpose
//! `revocation`) whose bit for a credential is set once its certificate is revoked. Verifiers
//! fetch the list from `GET /credentials/status/{list}`; the list says nothing about who holds
//! which index.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::badge::{StatusEntry, status_list_url};
use super::issuer::IssuerConfig;

/// Entries per list: 131,072 bits (16 KiB), the specification's minimum, so that one credential's
/// bit hides among many.
pub const LIST_SIZE: i64 = 131_072;

/// What the service records of an issued credential: ids and its place in the status list, nothing
/// personal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Issued {
    pub certificate_id: Uuid,
    pub credential_id: Uuid,
    pub status_list: i32,
    pub status_index: i32,
    pub issued_at: DateTime<Utc>,
}

fn record(
    certificate_id: Uuid,
    credential_id: Uuid,
    sequence: i64,
    issued_at: DateTime<Utc>,
) -> Issued {
    let e = entry(sequence);
    Issued {
        certificate_id,
        credential_id,
        status_list: e.list,
        status_index: e.index,
        issued_at,
    }
}

fn entry(sequence: i64) -> StatusEntry {
    StatusEntry {
        list: i32::try_from(sequence / LIST_SIZE + 1).unwrap_or(i32::MAX),
        index: i32::try_from(sequence % LIST_SIZE).unwrap_or(0),
    }
}

/// Records the issue of a certificate's credential (once: a second download finds the first
/// record) and returns its status entry.
pub async fn issue(
    pool: &PgPool,
    certificate_id: Uuid,
    credential_id: Uuid,
    portfolio_id: Uuid,
) -> Result<Issued, sqlx::Error> {
    sqlx::query!(
        "INSERT INTO issued_credentials (certificate_id, credential_id, portfolio_id)
         VALUES ($1, $2, $3) ON CONFLICT (certificate_id) DO NOTHING",
        certificate_id,
        credential_id,
        portfolio_id,
    )
    .execute(pool)
    .await?;
    Ok(issued(pool, certificate_id)
        .await?
        .expect("inserted or there before"))
}

/// The record of a certificate's credential, if one was issued.
pub async fn issued(pool: &PgPool, certificate_id: Uuid) -> Result<Option<Issued>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT certificate_id, credential_id, sequence, issued_at FROM issued_credentials
         WHERE certificate_id = $1",
        certificate_id
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| record(r.certificate_id, r.credential_id, r.sequence, r.issued_at)))
}

/// A credential's certificate and whether it is revoked, by the credential's id.
pub async fn by_credential(
    pool: &PgPool,
    credential_id: Uuid,
) -> Result<Option<(Issued, bool)>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT i.certificate_id, i.credential_id, i.sequence, i.issued_at,
                  COALESCE(c.status = 'revoked', false) AS "revoked!"
           FROM issued_credentials i
           LEFT JOIN rm_certificates c ON c.certificate_id = i.certificate_id
           WHERE i.credential_id = $1"#,
        credential_id
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| {
        let issued = record(r.certificate_id, r.credential_id, r.sequence, r.issued_at);
        (issued, r.revoked)
    }))
}

/// The unsigned status list credential of list `list` (1-based) as of `now`: the bits of the
/// revoked certificates' credentials set. The revocations are the registrar read model's.
pub async fn list_credential(
    pool: &PgPool,
    config: &IssuerConfig,
    list: i32,
    now: DateTime<Utc>,
) -> Result<Value, sqlx::Error> {
    let first = (i64::from(list) - 1) * LIST_SIZE;
    let revoked: Vec<i64> = sqlx::query_scalar!(
        "SELECT i.sequence FROM issued_credentials i
         JOIN rm_certificates c ON c.certificate_id = i.certificate_id
         WHERE c.status = 'revoked' AND i.sequence >= $1 AND i.sequence < $1 + $2",
        first,
        LIST_SIZE,
    )
    .fetch_all(pool)
    .await?;
    let mut bits = vec![0u8; (LIST_SIZE / 8) as usize];
    for sequence in revoked {
        let index = (sequence - first) as usize;
        // The first index is the leftmost bit of the first byte.
        bits[index / 8] |= 0x80 >> (index % 8);
    }
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(&bits).expect("writing to memory");
    let compressed = gzip.finish().expect("writing to memory");
    let url = status_list_url(config, list);
    Ok(json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": config.issuer_id(),
        "validFrom": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "credentialSubject": {
            "id": format!("{url}#list"),
            "type": "BitstringStatusList",
            "statusPurpose": "revocation",
            "encodedList": format!("u{}", B64URL.encode(compressed)),
        },
    }))
}

/// Whether bit `index` is set in a status list's `encodedList` (for verifiers, and the tests).
pub fn bit_is_set(encoded_list: &str, index: usize) -> Option<bool> {
    use std::io::Read;
    let compressed = B64URL.decode(encoded_list.strip_prefix('u')?).ok()?;
    let mut bits = Vec::new();
    flate2::read::GzDecoder::new(compressed.as_slice())
        .read_to_end(&mut bits)
        .ok()?;
    Some(bits.get(index / 8)? & (0x80 >> (index % 8)) != 0)
}
