//! The certificate as a reader sees it: rendered by poppler (`pdftotext`, `pdftoppm`, Debian's
//! `poppler-utils`), its text read back and its QR code scanned from the rendered page.

use std::path::{Path, PathBuf};
use std::process::Command;

use uuid::Uuid;

use super::*;

const VERIFY_URL: &str = "https://cim.example.se/verify/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn certificate() -> PrintableCertificate {
    PrintableCertificate {
        university: "Uppsala universitet".to_owned(),
        student_name: "Åsa Öberg-Lindström".to_owned(),
        program_name: "Civilingenjörsprogrammet i energisystem".to_owned(),
        program_code: ProgramCode::parse("energi-civ").unwrap(),
        activities: vec![
            PrintedActivity {
                name: "Utbytesstudier vid Universität Wien".to_owned(),
                started_on: date(2025, 9, 1),
                ended_on: date(2026, 1, 31),
            },
            PrintedActivity {
                name: "Praktik på Sveriges ambassad i Nairobi".to_owned(),
                started_on: date(2026, 3, 2),
                ended_on: date(2026, 5, 29),
            },
            PrintedActivity {
                name: "Mentor för internationella studenter".to_owned(),
                started_on: date(2026, 8, 17),
                ended_on: date(2026, 11, 20),
            },
        ],
        final_format: FinalFormat::Oral,
        approved_on: date(2026, 12, 7),
        certificate_id: CertificateId::new(Uuid::from_u128(
            0x0190_a1b2_c3d4_7e5f_8a9b_0c1d_2e3f_4a5b,
        )),
        verify_url: VERIFY_URL.to_owned(),
    }
}

/// Runs one of poppler's tools; a missing tool fails the test (CI installs `poppler-utils`).
fn poppler(tool: &str, args: &[&str]) -> Vec<u8> {
    let output = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool} could not be started (install poppler-utils): {e}"));
    assert!(
        output.status.success(),
        "{tool} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn write_pdf(dir: &Path, language: Language) -> PathBuf {
    let path = dir.join(format!("certificate-{}.pdf", language.code()));
    std::fs::write(&path, render(&certificate(), language).unwrap()).unwrap();
    path
}

/// The page's text as `pdftotext` extracts it, whitespace collapsed so a wrapped line still matches.
fn text_of(pdf: &Path) -> String {
    let text = poppler("pdftotext", &[pdf.to_str().unwrap(), "-"]);
    let text = String::from_utf8(text).unwrap();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn both_languages_read_back_with_everything_the_certificate_states() {
    let dir = tempfile::tempdir().unwrap();
    let cert = certificate();
    for (language, expected) in [
        (
            Language::Swedish,
            [
                "Intyg om internationella meriter",
                "Härmed intygas att",
                "2026-12-07",
                "2025-09-01 – 2026-01-31",
                "Avslutande reflektion: muntlig",
            ],
        ),
        (
            Language::English,
            [
                "Certificate of International Merits",
                "This is to certify that",
                "Approved on 7 December 2026",
                "1 September 2025 – 31 January 2026",
                "Final reflection: oral",
            ],
        ),
    ] {
        let text = text_of(&write_pdf(dir.path(), language));
        let stated = [
            cert.university.as_str(),
            &cert.student_name,
            &cert.program_name,
            "(energi-civ)",
            &cert.activities[0].name,
            &cert.activities[1].name,
            &cert.activities[2].name,
            VERIFY_URL,
            "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        ];
        for needle in stated.into_iter().chain(expected) {
            assert!(
                text.contains(needle),
                "{language:?}: {needle:?} missing from {text:?}"
            );
        }
    }
}

#[test]
fn the_page_renders_as_one_a4_portrait_page() {
    let dir = tempfile::tempdir().unwrap();
    let pdf = write_pdf(dir.path(), Language::English);
    let prefix = dir.path().join("page");
    poppler(
        "pdftoppm",
        &[
            "-png",
            "-r",
            "72",
            pdf.to_str().unwrap(),
            prefix.to_str().unwrap(),
        ],
    );
    let pages: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "png"))
        .collect();
    assert_eq!(pages.len(), 1, "one page expected: {pages:?}");
    // A PNG's size is in its IHDR chunk, right after the 8-byte signature and the chunk header.
    let png = std::fs::read(&pages[0]).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    // A4 at 72 dpi is 595.3 × 841.9 points; poppler rounds each side to whole pixels.
    assert!(
        (595..=596).contains(&width) && (841..=842).contains(&height),
        "{width} × {height}"
    );
    let ratio = f64::from(height) / f64::from(width);
    assert!(
        (ratio - 297.0 / 210.0).abs() < 0.005,
        "not A4 portrait: {ratio}"
    );
}

#[test]
fn the_qr_code_scans_back_to_the_verification_link() {
    let dir = tempfile::tempdir().unwrap();
    for language in [Language::Swedish, Language::English] {
        let pdf = write_pdf(dir.path(), language);
        // A greyscale PGM: a tiny header and raw bytes, so no image decoder is needed.
        let pgm = poppler(
            "pdftoppm",
            &["-gray", "-r", "150", "-singlefile", pdf.to_str().unwrap()],
        );
        let (width, height, pixels) = parse_pgm(&pgm);
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
            pixels[y * width + x]
        });
        let grids = image.detect_grids();
        assert_eq!(
            grids.len(),
            1,
            "{language:?}: one QR code expected on the page"
        );
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, VERIFY_URL);
    }
}

/// Width, height and pixels of a binary PGM (`P5`, 8-bit), as `pdftoppm -gray` writes it.
fn parse_pgm(pgm: &[u8]) -> (usize, usize, &[u8]) {
    let mut fields = Vec::new();
    let mut start = 0;
    for (i, byte) in pgm.iter().enumerate() {
        if byte.is_ascii_whitespace() {
            if i > start {
                fields.push(std::str::from_utf8(&pgm[start..i]).unwrap());
            }
            start = i + 1;
            if fields.len() == 4 {
                break;
            }
        }
    }
    assert_eq!(fields[0], "P5");
    assert_eq!(fields[3], "255");
    let (width, height) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let pixels = &pgm[start..];
    assert_eq!(pixels.len(), width * height);
    (width, height, pixels)
}

#[test]
fn a_name_the_fonts_cannot_print_is_refused_not_misprinted() {
    let mut cert = certificate();
    cert.student_name = "Łucja Wąsowska".to_owned();
    let error = render(&cert, Language::English).unwrap_err();
    assert!(matches!(
        error,
        PdfError::Unprintable {
            field: "student name",
            character: 'Ł'
        }
    ));
}

#[test]
fn text_that_would_run_into_the_verification_block_is_refused() {
    let mut cert = certificate();
    let activity = cert.activities[0].clone();
    cert.activities = vec![activity; 12];
    assert!(matches!(
        render(&cert, Language::Swedish),
        Err(PdfError::DoesNotFit)
    ));
}

#[test]
fn a_link_too_long_for_a_qr_code_is_refused() {
    let mut cert = certificate();
    cert.verify_url = format!("https://cim.example.se/verify/{}", "x".repeat(3000));
    assert!(matches!(
        render(&cert, Language::English),
        Err(PdfError::VerifyUrl(_))
    ));
}
