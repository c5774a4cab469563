//! [`ExportCertificate`]: a certificate as the registrar's files state it, and the settings they share.
//!
//! The export formats never read events directly: they render this one struct, so the rules "who may be
//! exported" and "what a revocation carries" are decided once, here, in [`ExportCertificate::new`].

use chrono::NaiveDate;
use serde::Deserialize;

use crate::domain::ids::{ActivityId, CertificateId, ProgramCode, StaffId, StudentUid};
use crate::domain::portfolio::{CertificateApproved, CertificateRevoked};
use crate::domain::values::IdentityNumber;

/// The default settings, compiled in so the binary needs no file at run time and a change to them is
/// reviewed like code.
const DEFAULT_SETTINGS_JSON: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/exports/settings.json"
));

/// Why a certificate (or a batch) could not be rendered. The export worker records the error against the
/// certificate and goes on with the rest of the batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// The holder's identity number and name were erased: a file that states them (the ELMO learner,
    /// the DS text) cannot be produced, and guessing is not an option for an official record. The
    /// certificate itself still stands and is exported without them (see [`ExportCertificate::holder`]).
    #[error(
        "certificate {certificate_id}: the holder's personal data was erased, so no file naming the holder can be produced"
    )]
    HolderErased { certificate_id: CertificateId },
    /// A revocation was paired with another certificate's approval: a bug in the caller, caught before
    /// it sends a correction for the wrong merit.
    #[error(
        "the revocation of certificate {revoked} does not belong to certificate {certificate_id}"
    )]
    RevocationMismatch {
        certificate_id: CertificateId,
        revoked: CertificateId,
    },
    /// ELMO and DS text exist only for certificates that stand; a revocation is a CSV correction row.
    #[error("certificate {certificate_id} is revoked: it has a correction row, no ELMO or DS text")]
    Revoked { certificate_id: CertificateId },
    /// The CSV column list (`exports/ladok-csv-columns.txt`) names a column this code cannot fill.
    #[error("the Ladok CSV column {column:?} is unknown")]
    UnknownColumn { column: String },
    /// The DS template names a placeholder this code cannot fill.
    #[error("the DS template placeholder {{{placeholder}}} is unknown")]
    UnknownPlaceholder { placeholder: String },
    /// Writing the CSV failed (in memory, so only on a bug in the writer).
    #[error("writing the Ladok CSV failed: {0}")]
    Csv(String),
    /// Two files of a batch got the same name (e.g. a certificate listed twice).
    #[error("the batch has two files named {name:?}")]
    DuplicateFileName { name: String },
}

/// One identifier of the issuing institution in ELMO (`type` is e.g. `schac`, `erasmus`, `pic`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IssuerIdentifier {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

/// The institution the ELMO `report/issuer` names. ELMO requires at least one identifier, a title and a
/// URL; the country must be left out for an international institution, hence the `Option`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IssuerSettings {
    pub name: String,
    /// `xml:lang` of `name` (ELMO asks for it on every title).
    pub name_lang: String,
    pub country: Option<String>,
    pub identifiers: Vec<IssuerIdentifier>,
    pub url: String,
}

/// Settings every format shares. Defaults come from `exports/settings.json`; a deployment can build its
/// own (e.g. from configuration) because the fields are public.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ExportSettings {
    /// The certificate's English name: Ladok AnnanMerit `AlternativBenamning`, the ELMO English
    /// title and the DS name (the DS is issued in English), unless the program has its own.
    pub merit_name: String,
    /// The certificate's Swedish name: Ladok AnnanMerit `Benamning` and the ELMO Swedish title,
    /// unless the program has its own.
    pub merit_name_sv: String,
    /// Names of a program's own (by program code), over the two above.
    #[serde(default)]
    pub programs: std::collections::BTreeMap<String, MeritNames>,
    /// Ladok AnnanMerit `Resultat` on record rows. Configurable because the Ladok value is unverified.
    pub result: String,
    pub issuer: IssuerSettings,
}

/// A certificate's name in Swedish and English.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MeritNames {
    pub sv: String,
    pub en: String,
}

impl ExportSettings {
    /// The names a certificate of `program` carries: the program's own, else the defaults.
    pub fn merit_names(&self, program: &ProgramCode) -> MeritNames {
        self.programs
            .get(program.as_str())
            .cloned()
            .unwrap_or_else(|| MeritNames {
                sv: self.merit_name_sv.clone(),
                en: self.merit_name.clone(),
            })
    }
}

impl Default for ExportSettings {
    fn default() -> Self {
        // The file is part of the source tree and a unit test parses it, so a broken file fails the tests,
        // never a running worker.
        serde_json::from_str(DEFAULT_SETTINGS_JSON).expect("exports/settings.json is valid")
    }
}

/// The holder as the registrar records them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportHolder {
    /// 12 digits, the form Ladok expects. `Debug` of the type is redacted.
    pub identity_number: IdentityNumber,
    pub given_names: String,
    pub family_name: String,
}

impl ExportHolder {
    /// From the identity number (a coordination number's day minus 60), so it cannot disagree with it.
    pub fn birth_date(&self) -> NaiveDate {
        self.identity_number.birth_date()
    }

    pub fn identity_number_kind(&self) -> IdentityNumberKind {
        if self.identity_number.is_coordination_number() {
            IdentityNumberKind::Samordningsnummer
        } else {
            IdentityNumberKind::Personnummer
        }
    }
}

/// Which kind of Swedish number the holder has: a coordination number is issued to people not (yet)
/// registered in Sweden, so exports must not present it as a personal identity number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityNumberKind {
    Personnummer,
    Samordningsnummer,
}

impl IdentityNumberKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityNumberKind::Personnummer => "personnummer",
            IdentityNumberKind::Samordningsnummer => "samordningsnummer",
        }
    }
}

/// One activity as the certificate states it: the catalog item's name at logging time and its dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportActivity {
    pub activity_id: ActivityId,
    pub name: String,
    pub started_on: NaiveDate,
    pub ended_on: NaiveDate,
}

/// Whether the certificate stands. A revocation carries its own decision (date and coordinator) because
/// the correction row reports that decision, not the approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateStatus {
    Approved,
    Revoked {
        revoked_on: NaiveDate,
        revoked_by: StaffId,
    },
}

/// A certificate as every export format renders it.
///
/// Fields are private so that a certificate is only ever built from its events by [`Self::new`]. The
/// holder is `None` exactly when the holder's personal data was erased: the registrar's record of the
/// merit stays (program, dates, activities, decision and the Ladok UID are not personal data in our
/// events), so an erased holder's certificate is still exported, only without what was erased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportCertificate {
    certificate_id: CertificateId,
    program_code: ProgramCode,
    program_name: String,
    student_uid: StudentUid,
    holder: Option<ExportHolder>,
    activities: Vec<ExportActivity>,
    decided_on: NaiveDate,
    decided_by: StaffId,
    status: CertificateStatus,
}

impl ExportCertificate {
    /// Builds the export view of an approval and, when the certificate was revoked since, its revocation.
    /// An approval whose holder was erased builds too (holder `None`): refusing it would stop the
    /// batch it is in for good, since erasure cannot be undone.
    ///
    /// Activities are ordered by start date (then end date, then name) so every format lists them in the
    /// same, chronological order whatever order the application named them in.
    pub fn new(
        approved: &CertificateApproved,
        revoked: Option<&CertificateRevoked>,
    ) -> Result<Self, ExportError> {
        let certificate_id = approved.certificate_id;
        if let Some(revoked) = revoked
            && revoked.certificate_id != certificate_id
        {
            return Err(ExportError::RevocationMismatch {
                certificate_id,
                revoked: revoked.certificate_id,
            });
        }
        let holder = approved.personal.as_ref().map(|h| ExportHolder {
            identity_number: h.identity_number.clone(),
            given_names: h.name.given_names().to_owned(),
            family_name: h.name.family_name().to_owned(),
        });
        let mut activities: Vec<ExportActivity> = approved
            .activities
            .iter()
            .map(|a| ExportActivity {
                activity_id: a.activity_id,
                name: a.item_name.clone(),
                started_on: a.started_on,
                ended_on: a.ended_on,
            })
            .collect();
        activities.sort_by(|a, b| {
            (a.started_on, a.ended_on, &a.name).cmp(&(b.started_on, b.ended_on, &b.name))
        });
        let status = match revoked {
            None => CertificateStatus::Approved,
            Some(r) => CertificateStatus::Revoked {
                revoked_on: r.revoked_on,
                revoked_by: r.by.clone(),
            },
        };
        Ok(Self {
            certificate_id,
            program_code: approved.program_code.clone(),
            program_name: approved.program_name.clone(),
            student_uid: approved.student_uid,
            holder,
            activities,
            decided_on: approved.decided_on,
            decided_by: approved.decided_by.clone(),
            status,
        })
    }

    pub fn certificate_id(&self) -> CertificateId {
        self.certificate_id
    }

    pub fn program_code(&self) -> &ProgramCode {
        &self.program_code
    }

    pub fn program_name(&self) -> &str {
        &self.program_name
    }

    /// Ladok's key for the student; present even after erasure.
    pub fn student_uid(&self) -> StudentUid {
        self.student_uid
    }

    /// `None` when the holder's personal data was erased (approved or revoked alike); deliver by
    /// [`Self::student_uid`] then.
    pub fn holder(&self) -> Option<&ExportHolder> {
        self.holder.as_ref()
    }

    /// The holder's personal data was erased: files naming the holder are left out, the CSV row blanks
    /// them, and the manifest lists the certificate.
    pub fn personal_data_erased(&self) -> bool {
        self.holder.is_none()
    }

    pub fn activities(&self) -> &[ExportActivity] {
        &self.activities
    }

    /// The approval date (Europe/Stockholm).
    pub fn decided_on(&self) -> NaiveDate {
        self.decided_on
    }

    /// The coordinator who approved.
    pub fn decided_by(&self) -> &StaffId {
        &self.decided_by
    }

    pub fn status(&self) -> &CertificateStatus {
        &self.status
    }

    pub fn is_revoked(&self) -> bool {
        matches!(self.status, CertificateStatus::Revoked { .. })
    }

    /// The holder of a certificate that stands: what the ELMO and DS renderers require.
    pub(crate) fn standing_holder(&self) -> Result<&ExportHolder, ExportError> {
        if self.is_revoked() {
            return Err(ExportError::Revoked {
                certificate_id: self.certificate_id,
            });
        }
        self.holder.as_ref().ok_or(ExportError::HolderErased {
            certificate_id: self.certificate_id,
        })
    }

    /// The one-paragraph description used as Ladok's `Beskrivning` and the ELMO description: the
    /// activities with ISO dates (unambiguous for a registrar in any language) and the approving program.
    pub fn description(&self) -> String {
        let activities: Vec<String> = self
            .activities
            .iter()
            .map(|a| {
                if a.started_on == a.ended_on {
                    format!("{} ({})", a.name, a.started_on)
                } else {
                    format!("{} ({} to {})", a.name, a.started_on, a.ended_on)
                }
            })
            .collect();
        format!(
            "International activities with self-reflections: {}. Approved by {} ({}) on {}.",
            activities.join("; "),
            self.program_name,
            self.program_code,
            self.decided_on
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::ids::{CatalogItemId, PortfolioId, ProgramId};
    use crate::domain::portfolio::{
        CertificateHolder, CertifiedActivity, FinalFormat, ReflectionFormat,
    };
    use crate::domain::values::PersonName;
    use uuid::Uuid;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// A complete approval whose names and texts exercise escaping in every format.
    pub(crate) fn approved() -> CertificateApproved {
        let activity =
            |n: u128, item: &str, name: &str, from: NaiveDate, to: NaiveDate| CertifiedActivity {
                activity_id: ActivityId::new(Uuid::from_u128(n)),
                item: CatalogItemId::parse(item).unwrap(),
                item_name: name.to_owned(),
                started_on: from,
                ended_on: to,
                reflection_format: ReflectionFormat::Written,
            };
        CertificateApproved {
            certificate_id: CertificateId::new(Uuid::from_u128(0xC1)),
            portfolio_id: PortfolioId::new(Uuid::from_u128(0xF1)),
            program_id: ProgramId::new(Uuid::from_u128(0xA1)),
            program_code: ProgramCode::parse("dental").unwrap(),
            program_name: "Dental Program".to_owned(),
            student_uid: StudentUid::new(Uuid::from_u128(0x51)),
            application: 1,
            activities: vec![
                activity(3, "tedx", "TEDx", date(2025, 11, 2), date(2025, 11, 2)),
                activity(
                    1,
                    "language-cafe",
                    "Language café <B2> & \"more\"",
                    date(2025, 2, 3),
                    date(2025, 5, 30),
                ),
                activity(
                    2,
                    "student-rep",
                    "Student representative",
                    date(2025, 9, 1),
                    date(2025, 12, 15),
                ),
            ],
            final_format: FinalFormat::Written,
            decided_on: date(2026, 1, 20),
            decided_by: StaffId::parse("coord-7").unwrap(),
            personal: Some(CertificateHolder {
                identity_number: IdentityNumber::from_normalized("198112189876").unwrap(),
                name: PersonName::parse("Åsa Zoë", "O'Brien Öberg").unwrap(),
            }),
        }
    }

    pub(crate) fn revocation(of: &CertificateApproved) -> CertificateRevoked {
        CertificateRevoked {
            certificate_id: of.certificate_id,
            by: StaffId::parse("coord-9").unwrap(),
            revoked_on: date(2026, 3, 1),
            personal: None,
        }
    }

    #[test]
    fn default_settings_parse_from_the_compiled_in_file() {
        let s = ExportSettings::default();
        assert_eq!(s.merit_name, "Certificate of International Merits");
        assert_eq!(s.issuer.name, "Karolinska Institutet");
        assert_eq!(s.issuer.country.as_deref(), Some("SE"));
        assert!(!s.issuer.identifiers.is_empty(), "ELMO requires one");
    }

    #[test]
    fn activities_are_chronological_and_the_holder_is_copied() {
        let c = ExportCertificate::new(&approved(), None).unwrap();
        let names: Vec<_> = c.activities().iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Language café <B2> & \"more\"",
                "Student representative",
                "TEDx"
            ]
        );
        let holder = c.holder().unwrap();
        assert_eq!(holder.identity_number.as_str(), "198112189876");
        assert_eq!(holder.birth_date(), date(1981, 12, 18));
        assert_eq!(holder.identity_number_kind().as_str(), "personnummer");
        assert_eq!(c.status(), &CertificateStatus::Approved);
    }

    #[test]
    fn an_erased_approval_builds_without_a_holder_and_names_nobody() {
        let mut erased = approved();
        erased.personal = None;
        let approval = ExportCertificate::new(&erased, None).unwrap();
        assert_eq!(approval.holder(), None);
        assert!(approval.personal_data_erased());
        assert_eq!(approval.student_uid(), erased.student_uid);
        assert_eq!(
            approval.standing_holder(),
            Err(ExportError::HolderErased {
                certificate_id: erased.certificate_id
            })
        );
        let revoked = ExportCertificate::new(&erased, Some(&revocation(&erased))).unwrap();
        assert!(revoked.is_revoked());
        assert_eq!(revoked.holder(), None);
        assert_eq!(
            revoked.standing_holder(),
            Err(ExportError::Revoked {
                certificate_id: erased.certificate_id
            })
        );
    }

    #[test]
    fn a_revocation_of_another_certificate_is_refused() {
        let a = approved();
        let mut r = revocation(&a);
        r.certificate_id = CertificateId::new(Uuid::from_u128(0xC2));
        assert!(matches!(
            ExportCertificate::new(&a, Some(&r)),
            Err(ExportError::RevocationMismatch { .. })
        ));
    }

    #[test]
    fn a_coordination_number_is_named_as_such() {
        let mut a = approved();
        // 1981-12-18 as a coordination number: day 18 + 60 = 78, check digit recomputed.
        let number = IdentityNumber::with_check_digit("19811278987").unwrap();
        a.personal.as_mut().unwrap().identity_number = number;
        let c = ExportCertificate::new(&a, None).unwrap();
        let holder = c.holder().unwrap();
        assert_eq!(holder.identity_number_kind().as_str(), "samordningsnummer");
        assert_eq!(holder.birth_date(), date(1981, 12, 18));
    }
}
