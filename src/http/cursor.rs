//! Pages of lists: opaque cursors and bounded page sizes.
//!
//! Every paginated list answers `{"items": [...], "next_cursor": "…" | null}`. A cursor is the
//! base64url (no padding) of a small JSON object naming the list it belongs to and the keyset
//! position of the last item shown (a log checkpoint or an id), so a page never repeats or skips an
//! item when others are added meanwhile. Clients must treat it as opaque; a cursor that does not
//! decode, or that belongs to another list, is refused with `400 invalid_cursor`. A cursor grants
//! nothing: the list's own authorisation and filters still apply to every page.

use super::problem::Problem;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Page size when the request names none.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest page size a client may ask for.
pub const MAX_LIMIT: i64 = 200;

/// One page of a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass back as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page of at most `limit` items read in keyset order. A full page may have a next one, which
    /// starts after the `key` of its last item; the last page is the first one shorter than `limit`
    /// (or an empty one after a page that happened to end the list exactly).
    pub fn keyset<K: Serialize>(
        list: &str,
        items: Vec<T>,
        limit: i64,
        key: impl FnOnce(&T) -> K,
    ) -> Self {
        let next_cursor = match items.last() {
            Some(last) if items.len() as i64 >= limit => Some(encode(list, &key(last))),
            _ => None,
        };
        Self { items, next_cursor }
    }
}

/// The page size asked for: 1..=[`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
pub fn limit(asked: Option<i64>) -> Result<i64, Problem> {
    match asked {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(Problem::bad_request(
            "invalid_query",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        )
        .with_field("limit")),
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    /// Which list the cursor belongs to.
    l: String,
    /// The keyset position after which the next page starts.
    a: T,
}

/// The cursor of `list` after the position `after`.
pub fn encode<T: Serialize>(list: &str, after: &T) -> String {
    let json = serde_json::to_vec(&Envelope {
        l: list.to_owned(),
        a: after,
    })
    .expect("a cursor position serialises to JSON");
    base64url_encode(&json)
}

/// The position a cursor of `list` names; `None` when the request has no cursor.
pub fn decode<T: DeserializeOwned>(list: &str, cursor: Option<&str>) -> Result<Option<T>, Problem> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    let invalid = || {
        Problem::bad_request(
            "invalid_cursor",
            "the cursor is not one this list handed out; start again without a cursor",
        )
        .with_field("cursor")
    };
    let bytes = base64url_decode(cursor).ok_or_else(invalid)?;
    let envelope: Envelope<T> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if envelope.l != list {
        return Err(invalid());
    }
    Ok(Some(envelope.a))
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// RFC 4648 §5 without padding (small enough not to need a crate).
fn base64url_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// The inverse of [`base64url_encode`]; `None` for anything it cannot have written.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    if text.len() % 4 == 1 || text.len() > 4096 {
        return None;
    }
    let sextet = |c: u8| ALPHABET.iter().position(|a| *a == c).map(|p| p as u32);
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= sextet(*c)? << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
        // Bits below the last full byte must be zero, so every cursor has exactly one spelling.
        let used = 8 * (chunk.len() - 1);
        if n & ((1 << (24 - used)) - 1) != 0 {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Checkpoint;

    #[test]
    fn base64url_round_trips_and_refuses_what_it_cannot_have_written() {
        for len in 0..40 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = base64url_encode(&bytes);
            assert!(!text.contains(['+', '/', '=']));
            assert_eq!(base64url_decode(&text), Some(bytes));
        }
        assert_eq!(base64url_encode(b"hi?"), "aGk_");
        assert_eq!(base64url_decode("aGk/"), None);
        assert_eq!(base64url_decode("a"), None);
        // "aGl" decodes to "hi"; "aGm" has stray low bits.
        assert_eq!(base64url_decode("aGk").as_deref(), Some(&b"hi"[..]));
        assert_eq!(base64url_decode("aGl"), None);
    }

    #[test]
    fn a_cursor_belongs_to_its_list_and_a_tampered_one_is_refused() {
        let at = Checkpoint {
            transaction_id: 812,
            position: 4711,
        };
        let cursor = encode("audit", &at);
        assert_eq!(
            decode::<Checkpoint>("audit", Some(&cursor)).unwrap(),
            Some(at)
        );
        assert_eq!(decode::<Checkpoint>("audit", None).unwrap(), None);
        let other = decode::<Checkpoint>("certificates", Some(&cursor)).unwrap_err();
        assert_eq!(other.code, "invalid_cursor");
        let mut tampered = cursor.clone();
        tampered.replace_range(3..4, if &cursor[3..4] == "x" { "y" } else { "x" });
        let p = decode::<Checkpoint>("audit", Some(&tampered)).unwrap_err();
        assert_eq!(
            (p.code.as_ref(), p.field.as_deref()),
            ("invalid_cursor", Some("cursor"))
        );
        assert!(decode::<Checkpoint>("audit", Some("not a cursor")).is_err());
    }

    #[test]
    fn limits_default_and_stay_within_bounds() {
        assert_eq!(limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit(Some(200)).unwrap(), 200);
        for bad in [0, -1, 201] {
            assert_eq!(
                limit(Some(bad)).unwrap_err().field.as_deref(),
                Some("limit")
            );
        }
    }
}
