//! The certificate's wording in each language, side by side so a change to one is seen next to
//! the other. "Certificate of International Merits" is the merit's name and stays English on the
//! Swedish page too, as it does in Ladok and the Diploma Supplement.

use crate::domain::portfolio::FinalFormat;
use crate::notify::templates::Language;

/// The merit's own name.
pub(super) const MERIT: &str = "Certificate of International Merits";

/// Every sentence and label of the page, in one language.
#[derive(Debug)]
pub(super) struct Texts {
    /// The page's heading.
    pub title: &'static str,
    /// A line under the heading (the Swedish page names the merit by its English name there).
    pub subtitle: Option<&'static str>,
    pub certify: &'static str,
    /// Follows the student's name and leads to the program.
    pub completed: &'static str,
    pub activities: &'static str,
    pub final_reflection: &'static str,
    pub written: &'static str,
    pub oral: &'static str,
    pub approved: &'static str,
    pub certificate_id: &'static str,
    pub verify_heading: &'static str,
    pub verify_how: &'static str,
}

const SWEDISH: Texts = Texts {
    title: "Intyg om internationella meriter",
    subtitle: Some(MERIT),
    certify: "Härmed intygas att",
    completed: "har uppfyllt kraven för Certificate of International Merits inom programmet",
    activities: "Internationella aktiviteter",
    final_reflection: "Avslutande reflektion",
    written: "skriftlig",
    oral: "muntlig",
    approved: "Godkänt",
    certificate_id: "Intygets id",
    verify_heading: "Kontrollera intyget",
    verify_how: "Skanna koden eller öppna adressen nedan för att se att intyget är utfärdat av \
                 lärosätet och inte har återkallats.",
};

const ENGLISH: Texts = Texts {
    title: MERIT,
    subtitle: None,
    certify: "This is to certify that",
    completed: "has completed the Certificate of International Merits in the programme",
    activities: "International activities",
    final_reflection: "Final reflection",
    written: "written",
    oral: "oral",
    approved: "Approved on",
    certificate_id: "Certificate id",
    verify_heading: "Verify this certificate",
    verify_how: "Scan the code or open the address below to see that the certificate was issued \
                 by the university and has not been revoked.",
};

impl Texts {
    pub(super) fn of(language: Language) -> &'static Texts {
        match language {
            Language::Swedish => &SWEDISH,
            Language::English => &ENGLISH,
        }
    }

    pub(super) fn format(&self, format: FinalFormat) -> &'static str {
        match format {
            FinalFormat::Written => self.written,
            FinalFormat::Oral => self.oral,
        }
    }
}
