//! The printable certificate: one A4 page in Swedish or English that a student can hand to an
//! employer or a university abroad, with a QR code leading to the verification page.
//!
//! [`render`] takes plain data ([`PrintableCertificate`]) and does no I/O, so whoever issues the
//! certificate decides what it states (and what erasure leaves of it); this module only lays it out.
//! The text is real PDF text in the standard Helvetica faces (see `fonts`), so it can be searched,
//! copied and read aloud, and the file embeds no font.

mod canvas;
mod fonts;
mod qr;
mod texts;

use chrono::NaiveDate;
use printpdf::{PdfDocument, PdfSaveOptions};
use qrcode::types::QrError;

use crate::domain::portfolio::FinalFormat;
use crate::domain::{CertificateId, ProgramCode};
use crate::notify::templates::{Language, format_date};

use canvas::{Canvas, Ink, PAGE_HEIGHT, PAGE_WIDTH, mm_to_pt, pt_to_mm};
use fonts::{Face, unprintable, wrap};
use texts::{MERIT, Texts};

/// What the printed certificate states. Names are as the student and the program have them; dates
/// are calendar days (Stockholm), as the certificate itself records them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintableCertificate {
    /// The issuing university, as it signs (e.g. "Uppsala universitet").
    pub university: String,
    pub student_name: String,
    pub program_name: String,
    pub program_code: ProgramCode,
    /// The activities the certificate was approved for, in the order they are printed.
    pub activities: Vec<PrintedActivity>,
    pub final_format: FinalFormat,
    pub approved_on: NaiveDate,
    /// Printed so that a registrar can find the certificate without scanning the code.
    pub certificate_id: CertificateId,
    /// The public page that confirms the certificate is authentic and not revoked; printed as
    /// text and as the QR code.
    pub verify_url: String,
}

/// One international activity as the certificate prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintedActivity {
    pub name: String,
    pub started_on: NaiveDate,
    pub ended_on: NaiveDate,
}

/// Why no certificate could be printed. Each is a property of the data, so retrying will not help.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// The standard PDF fonts cover Windows-1252 (Swedish and most Western European names), not
    /// every script; printing `?` instead of a letter of someone's name is not acceptable on a
    /// certificate, so it is refused.
    #[error("the {field} contains {character:?}, which the certificate's fonts cannot print")]
    Unprintable {
        field: &'static str,
        character: char,
    },
    /// The link is too long for a QR code a phone can read from paper.
    #[error("the verification link cannot be put in a QR code")]
    VerifyUrl(#[source] QrError),
    /// The names are so long, or the activities so many, that the text would run into the
    /// verification block at the foot of the page.
    #[error("the certificate's text does not fit on one page")]
    DoesNotFit,
}

/// The certificate as a one-page PDF in `language`.
pub fn render(cert: &PrintableCertificate, language: Language) -> Result<Vec<u8>, PdfError> {
    check_printable(cert)?;
    let texts = Texts::of(language);
    let mut canvas = Canvas::default();
    canvas.frame(10.0, 1.6, Ink::Navy);
    canvas.frame(12.5, 0.6, Ink::Gold);
    let mut body = Flow {
        canvas,
        y: PAGE_HEIGHT - 25.0,
    };
    write_body(&mut body, cert, texts, language);
    if body.y < FOOTER_TOP + 4.0 {
        return Err(PdfError::DoesNotFit);
    }
    let mut canvas = body.canvas;
    write_footer(&mut canvas, cert, texts)?;

    let title = format!("{MERIT} – {}", cert.student_name);
    let mut document = PdfDocument::new(&title);
    document.metadata.info.author = cert.university.clone();
    document.metadata.info.subject = texts.title.to_owned();
    let mut warnings = Vec::new();
    let bytes = document
        .with_pages(vec![canvas.into_page()])
        .save(&PdfSaveOptions::default(), &mut warnings);
    for warning in warnings {
        tracing::debug!(message = %warning.msg, "printpdf warning while writing a certificate");
    }
    Ok(bytes)
}

/// Refuses any text the fonts would misprint, naming the field, before anything is drawn.
fn check_printable(cert: &PrintableCertificate) -> Result<(), PdfError> {
    let fields = [
        ("university", cert.university.as_str()),
        ("student name", &cert.student_name),
        ("program name", &cert.program_name),
        ("verification link", &cert.verify_url),
    ];
    let activities = cert
        .activities
        .iter()
        .map(|a| ("activity name", a.name.as_str()));
    for (field, text) in fields.into_iter().chain(activities) {
        if let Some(character) = unprintable(text) {
            return Err(PdfError::Unprintable { field, character });
        }
    }
    Ok(())
}

/// Left edge and width of the body's text, in millimetres: inside the frames with a margin.
const LEFT: f32 = 28.0;
const RIGHT: f32 = PAGE_WIDTH - 28.0;
/// Where the activities' names start (after their number).
const INDENT: f32 = LEFT + 6.0;
/// The top of the verification block; the body must end above it.
const FOOTER_TOP: f32 = 74.0;

/// The body of the page, set from the top down.
fn write_body(body: &mut Flow, cert: &PrintableCertificate, texts: &Texts, language: Language) {
    body.centred(Face::Bold, 14.0, Ink::Navy, &cert.university);
    body.gap(3.0);
    body.canvas.rule(
        PAGE_WIDTH / 2.0 - 20.0,
        PAGE_WIDTH / 2.0 + 20.0,
        body.y,
        0.8,
        Ink::Gold,
    );
    body.gap(10.0);
    body.centred(Face::Bold, 22.0, Ink::Navy, texts.title);
    if let Some(subtitle) = texts.subtitle {
        body.centred(Face::Oblique, 13.0, Ink::Grey, subtitle);
    }
    body.gap(14.0);
    body.centred(Face::Regular, 12.0, Ink::Text, texts.certify);
    body.gap(4.0);
    body.centred(Face::Bold, 24.0, Ink::Navy, &cert.student_name);
    body.gap(4.0);
    body.centred(Face::Regular, 12.0, Ink::Text, texts.completed);
    body.gap(2.0);
    let program = format!("{} ({})", cert.program_name, cert.program_code.as_str());
    body.centred(Face::Bold, 15.0, Ink::Navy, &program);

    body.gap(12.0);
    body.left(LEFT, Face::Bold, 12.0, Ink::Navy, texts.activities);
    body.gap(1.5);
    body.canvas.rule(LEFT, RIGHT, body.y, 0.6, Ink::Gold);
    body.gap(1.0);
    for (number, activity) in cert.activities.iter().enumerate() {
        body.gap(2.0);
        let top = body.y;
        body.left(INDENT, Face::Bold, 11.0, Ink::Text, &activity.name);
        let first_baseline = top - line_height(11.0);
        let label = format!("{}.", number + 1);
        body.canvas
            .text(LEFT, first_baseline, Face::Bold, 11.0, Ink::Text, &label);
        let dates = format!(
            "{} – {}",
            format_date(activity.started_on, language),
            format_date(activity.ended_on, language)
        );
        body.left(INDENT, Face::Regular, 10.0, Ink::Grey, &dates);
    }

    body.gap(8.0);
    let format = format!(
        "{}: {}",
        texts.final_reflection,
        texts.format(cert.final_format)
    );
    body.left(LEFT, Face::Regular, 11.0, Ink::Text, &format);
    body.gap(2.0);
    let approved = format!(
        "{} {}",
        texts.approved,
        format_date(cert.approved_on, language)
    );
    body.left(LEFT, Face::Bold, 11.0, Ink::Text, &approved);
}

/// The verification block at the foot of the page: the QR code and, beside it, how to verify,
/// the link and the certificate's id.
fn write_footer(
    canvas: &mut Canvas,
    cert: &PrintableCertificate,
    texts: &Texts,
) -> Result<(), PdfError> {
    const QR_SIZE: f32 = 46.0;
    const QR_LEFT: f32 = LEFT - 6.0;
    const QR_BOTTOM: f32 = 20.0;
    const TEXT_LEFT: f32 = QR_LEFT + QR_SIZE + 2.0;
    let modules = qr::modules(&cert.verify_url).map_err(PdfError::VerifyUrl)?;
    canvas.rule(LEFT, RIGHT, FOOTER_TOP - 2.0, 0.6, Ink::Gold);
    qr::draw(canvas, &modules, QR_LEFT, QR_BOTTOM, QR_SIZE);

    let mut block = Flow {
        canvas: std::mem::take(canvas),
        y: QR_BOTTOM + QR_SIZE - 4.0,
    };
    block.left(TEXT_LEFT, Face::Bold, 11.0, Ink::Navy, texts.verify_heading);
    block.gap(1.0);
    block.left(TEXT_LEFT, Face::Regular, 9.5, Ink::Text, texts.verify_how);
    block.gap(1.5);
    block.left(TEXT_LEFT, Face::Regular, 9.5, Ink::Navy, &cert.verify_url);
    block.gap(1.5);
    let id = format!("{}: {}", texts.certificate_id, cert.certificate_id);
    block.left(TEXT_LEFT, Face::Regular, 8.5, Ink::Grey, &id);
    *canvas = block.canvas;
    Ok(())
}

/// The distance from one baseline to the next for text of `size` points, in millimetres.
fn line_height(size: f32) -> f32 {
    pt_to_mm(size * 1.3)
}

/// Text set from the top down: `y` is the bottom of what has been set so far.
struct Flow {
    canvas: Canvas,
    y: f32,
}

impl Flow {
    fn gap(&mut self, mm: f32) {
        self.y -= mm;
    }

    /// A paragraph centred on the page, broken to the body's width.
    fn centred(&mut self, face: Face, size: f32, ink: Ink, text: &str) {
        for line in wrap(text, face, size, mm_to_pt(RIGHT - LEFT)) {
            self.y -= line_height(size);
            self.canvas.centred(self.y, face, size, ink, &line);
        }
    }

    /// A paragraph from `x` to the body's right edge.
    fn left(&mut self, x: f32, face: Face, size: f32, ink: Ink, text: &str) {
        for line in wrap(text, face, size, mm_to_pt(RIGHT - x)) {
            self.y -= line_height(size);
            self.canvas.text(x, self.y, face, size, ink, &line);
        }
    }
}

#[cfg(test)]
mod tests;
