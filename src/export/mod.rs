//! The export formats: what the registrar receives for an approved or revoked certificate.
//!
//! The formats are pure rendering (data in, bytes out, no I/O, no clock); the I/O is in [`worker`]
//! (which certificates go into a batch, writing the files, Ladok delivery); a fake Ladok for tests and
//! the demo is the workspace crate `cim-fake-ladok`. The formats only decide what the files say. The format definitions live in the repository's top-level `exports/` folder and are compiled in
//! with `include_str!`, so the registrar can read (and review changes to) the exact header, template and
//! issuer settings without reading Rust. `exports/README.md` documents every file.
//!
//! - [`certificate`]: [`ExportCertificate`], the one view of a certificate every format renders from.
//! - [`csv`]: the Ladok entry CSV, one row per certificate (revocations as correction rows).
//! - [`ds`]: the English Diploma Supplement section 6.1 text.
//! - [`elmo`]: one ELMO (EMREX) XML document per approved certificate.
//! - [`manifest`]: the batch manifest (counts and SHA-256 of every file) and safe file names.
//!
//! Decisions that hold across the formats:
//! - A **revoked** certificate produces a `revoke` correction row in the CSV and nothing else: no ELMO
//!   document and no DS text, because both would state a merit the holder no longer has, and a batch is
//!   immutable, so the earlier batch's files are corrected by the later row, not rewritten.
//! - A certificate whose holder's personal data was **erased** is still exported, approved or revoked:
//!   the registrar keeps the record of the merit, and Ladok already has it or must still get it under
//!   the student's Ladok UID, which is not personal data in our events and survives erasure. Its CSV row
//!   keeps the Ladok UID and leaves the erased cells empty; it has no ELMO document and no DS text
//!   (both exist to name the holder, [`ExportError::HolderErased`]); the manifest lists it under
//!   `personal_data_erased`. The decision depends only on the events, which erasure changes once and
//!   for good, so a resumed batch renders the same bytes every time after the erasure.

pub mod certificate;
pub mod csv;
pub mod ds;
pub mod elmo;
pub mod manifest;
pub mod worker;

pub use certificate::{
    CertificateStatus, ExportActivity, ExportCertificate, ExportError, ExportHolder,
    ExportSettings, IdentityNumberKind, IssuerIdentifier, IssuerSettings, MeritNames,
};
pub use manifest::{
    BatchCounts, FileKind, LADOK_CSV_FILE_NAME, MANIFEST_FILE_NAME, Manifest, ManifestCounts,
    ManifestFile, WithheldCertificate, file_name_for,
};

use chrono::{DateTime, Utc};

use crate::domain::ids::CertificateId;

/// One file of a batch, named and rendered, ready for the worker to write and the manifest to hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Renders every file of a batch except the manifest: the Ladok CSV (always, even when it has only a
/// header, so the registrar sees an empty batch as "nothing to enter" rather than a missing file), and
/// for every approved certificate whose holder was not erased its DS 6.1 text and ELMO document.
///
/// `generated_at` is the batch's creation instant; the worker passes the same instant to the manifest.
pub fn render_batch(
    certificates: &[ExportCertificate],
    settings: &ExportSettings,
    generated_at: DateTime<Utc>,
) -> Result<Vec<ExportFile>, ExportError> {
    let mut files = vec![ExportFile {
        name: manifest::LADOK_CSV_FILE_NAME.to_owned(),
        bytes: csv::render(certificates, settings)?,
    }];
    for certificate in certificates {
        if certificate.is_revoked() || certificate.personal_data_erased() {
            continue;
        }
        files.push(ExportFile {
            name: file_name_for(certificate.certificate_id(), FileKind::DiplomaSupplement),
            bytes: ds::section_6_1(certificate, settings)?.into_bytes(),
        });
        files.push(ExportFile {
            name: file_name_for(certificate.certificate_id(), FileKind::Elmo),
            bytes: elmo::render(certificate, settings, generated_at)?.into_bytes(),
        });
    }
    Ok(files)
}

/// The certificates whose holder's personal data was erased, sorted: what the manifest lists under
/// `personal_data_erased`.
pub fn personal_data_erased(certificates: &[ExportCertificate]) -> Vec<CertificateId> {
    let mut ids: Vec<CertificateId> = certificates
        .iter()
        .filter(|c| c.personal_data_erased())
        .map(ExportCertificate::certificate_id)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The counts the manifest states for a set of certificates: approvals recorded and revocations.
pub fn batch_counts(certificates: &[ExportCertificate]) -> BatchCounts {
    let revocations = certificates.iter().filter(|c| c.is_revoked()).count();
    BatchCounts {
        certificates: certificates.len() - revocations,
        revocations,
    }
}
