//! How the test tells that a restored database and media folder equal the original: every table
//! row for row, the media folders byte for byte, and every media reference of the log resolved.
//! Each returns what differs (empty when nothing does), so the test can also show that it fails.

use cim::media::MediaStore;
use cim::store::{Checkpoint, EventStore};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::support::scan::files;

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every table of the database's `public` schema, by name.
async fn tables(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Every row of `table`, each as PostgreSQL's text form of the whole row (every column), in a
/// stable order: the log by position, other tables by that text.
pub async fn rows(pool: &PgPool, table: &str) -> Vec<String> {
    let order = if table == "events" { "t.position" } else { "1" };
    // Dynamic: the table names come from the catalog above, quoted.
    sqlx::query_scalar(&format!(
        r#"SELECT t::text FROM public."{table}" t ORDER BY {order}"#
    ))
    .fetch_all(pool)
    .await
    .unwrap()
}

/// What differs between two databases' tables: a table on one side only, or a row that differs
/// (the first one named, by its index in the order of [`rows`]).
pub async fn table_differences(original: &PgPool, restored: &PgPool) -> Vec<String> {
    let (names, restored_names) = (tables(original).await, tables(restored).await);
    let mut out: Vec<String> = names
        .iter()
        .filter(|n| !restored_names.contains(n))
        .chain(restored_names.iter().filter(|n| !names.contains(n)))
        .map(|n| format!("{n}: on one side only"))
        .collect();
    for name in names.iter().filter(|n| restored_names.contains(n)) {
        let (a, b) = (rows(original, name).await, rows(restored, name).await);
        if a.len() != b.len() {
            out.push(format!("{name}: {} rows, restored {}", a.len(), b.len()));
        } else if let Some(i) = a.iter().zip(&b).position(|(x, y)| x != y) {
            out.push(format!("{name}: row {i} differs:\n  {}\n  {}", a[i], b[i]));
        }
    }
    out
}

/// Every SHA-256 a value names under a `sha256` key: the media references of a personal part.
fn media_hashes(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(fields) => {
            for (k, v) in fields {
                match v.as_str() {
                    Some(s) if k == "sha256" => {
                        out.insert(s.to_owned());
                    }
                    _ => media_hashes(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| media_hashes(v, out)),
        _ => {}
    }
}

/// What is wrong with a restored media folder: a file that differs from the original's or is on one
/// side only, a file not named by the hash of its bytes, a reference that does not resolve.
pub fn media_problems(
    original: &BTreeMap<String, Vec<u8>>,
    restored_dir: &Path,
    references: &BTreeSet<String>,
) -> Vec<String> {
    let restored = files(restored_dir);
    let mut out = Vec::new();
    for name in original
        .keys()
        .chain(restored.keys())
        .collect::<BTreeSet<_>>()
    {
        if original.get(name) != restored.get(name) {
            out.push(format!("{name}: not the same bytes in both folders"));
        }
    }
    for (name, bytes) in &restored {
        if !name.ends_with(&format!("/{}", sha256_hex(bytes))) {
            out.push(format!("{name}: not named by its hash"));
        }
    }
    let store = MediaStore::new(restored_dir, 1);
    for hash in references {
        let resolved = store.path_of(hash).and_then(|p| std::fs::read(p).ok());
        if resolved.is_none_or(|bytes| sha256_hex(&bytes) != *hash) {
            out.push(format!("{hash}: referenced, not in the restored folder"));
        }
    }
    out
}

/// Copies the folder `from` into `to`, as `cp -a` or `tar` do after the dump.
pub fn copy_folder(from: &Path, to: &Path) {
    for (name, bytes) in files(from) {
        let path = to.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// Every media reference of a log: the sealed ones (opened with the keys, so an erased person's
/// read as absent) and the `media_uploads` rows.
pub async fn media_references(store: &EventStore) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for event in store
        .read_after(Checkpoint::START, 1_000_000)
        .await
        .unwrap()
    {
        if let Some(personal) = &event.personal {
            media_hashes(personal, &mut out);
        }
    }
    let uploads: Vec<String> = sqlx::query_scalar("SELECT sha256 FROM media_uploads")
        .fetch_all(store.pool())
        .await
        .unwrap();
    out.extend(uploads);
    out
}

/// Every file the log records as written to a batch folder (`BatchFileWritten` on the stream
/// `export-batch-{id}`) that is not in `export_dir/{id}/` with the hash it recorded; and how many
/// the log records.
pub async fn export_problems(pool: &PgPool, export_dir: &Path) -> (usize, Vec<String>) {
    let written: Vec<(String, Value)> = sqlx::query_as(
        "SELECT stream_id, payload FROM events WHERE event_type = 'BatchFileWritten'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = Vec::new();
    for (stream, file) in &written {
        let batch = stream.strip_prefix("export-batch-").unwrap();
        let name = file["name"].as_str().unwrap();
        let bytes = std::fs::read(export_dir.join(batch).join(name)).ok();
        if bytes.is_none_or(|b| sha256_hex(&b) != file["sha256"]) {
            out.push(format!(
                "{batch}/{name}: recorded, not in the restored folder"
            ));
        }
    }
    (written.len(), out)
}
