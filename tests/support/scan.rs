//! Searching for a person's data where it could be left: the whole database as `pg_dump` writes it,
//! and the files of a folder (exports, media). Every value is searched for in each form a person or
//! a program writes it, so a scan that finds nothing means nothing, not merely "not this spelling".

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One written form of a personal value; `what` names it in assertions (never the value itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    pub what: &'static str,
    pub value: String,
}

/// The forms of a student's personal values: the identity number as 12 digits, as
/// `YYYYMMDD-NNNC`, as 10 digits and as `YYMMDD-NNNC`; the names as written and lower-cased; the
/// e-mail address as written and lower-cased; and a sentence of one of their reflections.
pub fn forms(
    identity_number: &str,
    given_names: &str,
    family_name: &str,
    email: &str,
    sentence: &str,
) -> Vec<Form> {
    let n = identity_number;
    assert_eq!(n.len(), 12, "the identity number is stored as 12 digits");
    let form = |what, value: String| Form { what, value };
    vec![
        form("identity number, 12 digits", n.to_owned()),
        form(
            "identity number, YYYYMMDD-NNNC",
            format!("{}-{}", &n[..8], &n[8..]),
        ),
        form("identity number, 10 digits", n[2..].to_owned()),
        form(
            "identity number, YYMMDD-NNNC",
            format!("{}-{}", &n[2..8], &n[8..]),
        ),
        form("given names", given_names.to_owned()),
        form("given names, lower-cased", given_names.to_lowercase()),
        form("family name", family_name.to_owned()),
        form("family name, lower-cased", family_name.to_lowercase()),
        form("e-mail", email.to_owned()),
        form("e-mail, lower-cased", email.to_lowercase()),
        form("a sentence of a reflection", sentence.to_owned()),
    ]
}

/// A sentence of `text` long enough to be the student's own (at least eight words).
pub fn a_sentence(text: &str) -> String {
    text.split_terminator(['.', '!', '?'])
        .map(str::trim)
        .find(|s| s.split_whitespace().count() >= 8)
        .expect("a sentence of eight words or more")
        .to_owned()
}

/// Whether `haystack` holds `needle` as itself (raw or JSON-escaped), not merely as part of a
/// longer word or number: a short name could otherwise turn up by chance inside base64 ciphertext,
/// and the 10-digit identity number is part of the 12-digit one (each form is searched on its own).
pub fn contains_value(haystack: &str, needle: &str) -> bool {
    let escaped = serde_json::to_string(needle).unwrap();
    let escaped = &escaped[1..escaped.len() - 1];
    [needle, escaped].iter().any(|n| {
        haystack.match_indices(n).any(|(at, _)| {
            let before = haystack[..at].chars().next_back();
            let after = haystack[at + n.len()..].chars().next();
            let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
            !word(before) && !word(after)
        })
    })
}

/// Which of `forms` `text` holds, by name.
pub fn found(text: &str, forms: &[Form]) -> BTreeSet<&'static str> {
    forms
        .iter()
        .filter(|f| contains_value(text, &f.value))
        .map(|f| f.what)
        .collect()
}

/// Which of `forms` each file holds, by file name (files holding none are left out).
pub fn found_in_files(
    files: &BTreeMap<String, Vec<u8>>,
    forms: &[Form],
) -> BTreeMap<String, BTreeSet<&'static str>> {
    files
        .iter()
        .map(|(name, bytes)| (name.clone(), found(&String::from_utf8_lossy(bytes), forms)))
        .filter(|(_, hits)| !hits.is_empty())
        .collect()
}

/// Every file under `dir` with its bytes, by path relative to `dir`.
pub fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                out.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// The whole database as text: a plain `pg_dump` (schema and every row of every table, read
/// models, key and index tables included) by the newest `pg_dump` that can dump this server. Where
/// none is installed, every row of every table cast to text, which is what the dump's data is.
pub async fn database_text(url: &str, pool: &sqlx::PgPool) -> String {
    for pg_dump in super::pg_tools::installed("pg_dump") {
        let out = std::process::Command::new(&pg_dump)
            .args(["--no-owner", "--no-privileges", "--dbname", url])
            .output();
        // A pg_dump older than the server refuses to dump it: try the next.
        if let Ok(out) = out
            && out.status.success()
        {
            return String::from_utf8(out.stdout).expect("a UTF-8 dump");
        }
    }
    rows_as_text(pool).await
}

async fn rows_as_text(pool: &sqlx::PgPool) -> String {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT n.nspname::text, c.relname::text FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'm')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    // Laid out as a dump's data is: a `COPY` line naming the table, then its rows.
    let mut text = String::new();
    for (schema, table) in tables {
        text.push_str(&format!("COPY {schema}.{table} FROM stdin;\n"));
        let rows: Vec<String> =
            sqlx::query_scalar(&format!(r#"SELECT t::text FROM "{schema}"."{table}" t"#))
                .fetch_all(pool)
                .await
                .unwrap();
        for row in rows {
            text.push_str(&row);
            text.push('\n');
        }
    }
    text
}
