//! The export formats end to end: a generated cohort of certificates is rendered into a batch, every ELMO
//! document is validated by xmllint against the shared ELMO schema, the CSV parses back to the values the
//! certificates hold, the DS texts name the activities and dates, and the manifest matches the bytes.
//!
//! xmllint is required, not optional: a missing validator must fail the run (CI installs libxml2-utils),
//! otherwise an invalid document would pass unnoticed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use cim::domain::BatchId;
use cim::domain::ids::{
    ActivityId, CatalogItemId, CertificateId, PortfolioId, ProgramCode, ProgramId, StaffId,
    StudentUid,
};
use cim::domain::portfolio::{
    CertificateApproved, CertificateHolder, CertificateRevoked, CertifiedActivity, FinalFormat,
    ReflectionFormat,
};
use cim::domain::values::{IdentityNumber, PersonName};
use cim::export::{
    self, ExportCertificate, ExportError, ExportSettings, FileKind, Manifest, file_name_for,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

const ELMO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/formats/elmo");

/// Names chosen to break naive writers: non-ASCII letters, apostrophes, ampersands, commas, quotes.
const NAMES: &[(&str, &str)] = &[
    ("Åsa", "Öberg"),
    ("Zoë", "Ångström"),
    ("Seán", "O'Brien"),
    ("Anna-Karin", "Smith & Jones"),
    ("Björn", "Ödmark, Jr."),
    ("Émile \"Mel\"", "Lefèvre"),
    ("Nguyễn", "Thị Minh"),
    ("Łukasz", "Żółć"),
    ("Ingrid", "Ås'berg"),
    ("李", "小龍"),
];

/// Program names and catalog names are not person names: they may contain markup characters.
const PROGRAMS: &[(&str, &str)] = &[
    ("dental", "Dental Program"),
    (
        "bioent",
        "Master's Program in Bioentrepreneurship <MSc> & more",
    ),
    ("ot", "Occupational Therapy Program, \"OT\""),
];

const ACTIVITIES: &[(&str, &str)] = &[
    ("language-cafe", "Language café (participant & coordinator)"),
    ("tedx", "TEDx <KI>"),
    ("bip", "Blended Intensive Programme, \"BIP\""),
    ("mentor", "Mentor / study buddy"),
    ("global-health", "Course in global health\nsecond line"),
];

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// A valid 12-digit number for a birth date and serial; `coordination` adds 60 to the day.
fn identity_number(birth: NaiveDate, serial: u32, coordination: bool) -> IdentityNumber {
    use chrono::Datelike;
    let day = birth.day() + if coordination { 60 } else { 0 };
    let eleven = format!("{}{day:02}{serial:03}", birth.format("%Y%m"));
    IdentityNumber::with_check_digit(&eleven).unwrap()
}

fn approval(i: usize) -> CertificateApproved {
    let (given, family) = NAMES[i % NAMES.len()];
    let (code, program) = PROGRAMS[i % PROGRAMS.len()];
    let activities = (0..3)
        .map(|k| {
            let (item, name) = ACTIVITIES[(i + k) % ACTIVITIES.len()];
            let start = date(2025, 1 + (k as u32) * 3, 1 + (i as u32 % 28));
            CertifiedActivity {
                activity_id: ActivityId::new(Uuid::from_u128((i * 10 + k) as u128 + 1)),
                item: CatalogItemId::parse(item).unwrap(),
                item_name: name.to_owned(),
                started_on: start,
                ended_on: start + chrono::Days::new(k as u64 * 20),
                reflection_format: ReflectionFormat::Written,
            }
        })
        .collect();
    CertificateApproved {
        certificate_id: CertificateId::new(Uuid::from_u128(0xCE00 + i as u128)),
        portfolio_id: PortfolioId::new(Uuid::from_u128(0xF000 + i as u128)),
        program_id: ProgramId::new(Uuid::from_u128(0xA000 + (i % PROGRAMS.len()) as u128)),
        program_code: ProgramCode::parse(code).unwrap(),
        program_name: program.to_owned(),
        student_uid: StudentUid::new(Uuid::from_u128(0x5000 + i as u128)),
        application: 1,
        activities,
        final_format: FinalFormat::Oral,
        decided_on: date(2026, 1, 1 + i as u32),
        decided_by: StaffId::parse(&format!("coordinator-{i}@ki.se")).unwrap(),
        personal: Some(CertificateHolder {
            identity_number: identity_number(
                date(1990 + i as i32 % 10, 1 + i as u32 % 12, 1 + i as u32),
                100 + i as u32,
                i % 7 == 3,
            ),
            name: PersonName::parse(given, family).unwrap(),
        }),
    }
}

fn revocation(of: &CertificateApproved) -> CertificateRevoked {
    CertificateRevoked {
        certificate_id: of.certificate_id,
        by: StaffId::parse("coordinator-x@ki.se").unwrap(),
        revoked_on: of.decided_on + chrono::Days::new(30),
        personal: None,
    }
}

/// 20 certificates: every fifth is revoked, and one revoked certificate's holder was erased.
fn cohort() -> Vec<(CertificateApproved, Option<CertificateRevoked>)> {
    (0..20)
        .map(|i| {
            let mut approved = approval(i);
            let revoked = (i % 5 == 4).then(|| revocation(&approved));
            if i == 9 {
                approved.personal = None;
            }
            (approved, revoked)
        })
        .collect()
}

fn generated_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 14, 23, 30, 5).unwrap()
}

/// Runs xmllint exactly as `shared/formats/elmo/README.md` says: offline, schemas resolved by the catalog.
fn xmllint(file: &Path) -> std::process::Output {
    let dir = PathBuf::from(ELMO_DIR)
        .canonicalize()
        .expect("the shared ELMO schema folder ../shared/formats/elmo exists");
    match Command::new("xmllint")
        .env("XML_CATALOG_FILES", dir.join("catalog.xml"))
        .arg("--noout")
        .arg("--nonet")
        .arg("--schema")
        .arg(dir.join("schema.xsd"))
        .arg(file)
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "xmllint is not installed: install libxml2-utils (apt-get install -y libxml2-utils); \
             every ELMO export must be validated against the schema"
        ),
        Err(e) => panic!("running xmllint failed: {e}"),
    }
}

#[test]
fn every_format_renders_the_cohort_and_every_elmo_document_validates() {
    let settings = ExportSettings::default();
    let events = cohort();
    let certificates: Vec<ExportCertificate> = events
        .iter()
        .map(|(a, r)| ExportCertificate::new(a, r.as_ref()).unwrap())
        .collect();
    let files = export::render_batch(&certificates, &settings, generated_at()).unwrap();
    let counts = export::batch_counts(&certificates);
    assert_eq!((counts.certificates, counts.revocations), (16, 4));
    // The CSV plus a DS text and an ELMO document per standing certificate.
    assert_eq!(files.len(), 1 + 2 * 16);

    // Write the batch as the worker would, then check everything from the disk.
    let dir = tempfile::tempdir().unwrap();
    for f in &files {
        std::fs::write(dir.path().join(&f.name), &f.bytes).unwrap();
    }
    let manifest = Manifest::compute(
        BatchId::new(Uuid::from_u128(0xBA7C4)),
        generated_at(),
        counts,
        files.iter().map(|f| (f.name.as_str(), f.bytes.as_slice())),
    )
    .unwrap();
    std::fs::write(
        dir.path().join(export::MANIFEST_FILE_NAME),
        manifest.to_json(),
    )
    .unwrap();

    check_elmo(dir.path(), &events);
    check_csv(dir.path(), &events);
    check_ds(dir.path(), &events);
    check_manifest(dir.path(), files.len());
}

fn check_elmo(dir: &Path, events: &[(CertificateApproved, Option<CertificateRevoked>)]) {
    let mut validated = 0;
    for (approved, revoked) in events {
        let path = dir.join(file_name_for(approved.certificate_id, FileKind::Elmo));
        if revoked.is_some() {
            assert!(!path.exists(), "a revoked certificate has no ELMO");
            continue;
        }
        let out = xmllint(&path);
        assert!(
            out.status.success(),
            "{} does not validate:\n{}\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&path).unwrap()
        );
        let xml = std::fs::read_to_string(&path).unwrap();
        let holder = approved.personal.as_ref().unwrap();
        assert!(xml.contains(holder.identity_number.as_str()));
        assert!(xml.contains(&format!(
            "<bday>{}</bday>",
            holder.identity_number.birth_date()
        )));
        validated += 1;
    }
    assert_eq!(validated, 16);

    // The validator really checks: the same document with an element out of schema order is refused.
    let sample = dir.join(file_name_for(events[0].0.certificate_id, FileKind::Elmo));
    let broken = std::fs::read_to_string(&sample).unwrap().replacen(
        "<status>passed</status>",
        "<status>passed</status><type>Course</type>",
        1,
    );
    let broken_path = dir.join("broken.xml");
    std::fs::write(&broken_path, broken).unwrap();
    assert!(!xmllint(&broken_path).status.success());
    std::fs::remove_file(broken_path).unwrap();
}

fn check_csv(dir: &Path, events: &[(CertificateApproved, Option<CertificateRevoked>)]) {
    let bytes = std::fs::read(dir.join(export::LADOK_CSV_FILE_NAME)).unwrap();
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows: Vec<HashMap<String, String>> = reader
        .records()
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.unwrap().iter().map(String::from))
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), events.len(), "one row per certificate");
    for ((approved, revoked), row) in events.iter().zip(&rows) {
        assert_eq!(row["certificate_id"], approved.certificate_id.to_string());
        assert_eq!(row["ladok_uid"], approved.student_uid.to_string());
        assert_eq!(row["program_name"], approved.program_name);
        assert_eq!(row["merit_name"], "Certifikat för internationella meriter");
        assert_eq!(row["merit_name_en"], "Certificate of International Merits");
        assert_eq!(row["approved_on"], approved.decided_on.to_string());
        for a in &approved.activities {
            assert!(
                row["description"].contains(&a.item_name),
                "{}",
                row["description"]
            );
        }
        match &approved.personal {
            Some(h) => {
                assert_eq!(row["identity_number"], h.identity_number.as_str());
                assert_eq!(row["given_names"], h.name.given_names());
                assert_eq!(row["family_name"], h.name.family_name());
                let kind = if h.identity_number.is_coordination_number() {
                    "samordningsnummer"
                } else {
                    "personnummer"
                };
                assert_eq!(row["identity_number_kind"], kind);
            }
            None => {
                assert_eq!(row["identity_number"], "");
                assert_eq!(row["family_name"], "");
            }
        }
        match revoked {
            None => {
                assert_eq!(row["action"], "record");
                assert_eq!(row["result"], "Passed");
                assert_eq!(row["decision_date"], approved.decided_on.to_string());
                assert_eq!(row["decided_by"], approved.decided_by.as_str());
            }
            Some(r) => {
                assert_eq!(row["action"], "revoke");
                assert_eq!(row["result"], "");
                assert_eq!(row["decision_date"], r.revoked_on.to_string());
                assert_eq!(row["decided_by"], r.by.as_str());
            }
        }
    }
}

fn check_ds(dir: &Path, events: &[(CertificateApproved, Option<CertificateRevoked>)]) {
    let long = |d: NaiveDate| d.format("%-d %B %Y").to_string();
    for (approved, revoked) in events {
        let path = dir.join(file_name_for(
            approved.certificate_id,
            FileKind::DiplomaSupplement,
        ));
        if revoked.is_some() {
            assert!(!path.exists(), "a revoked certificate has no DS text");
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.contains("Certificate of International Merits"));
        assert!(text.contains(&approved.program_name));
        assert!(text.contains(&long(approved.decided_on)), "{text}");
        for a in &approved.activities {
            assert!(text.contains(&a.item_name), "{text}");
            assert!(text.contains(&long(a.started_on)), "{text}");
            assert!(text.contains(&long(a.ended_on)), "{text}");
        }
    }
}

fn check_manifest(dir: &Path, files: usize) {
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(export::MANIFEST_FILE_NAME)).unwrap())
            .unwrap();
    assert_eq!(json["counts"]["certificates"], 16);
    assert_eq!(json["counts"]["revocations"], 4);
    assert_eq!(json["counts"]["files"], files);
    let listed = json["files"].as_array().unwrap();
    assert_eq!(listed.len(), files);
    for f in listed {
        let bytes = std::fs::read(dir.join(f["name"].as_str().unwrap())).unwrap();
        assert_eq!(f["size"], bytes.len());
        assert_eq!(f["sha256"], hex::encode(Sha256::digest(&bytes)));
    }
}

#[test]
fn an_approved_certificate_without_holder_data_gets_a_row_and_no_file_naming_the_holder() {
    let mut approved = approval(0);
    approved.personal = None;
    let certificate = ExportCertificate::new(&approved, None).unwrap();
    assert_eq!(certificate.holder(), None);
    let settings = ExportSettings::default();
    let holder_erased: Result<(), ExportError> = Err(ExportError::HolderErased {
        certificate_id: approved.certificate_id,
    });
    let elmo = export::elmo::render(&certificate, &settings, generated_at());
    assert_eq!(elmo.map(|_| ()), holder_erased.clone());
    let ds = export::ds::section_6_1(&certificate, &settings);
    assert_eq!(ds.map(|_| ()), holder_erased);
    let certificates = [certificate];
    let files = export::render_batch(&certificates, &settings, generated_at()).unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, [export::LADOK_CSV_FILE_NAME]);
    assert_eq!(
        export::personal_data_erased(&certificates),
        [approved.certificate_id]
    );
}
