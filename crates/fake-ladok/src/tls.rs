//! The fake's throw-away PKI: a CA, a server certificate for `127.0.0.1`/`localhost`, and client
//! certificates as PKCS#12 files with the fake's passphrase.

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509, X509NameBuilder};
use uuid::Uuid;

use super::CLIENT_PASSWORD;

pub(super) enum Role {
    Ca,
    Server,
    Client,
}

pub(super) fn new_key() -> Result<PKey<Private>, openssl::error::ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    PKey::from_ec_key(EcKey::generate(&group)?)
}

/// A certificate for `key`, signed by `issuer` (or self-signed), valid from an hour ago for a year.
pub(super) fn issue(
    common_name: &str,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    role: Role,
) -> Result<X509, openssl::error::ErrorStack> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", common_name)?;
    let name = name.build();
    let mut builder = X509::builder()?;
    builder.set_version(2)?;
    let serial = BigNum::from_slice(Uuid::new_v4().as_bytes())?;
    let serial = Asn1Integer::from_bn(&serial)?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(issuer.map_or(&name, |(cert, _)| cert.subject_name()))?;
    builder.set_pubkey(key)?;
    let now = chrono::Utc::now().timestamp();
    let not_before = Asn1Time::from_unix(now - 3600)?;
    builder.set_not_before(&not_before)?;
    let not_after = Asn1Time::from_unix(now + 365 * 86_400)?;
    builder.set_not_after(&not_after)?;
    match role {
        Role::Ca => {
            builder.append_extension(BasicConstraints::new().critical().ca().build()?)?;
            builder.append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()?,
            )?;
        }
        Role::Server => {
            builder.append_extension(BasicConstraints::new().build()?)?;
            builder.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
            builder.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
            let san = SubjectAlternativeName::new()
                .ip("127.0.0.1")
                .dns("localhost")
                .build(&builder.x509v3_context(issuer.map(|(c, _)| &**c), None))?;
            builder.append_extension(san)?;
        }
        Role::Client => {
            builder.append_extension(BasicConstraints::new().build()?)?;
            builder.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
            builder.append_extension(ExtendedKeyUsage::new().client_auth().build()?)?;
        }
    }
    builder.sign(issuer.map_or(key, |(_, k)| k), MessageDigest::sha256())?;
    Ok(builder.build())
}

pub(super) fn pkcs12(
    cert: &X509,
    key: &PKey<Private>,
) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    Pkcs12::builder()
        .name("cim export worker")
        .pkey(key)
        .cert(cert)
        .build2(CLIENT_PASSWORD)?
        .to_der()
}
