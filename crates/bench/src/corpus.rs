//! Large realistic logs, fast: a few streams are made by the real command handler (so every event is
//! encoded exactly as the application writes it), then copied many times with `COPY`, each copy with
//! its own ids.
//!
//! A copy is the template's `COPY` text line with every UUID except the shared ones (programs) mapped
//! through a per-copy bijection, and every identity number replaced by another valid one. The read
//! models and the export therefore see many distinct students, portfolios, activities and
//! certificates, all of them decodable, at the cost of a text scan instead of a command each.

use cim::domain::values::IdentityNumber;
use cim::store::keys;
use sqlx::{PgPool, Row};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// The columns a copy writes; `position` and `transaction_id` come from the server as for any append.
const COLUMNS: &str = "stream_id, version, event_id, event_type, schema_version, payload, personal, \
                       data_subject, actor_id, actor_role, correlation_id, causation_id, command_id, \
                       recorded_at";

/// Events sent per `COPY` statement: each is one transaction, so the log gets many transaction ids
/// as a live one has, and no single transaction holds gigabytes.
const EVENTS_PER_COPY: usize = 20_000;

/// Template events as `COPY` text lines, ready to be copied.
#[derive(Debug, Clone)]
pub struct Template {
    lines: Vec<Line>,
    /// UUIDs shared by every copy (the programs): never remapped.
    shared: HashSet<Uuid>,
}

#[derive(Debug, Clone)]
struct Line {
    text: String,
    /// Identity numbers in this event's personal data (12 digits as stored).
    identity_numbers: Vec<String>,
}

impl Template {
    /// The events of `filter` (a WHERE clause over `events` written by the bench, never by a user), in
    /// log order.
    pub async fn load(pool: &PgPool, filter: &str) -> Result<Self, sqlx::Error> {
        let sql = format!(
            "SELECT stream_id, version::text, event_id::text, event_type, schema_version::text,
                    payload::text, personal::text, data_subject::text, actor_id, actor_role,
                    correlation_id::text, causation_id::text, command_id::text, recorded_at::text
             FROM events WHERE {filter} ORDER BY transaction_id, position"
        );
        let rows = sqlx::query(&sql).fetch_all(pool).await?;
        let opened = open_personal(pool, &rows).await?;
        let mut lines = Vec::with_capacity(rows.len());
        for (row, personal) in rows.iter().zip(opened) {
            let mut text = String::new();
            let mut identity_numbers = Vec::new();
            for i in 0..14 {
                let value: Option<String> = if i == 6 {
                    personal.as_ref().map(|p| p.to_string())
                } else {
                    row.try_get(i)?
                };
                if i > 0 {
                    text.push('\t');
                }
                match value {
                    None => text.push_str("\\N"),
                    Some(v) => {
                        if let Some(personal) = personal.as_ref().filter(|_| i == 6) {
                            collect_identity_numbers(personal, &mut identity_numbers);
                        }
                        escape_copy(&v, &mut text);
                    }
                }
            }
            text.push('\n');
            lines.push(Line {
                text,
                identity_numbers,
            });
        }
        let shared: Vec<Uuid> = sqlx::query_scalar(
            "SELECT DISTINCT substr(stream_id, 9)::uuid FROM events WHERE stream_id LIKE 'program-%'",
        )
        .fetch_all(pool)
        .await?;
        Ok(Self {
            lines,
            shared: shared.into_iter().collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The id `id` of the template has in copy `copy` (the identity for copy 0).
    pub fn remapped(&self, id: Uuid, copy: u64) -> Uuid {
        if self.shared.contains(&id) {
            id
        } else {
            remap(id, copy)
        }
    }

    /// Appends copies `first_copy..` of the template to `pool`'s log until `events` events are
    /// written (the last copy may be partial). Returns the number of events written.
    pub async fn copy_into(
        &self,
        pool: &PgPool,
        first_copy: u64,
        events: usize,
    ) -> Result<usize, sqlx::Error> {
        assert!(!self.is_empty(), "an empty template cannot be copied");
        let mut written = 0;
        let mut copy = first_copy;
        let mut index = 0;
        while written < events {
            let chunk = EVENTS_PER_COPY.min(events - written);
            let mut buffer = String::with_capacity(chunk * 2048);
            for _ in 0..chunk {
                self.render(index, copy, &mut buffer);
                index += 1;
                if index == self.lines.len() {
                    index = 0;
                    copy += 1;
                }
            }
            let mut conn = pool.acquire().await?;
            let mut sink = conn
                .copy_in_raw(&format!("COPY events ({COLUMNS}) FROM STDIN"))
                .await?;
            sink.send(buffer.into_bytes()).await?;
            sink.finish().await?;
            written += chunk;
        }
        Ok(written)
    }

    /// Line `index` as it reads in copy `copy`.
    fn render(&self, index: usize, copy: u64, out: &mut String) {
        let line = &self.lines[index];
        let start = out.len();
        remap_uuids(&line.text, copy, &self.shared, out);
        for (k, number) in line.identity_numbers.iter().enumerate() {
            let replacement = identity_number(copy, k as u64 ^ hash_str(number));
            let rendered = out[start..].replace(number.as_str(), &replacement);
            out.truncate(start);
            out.push_str(&rendered);
        }
    }
}

/// COPY text format: backslash, tab, newline and carriage return are escaped.
pub(super) fn escape_copy(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

fn collect_identity_numbers(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match v {
                    serde_json::Value::String(s) if key == "identity_number" => {
                        if !out.contains(s) {
                            out.push(s.clone())
                        }
                    }
                    other => collect_identity_numbers(other, out),
                }
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                collect_identity_numbers(v, out);
            }
        }
        _ => {}
    }
}

/// The version and variant bits of a UUID, kept so that a remapped id is still a well-formed UUID of
/// the same kind.
const KEPT_BITS: u128 = 0x0000_0000_0000_f000_c000_0000_0000_0000;

/// A bijection per copy (XOR with a copy-derived mask), so ids of one copy never collide, and copies
/// never collide with each other (their masks differ).
fn remap(id: Uuid, copy: u64) -> Uuid {
    if copy == 0 {
        return id;
    }
    let mask = (u128::from(splitmix(copy)) << 64 | u128::from(splitmix(!copy))) & !KEPT_BITS;
    Uuid::from_u128(id.as_u128() ^ mask)
}

fn splitmix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Copies `text` to `out` with every lower-case hyphenated UUID not in `shared` remapped for `copy`.
fn remap_uuids(text: &str, copy: u64, shared: &HashSet<Uuid>, out: &mut String) {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut copied = 0;
    while i + 36 <= bytes.len() {
        if bytes[i + 8] == b'-' && is_uuid(&bytes[i..i + 36]) {
            // A UUID is ASCII, so these are char boundaries.
            let id = Uuid::parse_str(&text[i..i + 36]).expect("checked shape");
            if !shared.contains(&id) {
                out.push_str(&text[copied..i]);
                out.push_str(
                    remap(id, copy)
                        .hyphenated()
                        .encode_lower(&mut Uuid::encode_buffer()),
                );
                copied = i + 36;
            }
            i += 36;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[copied..]);
}

fn is_uuid(b: &[u8]) -> bool {
    b.iter().enumerate().all(|(k, &c)| match k {
        8 | 13 | 18 | 23 => c == b'-',
        _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
    })
}

/// A valid Swedish identity number (12 digits, Luhn checked) derived from `copy` and `salt`, born
/// 1975–2004, so that copies are distinct people to the export and the fake Ladok.
fn identity_number(copy: u64, salt: u64) -> String {
    let h = splitmix(copy.wrapping_mul(0x1_0000_0001) ^ salt);
    let year = 1975 + (h % 30) as u32;
    let month = 1 + ((h >> 8) % 12) as u32;
    let day = 1 + ((h >> 16) % 28) as u32;
    let serial = 1 + ((h >> 24) % 999) as u32;
    IdentityNumber::with_check_digit(&format!("{year:04}{month:02}{day:02}{serial:03}"))
        .expect("a real date and a serial from 001")
        .as_str()
        .to_owned()
}

/// Counts per event type of the log, for the report (every type must be present).
pub async fn event_types(pool: &PgPool) -> Result<HashMap<String, i64>, sqlx::Error> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT event_type, count(*) FROM events GROUP BY event_type")
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().collect())
}

/// The personal part of each template row in plaintext: the template's events were sealed by the
/// store with their subjects' keys, and a copy names other subjects, whose keys do not exist. So
/// copies carry their personal part as plaintext, the form written before sealing existed, which
/// every reader still accepts (see the README's Performance section for what that leaves out).
async fn open_personal(
    pool: &PgPool,
    rows: &[sqlx::postgres::PgRow],
) -> Result<Vec<Option<serde_json::Value>>, sqlx::Error> {
    let decode = |e: serde_json::Error| sqlx::Error::Decode(Box::new(e));
    let mut parsed = Vec::with_capacity(rows.len());
    for row in rows {
        let personal: Option<String> = row.try_get(6)?;
        let personal: Option<serde_json::Value> = personal
            .map(|p| serde_json::from_str(&p))
            .transpose()
            .map_err(decode)?;
        let subject: Option<String> = row.try_get(7)?;
        let event_id: String = row.try_get(2)?;
        parsed.push((
            subject.and_then(|s| s.parse::<Uuid>().ok()),
            event_id.parse::<Uuid>().unwrap_or_default(),
            personal,
        ));
    }
    let subjects = keys::sealed_subjects(parsed.iter().map(|(s, _, p)| (*s, p.as_ref())));
    let keys = keys::SubjectKeys::load(pool, &subjects)
        .await
        .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    parsed
        .into_iter()
        .map(|(subject, event_id, personal)| {
            keys.open(0, event_id, subject, personal)
                .map_err(|e| sqlx::Error::Protocol(e.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remapping_keeps_shared_ids_and_the_uuid_shape() {
        let shared_id = Uuid::now_v7();
        let own = Uuid::new_v4();
        let shared: HashSet<Uuid> = [shared_id].into();
        let text = format!("{{\"a\":\"{own}\",\"p\":\"{shared_id}\"}}\tx-{own}");
        let mut out = String::new();
        remap_uuids(&text, 3, &shared, &mut out);
        let mapped = remap(own, 3);
        assert_ne!(mapped, own);
        assert_eq!(mapped.get_version_num(), 4);
        assert_eq!(
            out,
            format!("{{\"a\":\"{mapped}\",\"p\":\"{shared_id}\"}}\tx-{mapped}")
        );
        let mut same = String::new();
        remap_uuids(&text, 0, &shared, &mut same);
        assert_eq!(same, text);
    }

    #[test]
    fn derived_identity_numbers_are_valid() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        for copy in 0..200 {
            let n = identity_number(copy, 7);
            assert_eq!(n.len(), 12);
            cim::domain::values::IdentityNumber::parse(&n, today).unwrap();
        }
    }
}
