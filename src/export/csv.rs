//! The Ladok entry CSV: one row per certificate, for the registrar to enter as an AnnanMerit.
//!
//! The columns and their order come from `exports/ladok-csv-columns.txt`, so the registrar's office can
//! ask for a different layout without a code change hunting through format strings. Quoting is RFC 4180
//! (the `csv` crate): names with commas, quotes or apostrophes and multi-line descriptions survive.
//! Lines end in CRLF as RFC 4180 says, and the file is UTF-8 without a byte-order mark.
//!
//! A revocation is a **correction row** (`action` = `revoke`) in a later batch, because batches are
//! immutable: the registrar removes the merit that the `record` row with the same `certificate_id`
//! entered. The revocation's reason is personal data and is not exported.

use super::certificate::{CertificateStatus, ExportCertificate, ExportError, ExportSettings};

const COLUMNS_FILE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/exports/ladok-csv-columns.txt"
));

/// What a row asks the registrar to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowAction {
    Record,
    Revoke,
}

impl RowAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RowAction::Record => "record",
            RowAction::Revoke => "revoke",
        }
    }
}

/// The header, in file order: every line's text before `#`, skipping blank and comment-only lines.
pub fn columns() -> Vec<&'static str> {
    COLUMNS_FILE
        .lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|name| !name.is_empty())
        .collect()
}

/// The CSV for a batch: the header and one row per certificate, in the order given.
pub fn render(
    certificates: &[ExportCertificate],
    settings: &ExportSettings,
) -> Result<Vec<u8>, ExportError> {
    let columns = columns();
    let mut writer = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let csv_error = |e: ::csv::Error| ExportError::Csv(e.to_string());
    writer.write_record(&columns).map_err(csv_error)?;
    for certificate in certificates {
        let row = columns
            .iter()
            .map(|column| value(column, certificate, settings))
            .collect::<Result<Vec<_>, _>>()?;
        writer.write_record(&row).map_err(csv_error)?;
    }
    writer
        .into_inner()
        .map_err(|e| ExportError::Csv(e.to_string()))
}

/// One cell. Holder cells are empty on any row whose holder's personal data was erased; the Ladok UID
/// is always there, so the row still names the student for Ladok.
fn value(
    column: &str,
    c: &ExportCertificate,
    settings: &ExportSettings,
) -> Result<String, ExportError> {
    let holder = c.holder();
    let (action, decision_date, decided_by) = match c.status() {
        CertificateStatus::Approved => (RowAction::Record, c.decided_on(), c.decided_by()),
        CertificateStatus::Revoked {
            revoked_on,
            revoked_by,
        } => (RowAction::Revoke, *revoked_on, revoked_by),
    };
    Ok(match column {
        "action" => action.as_str().to_owned(),
        "certificate_id" => c.certificate_id().to_string(),
        "identity_number" => {
            holder.map_or_else(String::new, |h| h.identity_number.as_str().to_owned())
        }
        "identity_number_kind" => holder.map_or_else(String::new, |h| {
            h.identity_number_kind().as_str().to_owned()
        }),
        "ladok_uid" => c.student_uid().to_string(),
        "given_names" => holder.map_or_else(String::new, |h| h.given_names.clone()),
        "family_name" => holder.map_or_else(String::new, |h| h.family_name.clone()),
        "program_code" => c.program_code().to_string(),
        "program_name" => c.program_name().to_owned(),
        "merit_name" => settings.merit_names(c.program_code()).sv,
        "merit_name_en" => settings.merit_names(c.program_code()).en,
        "description" => c.description(),
        "result" => match action {
            RowAction::Record => settings.result.clone(),
            RowAction::Revoke => String::new(),
        },
        "decision_date" => decision_date.to_string(),
        "decided_by" => decided_by.to_string(),
        "approved_on" => c.decided_on().to_string(),
        other => {
            return Err(ExportError::UnknownColumn {
                column: other.to_owned(),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::certificate::tests::{approved, revocation};
    use super::*;
    use std::collections::HashMap;

    fn parse(bytes: &[u8]) -> Vec<HashMap<String, String>> {
        let mut reader = ::csv::Reader::from_reader(bytes);
        let header: Vec<String> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        reader
            .records()
            .map(|r| {
                header
                    .iter()
                    .cloned()
                    .zip(r.unwrap().iter().map(str::to_owned))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn the_column_file_names_only_columns_the_code_fills() {
        let cols = columns();
        for required in [
            "action",
            "certificate_id",
            "identity_number",
            "ladok_uid",
            "given_names",
            "family_name",
            "program_name",
            "merit_name",
            "description",
            "result",
            "decision_date",
            "decided_by",
        ] {
            assert!(cols.contains(&required), "{required} missing");
        }
        let c = ExportCertificate::new(&approved(), None).unwrap();
        for col in &cols {
            value(col, &c, &ExportSettings::default()).unwrap();
        }
        assert_eq!(
            value("shoe_size", &c, &ExportSettings::default()),
            Err(ExportError::UnknownColumn {
                column: "shoe_size".into()
            })
        );
    }

    #[test]
    fn a_record_row_and_a_revoke_row_parse_back() {
        let a = approved();
        let record = ExportCertificate::new(&a, None).unwrap();
        let revoke = ExportCertificate::new(&a, Some(&revocation(&a))).unwrap();
        let bytes = render(&[record.clone(), revoke], &ExportSettings::default()).unwrap();
        assert!(String::from_utf8(bytes.clone()).unwrap().contains("\r\n"));
        let rows = parse(&bytes);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["action"], "record");
        assert_eq!(rows[0]["identity_number"], "198112189876");
        assert_eq!(rows[0]["family_name"], "O'Brien Öberg");
        assert_eq!(rows[0]["result"], "Passed");
        assert_eq!(rows[0]["decision_date"], "2026-01-20");
        assert_eq!(rows[0]["decided_by"], "coord-7");
        assert_eq!(rows[0]["description"], record.description());
        assert_eq!(rows[1]["action"], "revoke");
        assert_eq!(rows[1]["result"], "");
        assert_eq!(rows[1]["decision_date"], "2026-03-01");
        assert_eq!(rows[1]["decided_by"], "coord-9");
        assert_eq!(rows[1]["approved_on"], "2026-01-20");
        assert_eq!(rows[1]["certificate_id"], rows[0]["certificate_id"]);
    }

    #[test]
    fn an_erased_record_row_keeps_the_ladok_uid_and_blanks_the_holder() {
        let mut a = approved();
        a.personal = None;
        let record = ExportCertificate::new(&a, None).unwrap();
        let rows = parse(&render(&[record], &ExportSettings::default()).unwrap());
        assert_eq!(rows[0]["action"], "record");
        assert_eq!(rows[0]["result"], "Passed");
        assert_eq!(rows[0]["ladok_uid"], a.student_uid.to_string());
        for erased in [
            "identity_number",
            "identity_number_kind",
            "given_names",
            "family_name",
        ] {
            assert_eq!(rows[0][erased], "", "{erased}");
        }
    }

    #[test]
    fn an_erased_revocation_still_names_the_ladok_uid() {
        let mut a = approved();
        a.personal = None;
        let revoke = ExportCertificate::new(&a, Some(&revocation(&a))).unwrap();
        let rows = parse(&render(&[revoke], &ExportSettings::default()).unwrap());
        assert_eq!(rows[0]["identity_number"], "");
        assert_eq!(rows[0]["given_names"], "");
        assert_eq!(rows[0]["ladok_uid"], a.student_uid.to_string());
    }
}
