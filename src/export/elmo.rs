//! One ELMO (EMREX) XML document per approved certificate, valid against the shared ELMO v1 schema.
//!
//! ELMO is the format Ladok uses for transcript exchange, so the registrar can import the CIM the same way
//! as any other transferred merit. Shape (schema order, which `xs:sequence` enforces):
//!
//! - `generatedDate`, then `learner`: identifiers, `givenNames`, `familyName`, `bday`. `citizenship` is
//!   left out because we do not know it (the schema says to skip it rather than guess); a personnummer is
//!   the `nationalIdentifier`, a samordningsnummer gets its own type `swedishCoordinationNumber` (it is
//!   issued to people not registered in Sweden, so it is not their primary national identifier), and the
//!   Ladok UID is given as `ladokStudentUid` for the registrar's import.
//! - one `report`: `issuer` (from [`IssuerSettings`](super::IssuerSettings)), ONE
//!   `learningOpportunitySpecification` for the CIM with **no `type`** (none of the schema's types fits and
//!   the schema says to leave it out then) and **no credit** (the CIM carries no ECTS), whose instance is
//!   `passed` on the approval date and carries the DS section 6.1 in a `diplomaSupplement`; the three
//!   activities as `hasPart`, each `passed` with its dates; then `issueDate`.
//!
//! The document is unsigned: ELMO's enveloped signature is applied where the signing key lives (Ladok or
//! the registrar's EMREX node), not by this service. The writer is our own (a few elements, one `escape`)
//! rather than an XML crate, because the output is a fixed tree and escaping is the only hard part.

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Europe::Stockholm;

use super::certificate::{ExportCertificate, ExportError, ExportSettings, IdentityNumberKind};
use super::ds;

/// The ELMO v1 namespace: the schema's `targetNamespace`.
pub const NAMESPACE: &str = "https://github.com/emrex-eu/elmo-schemas/tree/v1";

/// The DS template version the section numbers follow (the schema's default).
const DS_VERSION: &str = "2018";

/// Renders the ELMO document of a certificate that stands (revoked: [`ExportError::Revoked`]).
///
/// `generated_at` becomes `generatedDate` and the report's `issueDate` (in Europe/Stockholm time, with its
/// offset), and its Stockholm date is the DS `issueDate`.
pub fn render(
    certificate: &ExportCertificate,
    settings: &ExportSettings,
    generated_at: DateTime<Utc>,
) -> Result<String, ExportError> {
    let holder = certificate.standing_holder()?;
    let ds_text = ds::section_6_1(certificate, settings)?;
    let local = generated_at.with_timezone(&Stockholm);
    let timestamp = local.to_rfc3339_opts(SecondsFormat::Secs, false);
    let issuer = &settings.issuer;
    let en = [("xml:lang", "en")];

    let mut x = Writer::default();
    x.out
        .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.open("elmo", &[("xmlns", NAMESPACE)]);
    x.leaf("generatedDate", &[], &timestamp);

    x.open("learner", &[]);
    let number_type = match holder.identity_number_kind() {
        IdentityNumberKind::Personnummer => "nationalIdentifier",
        IdentityNumberKind::Samordningsnummer => "swedishCoordinationNumber",
    };
    x.leaf(
        "identifier",
        &[("type", number_type)],
        holder.identity_number.as_str(),
    );
    x.leaf(
        "identifier",
        &[("type", "ladokStudentUid")],
        &certificate.student_uid().to_string(),
    );
    x.leaf("givenNames", &[], &holder.given_names);
    x.leaf("familyName", &[], &holder.family_name);
    x.leaf("bday", &[], &holder.birth_date().to_string());
    x.close("learner");

    x.open("report", &[]);
    x.open("issuer", &[]);
    if let Some(country) = &issuer.country {
        x.leaf("country", &[], country);
    }
    for id in &issuer.identifiers {
        x.leaf("identifier", &[("type", &id.kind)], &id.value);
    }
    x.leaf("title", &[("xml:lang", &issuer.name_lang)], &issuer.name);
    x.leaf("url", &[], &issuer.url);
    x.close("issuer");

    x.open("learningOpportunitySpecification", &[]);
    x.leaf(
        "identifier",
        &[("type", "local")],
        &format!("cim-{}", certificate.certificate_id()),
    );
    let names = settings.merit_names(certificate.program_code());
    x.leaf("title", &en, &names.en);
    x.leaf("title", &[("xml:lang", "sv")], &names.sv);
    x.leaf("description", &en, &certificate.description());
    x.open("specifies", &[]);
    x.open("learningOpportunityInstance", &[]);
    if let Some(first) = certificate.activities().iter().map(|a| a.started_on).min() {
        x.leaf("start", &[], &first.to_string());
    }
    x.leaf("date", &[], &certificate.decided_on().to_string());
    x.leaf("status", &[], "passed");
    x.open("diplomaSupplement", &en);
    x.leaf("version", &[], DS_VERSION);
    x.leaf("issueDate", &[], &local.date_naive().to_string());
    // Required by the schema; left empty because this is one local text for Ladok to merge into the DS it
    // issues, which carries the standard introduction itself.
    x.leaf("introduction", &[], "");
    x.open("section", &[("number", "6")]);
    x.leaf("title", &[], "Additional information");
    x.open("section", &[("number", "6.1")]);
    x.leaf("title", &[], "Additional information");
    x.leaf("content", &[], &ds_text);
    x.close("section");
    x.close("section");
    x.close("diplomaSupplement");
    x.close("learningOpportunityInstance");
    x.close("specifies");
    for activity in certificate.activities() {
        x.open("hasPart", &[]);
        x.open("learningOpportunitySpecification", &[]);
        x.leaf(
            "identifier",
            &[("type", "local")],
            &activity.activity_id.to_string(),
        );
        x.leaf("title", &en, &activity.name);
        x.open("specifies", &[]);
        x.open("learningOpportunityInstance", &[]);
        x.leaf("start", &[], &activity.started_on.to_string());
        x.leaf("date", &[], &activity.ended_on.to_string());
        x.leaf("status", &[], "passed");
        x.close("learningOpportunityInstance");
        x.close("specifies");
        x.close("learningOpportunitySpecification");
        x.close("hasPart");
    }
    x.close("learningOpportunitySpecification");
    x.leaf("issueDate", &[], &timestamp);
    x.close("report");
    x.close("elmo");
    Ok(x.out)
}

/// Escapes text for XML element content and attribute values alike (all five predefined entities, so
/// one function is safe in both places), and replaces characters XML 1.0 cannot carry at all (most C0
/// controls, U+FFFE, U+FFFF) with U+FFFD, so that a stray control character in a catalog name yields a
/// visible mark instead of a document every parser rejects. A carriage return is kept as `&#13;`, which
/// parsers would otherwise normalise away.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// An indenting writer for a fixed tree: element names are our own constants, only text and attribute
/// values come from data, and both go through [`escape`].
#[derive(Default)]
struct Writer {
    out: String,
    depth: usize,
}

impl Writer {
    fn start_tag(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.out.push_str(&"  ".repeat(self.depth));
        self.out.push('<');
        self.out.push_str(name);
        for (key, value) in attrs {
            self.out.push(' ');
            self.out.push_str(key);
            self.out.push_str("=\"");
            self.out.push_str(&escape(value));
            self.out.push('"');
        }
        self.out.push('>');
    }

    fn open(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.start_tag(name, attrs);
        self.out.push('\n');
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth -= 1;
        self.out.push_str(&"  ".repeat(self.depth));
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    fn leaf(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) {
        self.start_tag(name, attrs);
        self.out.push_str(&escape(text));
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }
}

#[cfg(test)]
mod tests {
    use super::super::certificate::tests::{approved, revocation};
    use super::*;
    use chrono::TimeZone;

    fn generated_at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 21, 7, 30, 0).unwrap()
    }

    #[test]
    fn escape_covers_the_five_entities_and_impossible_characters() {
        assert_eq!(
            escape(r#"<a href="x">Tom & Jerry's</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&apos;s&lt;/a&gt;"
        );
        assert_eq!(escape("Åsa Zoë\n\tok"), "Åsa Zoë\n\tok");
        assert_eq!(
            escape("a\u{0}b\u{1b}c\u{FFFF}"),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}"
        );
        assert_eq!(escape("a\r\nb"), "a&#13;\nb");
    }

    #[test]
    fn the_document_has_the_cim_in_schema_order() {
        let c = ExportCertificate::new(&approved(), None).unwrap();
        let xml = render(&c, &ExportSettings::default(), generated_at()).unwrap();
        let at = |needle: &str| {
            xml.find(needle)
                .unwrap_or_else(|| panic!("{needle} missing:\n{xml}"))
        };
        assert!(xml.contains(&format!("<elmo xmlns=\"{NAMESPACE}\">")));
        // 07:30 UTC in January is 08:30 in Stockholm.
        assert!(xml.contains("<generatedDate>2026-01-21T08:30:00+01:00</generatedDate>"));
        assert!(xml.contains("<identifier type=\"nationalIdentifier\">198112189876</identifier>"));
        assert!(xml.contains("<givenNames>Åsa Zoë</givenNames>"));
        assert!(xml.contains("<familyName>O&apos;Brien Öberg</familyName>"));
        assert!(xml.contains("<bday>1981-12-18</bday>"));
        assert!(xml.contains(
            "<title xml:lang=\"en\">Language café &lt;B2&gt; &amp; &quot;more&quot;</title>"
        ));
        assert!(xml.contains("<section number=\"6.1\">"));
        assert!(!xml.contains("<type>"), "the CIM has no ELMO type");
        assert!(!xml.contains("<credit>"), "the CIM carries no credits");
        assert_eq!(xml.matches("<hasPart>").count(), 3);
        assert_eq!(xml.matches("<status>passed</status>").count(), 4);
        assert!(at("<learner>") < at("<report>"));
        assert!(at("<issuer>") < at("<learningOpportunitySpecification>"));
        assert!(at("<status>") < at("<diplomaSupplement"));
        assert!(at("</specifies>") < at("<hasPart>"));
        assert!(
            xml.rfind("<issueDate>").unwrap()
                > xml.rfind("</learningOpportunitySpecification>").unwrap()
        );
    }

    #[test]
    fn a_coordination_number_is_not_called_national() {
        let mut a = approved();
        let n = crate::domain::values::IdentityNumber::with_check_digit("19811278987").unwrap();
        a.personal.as_mut().unwrap().identity_number = n.clone();
        let c = ExportCertificate::new(&a, None).unwrap();
        let xml = render(&c, &ExportSettings::default(), generated_at()).unwrap();
        assert!(!xml.contains("nationalIdentifier"));
        assert!(xml.contains(&format!(
            "<identifier type=\"swedishCoordinationNumber\">{}</identifier>",
            n.as_str()
        )));
        assert!(xml.contains("<bday>1981-12-18</bday>"));
    }

    #[test]
    fn a_revoked_certificate_has_no_elmo() {
        let a = approved();
        let c = ExportCertificate::new(&a, Some(&revocation(&a))).unwrap();
        assert!(matches!(
            render(&c, &ExportSettings::default(), generated_at()),
            Err(ExportError::Revoked { .. })
        ));
    }
}
