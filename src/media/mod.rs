//! Uploaded media (oral reflections, evidence): a content-addressed store ([`store`]), the file type
//! detected from the bytes ([`sniff`]), the server-measured duration of audio and video
//! ([`duration`]), and the `media_uploads` rows kept in step with the files under concurrent uploads
//! and erasures ([`uploads`]). The domain only ever sees a [`crate::domain::values::MediaRef`].

pub mod duration;
pub mod sniff;
pub mod store;
pub mod uploads;

pub use duration::{MeasuredDuration, measure};
pub use sniff::{Kind, sniff};
pub use store::{Durability, Fsync, MediaStore, Staged, StoreError, Stored};

/// A SHA-256 as 64 lower-case hex characters, the only form ever turned into a path.
pub fn is_sha256_hex(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_lower_case_hex_of_64_characters_is_a_hash() {
        assert!(super::is_sha256_hex(&"a1".repeat(32)));
        assert!(!super::is_sha256_hex(&"A1".repeat(32)));
        assert!(!super::is_sha256_hex(&"a1".repeat(31)));
        assert!(!super::is_sha256_hex(&format!("../{}", "a".repeat(61))));
    }
}
