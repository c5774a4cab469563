//! The batch manifest and the names of a batch's files.
//!
//! A batch is immutable once written; the manifest is how the registrar (and the worker, on re-delivery)
//! proves that a folder is complete and unaltered: it lists every other file with its size and SHA-256.
//! The manifest does not list itself (it cannot contain its own hash).

use std::collections::BTreeMap;

use crate::domain::BatchId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::certificate::ExportError;
use crate::domain::ids::CertificateId;

/// The manifest's own file name in a batch folder.
pub const MANIFEST_FILE_NAME: &str = "manifest.json";
/// The Ladok entry CSV's file name in a batch folder.
pub const LADOK_CSV_FILE_NAME: &str = "ladok-entry.csv";

/// The per-certificate files of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// The ELMO XML document.
    Elmo,
    /// The Diploma Supplement section 6.1 text.
    DiplomaSupplement,
}

/// The file name of a certificate's file: `cim-{certificate id}-elmo.xml` or `cim-{id}-ds-6.1.txt`.
///
/// Built from the certificate id only, never from names or identity numbers: the name is stable across
/// batches (a registrar can find the same certificate again), ASCII, free of path separators, and reveals
/// nothing personal in a directory listing.
pub fn file_name_for(certificate_id: CertificateId, kind: FileKind) -> String {
    let suffix = match kind {
        FileKind::Elmo => "elmo.xml",
        FileKind::DiplomaSupplement => "ds-6.1.txt",
    };
    format!("cim-{}-{suffix}", certificate_id.as_uuid().hyphenated())
}

/// What a batch contains, counted by the caller who knows which rows are revocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchCounts {
    /// Approved certificates recorded (`record` rows).
    pub certificates: usize,
    /// Revocations sent as corrections (`revoke` rows).
    pub revocations: usize,
}

/// One listed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub name: String,
    pub size: u64,
    /// Lower-case hex, as `sha256sum` prints it, so the registrar can check with standard tools.
    pub sha256: String,
}

/// `manifest.json` of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub batch_id: BatchId,
    pub created_at: DateTime<Utc>,
    pub counts: ManifestCounts,
    /// Sorted by name, so the same files always give the same manifest bytes.
    pub files: Vec<ManifestFile>,
    /// Certificates whose holder's personal data was erased: their CSV row has empty identity and
    /// name cells and they have no ELMO or DS file (unless one was written before the erasure).
    /// Sorted; left out of the JSON when empty, so every other batch's manifest keeps its bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub personal_data_erased: Vec<CertificateId>,
    /// Certificates of the batch whose source events could not be read: no row and no files, so the
    /// registrar knows to ask. Sorted; left out of the JSON when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withheld: Vec<WithheldCertificate>,
    /// What the registrar's office must still do by hand in Ladok, per certificate (codes), and
    /// what each code means. Left out of the JSON when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ladok_manual_steps: Vec<CertificateSteps>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ladok_manual_step_texts: BTreeMap<String, String>,
}

/// The manual steps in Ladok of one certificate of the batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateSteps {
    pub certificate_id: CertificateId,
    /// Codes of [`crate::domain::batch::manual::ManualStep`].
    pub steps: Vec<String>,
}

/// A certificate the batch took but could not render.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithheldCertificate {
    pub certificate_id: CertificateId,
    /// A code, never personal data: `source_unreadable`, `source_missing`, `source_invalid`.
    pub reason: String,
}

/// The counts as the manifest states them: the caller's plus the number of listed files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestCounts {
    pub certificates: usize,
    pub revocations: usize,
    pub files: usize,
}

impl Manifest {
    /// Computes the manifest of a batch from its files (name and bytes). Pure: the caller supplies the id
    /// and the creation instant. Duplicate names are refused because one would overwrite the other on
    /// disk, and a name equal to the manifest's own would be overwritten by it.
    pub fn compute<'a>(
        batch_id: BatchId,
        created_at: DateTime<Utc>,
        counts: BatchCounts,
        files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Self, ExportError> {
        let listed = files
            .into_iter()
            .map(|(name, bytes)| ManifestFile {
                name: name.to_owned(),
                size: bytes.len() as u64,
                sha256: hex::encode(Sha256::digest(bytes)),
            })
            .collect();
        Self::list(batch_id, created_at, counts, listed)
    }

    /// The manifest of files already described by name, size and hash: for a resumed batch, whose
    /// files on disk are known by the hash they were written with, which need not be what rendering
    /// gives now (a holder erased in between). Same refusals as [`Self::compute`].
    pub fn list(
        batch_id: BatchId,
        created_at: DateTime<Utc>,
        counts: BatchCounts,
        mut listed: Vec<ManifestFile>,
    ) -> Result<Self, ExportError> {
        listed.sort_by(|a, b| a.name.cmp(&b.name));
        for pair in listed.windows(2) {
            if pair[0].name == pair[1].name {
                return Err(ExportError::DuplicateFileName {
                    name: pair[0].name.clone(),
                });
            }
        }
        if listed.iter().any(|f| f.name == MANIFEST_FILE_NAME) {
            return Err(ExportError::DuplicateFileName {
                name: MANIFEST_FILE_NAME.to_owned(),
            });
        }
        Ok(Self {
            batch_id,
            created_at,
            counts: ManifestCounts {
                certificates: counts.certificates,
                revocations: counts.revocations,
                files: listed.len(),
            },
            files: listed,
            personal_data_erased: Vec::new(),
            withheld: Vec::new(),
            ladok_manual_steps: Vec::new(),
            ladok_manual_step_texts: BTreeMap::new(),
        })
    }

    /// States the manual steps in Ladok of every certificate (sorted by certificate).
    pub fn with_manual_steps(
        mut self,
        steps: impl IntoIterator<Item = (CertificateId, Vec<crate::domain::batch::manual::ManualStep>)>,
    ) -> Self {
        for (certificate_id, list) in steps {
            let codes = list.iter().map(|s| s.code.clone()).collect();
            for step in list {
                self.ladok_manual_step_texts.insert(step.code, step.text);
            }
            self.ladok_manual_steps.push(CertificateSteps {
                certificate_id,
                steps: codes,
            });
        }
        self.ladok_manual_steps.sort_by_key(|s| s.certificate_id);
        self
    }

    /// States which certificates could not be rendered (the caller sorts them).
    pub fn with_withheld(mut self, withheld: Vec<WithheldCertificate>) -> Self {
        self.withheld = withheld;
        self
    }

    /// States which certificates' personal data was erased (sorted, each once).
    pub fn with_personal_data_erased(mut self, mut ids: Vec<CertificateId>) -> Self {
        ids.sort();
        ids.dedup();
        self.personal_data_erased = ids;
        self
    }

    /// The bytes of `manifest.json`: pretty-printed (a registrar reads it) with a final newline.
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a manifest always serialises");
        bytes.push(b'\n');
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn batch() -> (BatchId, DateTime<Utc>) {
        (
            BatchId::new(Uuid::from_u128(0xBA7C4)),
            Utc.with_ymd_and_hms(2026, 1, 21, 7, 30, 0).unwrap(),
        )
    }

    #[test]
    fn hashes_sizes_and_counts_match_the_bytes() {
        let (id, at) = batch();
        let counts = BatchCounts {
            certificates: 1,
            revocations: 0,
        };
        let files: [(&str, &[u8]); 2] = [("b.txt", b"abc"), ("a.txt", b"")];
        let m = Manifest::compute(id, at, counts, files).unwrap();
        assert_eq!(m.counts.files, 2);
        assert_eq!(m.files[0].name, "a.txt");
        assert_eq!(
            m.files[0].sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(m.files[1].size, 3);
        assert_eq!(
            m.files[1].sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let json: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
        assert!(
            json.get("personal_data_erased").is_none(),
            "absent when empty: older manifests keep their bytes"
        );
        assert_eq!(json["batch_id"], id.to_string());
        assert_eq!(json["created_at"], "2026-01-21T07:30:00Z");
        assert_eq!(json["counts"]["certificates"], 1);
        assert_eq!(serde_json::from_value::<Manifest>(json).unwrap(), m);
    }

    #[test]
    fn erased_certificates_are_listed_sorted_once() {
        let (id, at) = batch();
        let counts = BatchCounts {
            certificates: 2,
            revocations: 0,
        };
        let (a, b) = (
            CertificateId::new(Uuid::from_u128(2)),
            CertificateId::new(Uuid::from_u128(1)),
        );
        let m = Manifest::list(id, at, counts, Vec::new())
            .unwrap()
            .with_personal_data_erased(vec![a, b, a]);
        let json: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
        assert_eq!(
            json["personal_data_erased"],
            serde_json::json!([b.to_string(), a.to_string()])
        );
        assert_eq!(serde_json::from_value::<Manifest>(json).unwrap(), m);
    }

    #[test]
    fn duplicate_names_and_the_manifest_name_are_refused() {
        let (id, at) = batch();
        let counts = BatchCounts {
            certificates: 0,
            revocations: 0,
        };
        let dup: [(&str, &[u8]); 2] = [("x", b"1"), ("x", b"2")];
        assert!(Manifest::compute(id, at, counts, dup).is_err());
        let own: [(&str, &[u8]); 1] = [(MANIFEST_FILE_NAME, b"{}")];
        assert!(Manifest::compute(id, at, counts, own).is_err());
    }

    #[test]
    fn file_names_are_stable_safe_and_impersonal() {
        let id = CertificateId::new(Uuid::from_u128(0xC1));
        let elmo = file_name_for(id, FileKind::Elmo);
        assert_eq!(elmo, "cim-00000000-0000-0000-0000-0000000000c1-elmo.xml");
        assert_eq!(elmo, file_name_for(id, FileKind::Elmo));
        let ds = file_name_for(id, FileKind::DiplomaSupplement);
        assert_eq!(ds, "cim-00000000-0000-0000-0000-0000000000c1-ds-6.1.txt");
        for name in [elmo, ds] {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
            );
        }
    }
}
