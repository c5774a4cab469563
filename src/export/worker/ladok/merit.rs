//! What a certificate becomes in Ladok: the `AnnanMerit` to create, the `Beslut` that attests or
//! withdraws it, the `AnnanMeritRattning` that corrects it, and the marker by which we recognise it.
//!
//! `AnnanMerit` has no field for a student (the student is in the request path) nor for an external
//! reference. Our certificate id is therefore written as a marker, `cim:{certificate id}`, into a
//! free-text field the schema has: `Ursprung` (origin), which says where the merit comes from and is
//! kept by a correction (`AnnanMeritRattning` has it too). A merit is ours when that field contains
//! the marker.

use serde_json::{Value, json};

use crate::domain::ids::CertificateId;
use crate::export::{CertificateStatus, ExportCertificate, ExportSettings};

/// What a marker starts with; the certificate id follows.
pub const MARKER_PREFIX: &str = "cim:";

/// The marker of a certificate's merit.
pub fn marker(certificate_id: CertificateId) -> String {
    format!("{MARKER_PREFIX}{certificate_id}")
}

/// The field carrying the marker.
pub const MARKER_FIELD: &str = "Ursprung";

/// Whether `merit` (an `AnnanMerit` as Ladok answers it) carries the certificate's marker.
pub fn is_ours(merit: &Value, certificate_id: CertificateId) -> bool {
    merit
        .get(MARKER_FIELD)
        .and_then(Value::as_str)
        .is_some_and(|s| s.contains(&marker(certificate_id)))
}

/// The descriptive content of the merit; the same in a creation and a correction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeritContent {
    /// Swedish name (`Benamning`, the one required string).
    pub benamning: String,
    /// English name.
    pub alternativ_benamning: String,
    pub beskrivning: String,
    pub resultat: String,
    /// `YYYY-MM-DD`: the approval date.
    pub examinationsdatum: String,
    /// The institution and program, and the marker.
    pub ursprung: String,
}

impl MeritContent {
    pub fn new(certificate: &ExportCertificate, settings: &ExportSettings) -> Self {
        let names = settings.merit_names(certificate.program_code());
        Self {
            benamning: names.sv,
            alternativ_benamning: names.en,
            beskrivning: certificate.description(),
            resultat: settings.result.clone(),
            examinationsdatum: certificate.decided_on().to_string(),
            ursprung: format!(
                "{}, {} ({})",
                settings.issuer.name,
                certificate.program_name(),
                marker(certificate.certificate_id())
            ),
        }
    }

    /// The `AnnanMerit` that creates the merit: not attested (attestation is a request of its own)
    /// and not allowed in a degree certificate (an administrator in Ladok decides that).
    pub fn create_body(&self) -> Value {
        json!({
            "AlternativBenamning": self.alternativ_benamning,
            "AnvandsITillgodoraknande": false,
            "AnvandsIUtfardatBevis": false,
            "Attesterad": false,
            "Benamning": self.benamning,
            "Beskrivning": self.beskrivning,
            "Examinationsdatum": self.examinationsdatum,
            "MeritViaEmrex": false,
            "Resultat": self.resultat,
            "TillatenIBevis": false,
            "TillatenIGemensamExamen": false,
            "Ursprung": self.ursprung,
        })
    }

    /// The `AnnanMeritRattning` that brings an existing merit to this content; `senast_sparad` is
    /// the merit's `SenastSparad` as read, Ladok's optimistic lock.
    pub fn correction_body(&self, senast_sparad: Option<&str>) -> Value {
        let mut body = json!({
            "AlternativBenamning": self.alternativ_benamning,
            "Benamning": self.benamning,
            "Beskrivning": self.beskrivning,
            "Examinationsdatum": self.examinationsdatum,
            "Resultat": self.resultat,
            "Ursprung": self.ursprung,
        });
        if let Some(saved) = senast_sparad {
            body["SenasteSenastSparad"] = Value::String(saved.to_owned());
        }
        body
    }

    /// Whether `merit` says something else than this content (a merit created under other settings,
    /// or edited in Ladok since).
    pub fn differs_from(&self, merit: &Value) -> bool {
        let text = |name: &str| merit.get(name).and_then(Value::as_str).unwrap_or_default();
        text("Benamning") != self.benamning
            || text("AlternativBenamning") != self.alternativ_benamning
            || text("Beskrivning") != self.beskrivning
            || text("Resultat") != self.resultat
            || text("Examinationsdatum") != self.examinationsdatum
            || text("Ursprung") != self.ursprung
    }
}

/// A `Beslut` of the program's: its date, the coordinator's staff id as the decision maker's name,
/// and a note naming the program and the marker. `Beslutsfattare` names a Ladok user by UID, which
/// the coordinator need not be, so it is left out.
fn decision(certificate: &ExportCertificate, what: &str, on: String, by: String) -> Value {
    json!({
        "Anteckning": format!(
            "{what} by the educational program {} ({})",
            certificate.program_name(),
            marker(certificate.certificate_id())
        ),
        "Beslutsdatum": on,
        "BeslutsfattareNamn": by,
    })
}

/// The decision behind an attestation: the program's approval.
pub fn approval_decision(certificate: &ExportCertificate) -> Value {
    decision(
        certificate,
        "Approved",
        certificate.decided_on().to_string(),
        certificate.decided_by().to_string(),
    )
}

/// The `AttesteraAndraMeriter` of one merit.
pub fn attest_body(merit_uid: &str, certificate: &ExportCertificate) -> Value {
    json!({
        "AndraMeriterUIDer": [merit_uid],
        "Beslut": approval_decision(certificate),
    })
}

/// The decision behind a withdrawal: the program's revocation (its reason is personal and stays
/// out).
pub fn withdrawal_decision(certificate: &ExportCertificate) -> Option<Value> {
    let CertificateStatus::Revoked {
        revoked_on,
        revoked_by,
    } = certificate.status()
    else {
        return None;
    };
    Some(decision(
        certificate,
        "Certificate revoked",
        revoked_on.to_string(),
        revoked_by.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::MeritNames;
    use crate::export::certificate::tests::approved;

    #[test]
    fn a_program_of_its_own_names_the_merit_in_swedish_and_english_and_the_marker_is_in_ursprung() {
        let approval = approved();
        let certificate = ExportCertificate::new(&approval, None).unwrap();
        let mut settings = ExportSettings::default();
        let content = MeritContent::new(&certificate, &settings);
        assert_eq!(content.benamning, "Certifikat för internationella meriter");
        assert_eq!(
            content.alternativ_benamning,
            "Certificate of International Merits"
        );
        settings.programs.insert(
            approval.program_code.to_string(),
            MeritNames {
                sv: "Internationellt certifikat i tandvård".to_owned(),
                en: "International Certificate in Dentistry".to_owned(),
            },
        );
        let content = MeritContent::new(&certificate, &settings);
        let body = content.create_body();
        assert_eq!(body["Benamning"], "Internationellt certifikat i tandvård");
        assert_eq!(
            body["AlternativBenamning"],
            "International Certificate in Dentistry"
        );
        assert!(is_ours(&body, approval.certificate_id));
        assert!(!is_ours(
            &body,
            crate::domain::ids::CertificateId::new(uuid::Uuid::nil())
        ));
        crate::export::worker::ladok::schema::check(
            &crate::export::worker::ladok::schema::ANNAN_MERIT,
            &body,
        )
        .unwrap();
        assert!(!content.differs_from(&body));
    }
}
