//! References to uploaded media (evidence, recordings).
//!
//! The domain never sees the bytes. It holds a content address (SHA-256) so that the stored blob can be
//! verified and deduplicated, and erased by deleting one object when the person asks for erasure.

use serde::{Deserialize, Serialize};

/// Largest upload the domain accepts a reference to (2 GiB: a 5-minute video at a generous bit rate).
pub const MAX_MEDIA_BYTES: u64 = 2 * 1024 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaRefError {
    #[error("the file's SHA-256 must be 64 hexadecimal characters")]
    Sha256,
    #[error("the file's content type must look like type/subtype, e.g. video/mp4")]
    ContentType,
    #[error("the file is empty")]
    Empty,
    #[error("the file is {size_bytes} bytes; at most {max} bytes are accepted")]
    TooLarge { size_bytes: u64, max: u64 },
}

impl MediaRefError {
    pub fn code(&self) -> &'static str {
        match self {
            MediaRefError::Sha256 => "media_sha256",
            MediaRefError::ContentType => "media_content_type",
            MediaRefError::Empty => "media_empty",
            MediaRefError::TooLarge { .. } => "media_too_large",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "RawMediaRef")]
pub struct MediaRef {
    sha256: String,
    content_type: String,
    size_bytes: u64,
}

#[derive(Deserialize)]
struct RawMediaRef {
    sha256: String,
    content_type: String,
    size_bytes: u64,
}

impl TryFrom<RawMediaRef> for MediaRef {
    type Error = MediaRefError;

    fn try_from(raw: RawMediaRef) -> Result<Self, Self::Error> {
        Self::new(&raw.sha256, &raw.content_type, raw.size_bytes)
    }
}

impl MediaRef {
    /// The hash is lower-cased and the content type lower-cased so that equal files compare equal.
    pub fn new(sha256: &str, content_type: &str, size_bytes: u64) -> Result<Self, MediaRefError> {
        if sha256.len() != 64 || !sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(MediaRefError::Sha256);
        }
        if !is_content_type(content_type) {
            return Err(MediaRefError::ContentType);
        }
        if size_bytes == 0 {
            return Err(MediaRefError::Empty);
        }
        if size_bytes > MAX_MEDIA_BYTES {
            return Err(MediaRefError::TooLarge {
                size_bytes,
                max: MAX_MEDIA_BYTES,
            });
        }
        Ok(Self {
            sha256: sha256.to_ascii_lowercase(),
            content_type: content_type.to_ascii_lowercase(),
            size_bytes,
        })
    }

    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }
}

/// `type/subtype` made of RFC 6838 restricted-name characters; parameters (`; codecs=…`) are not kept.
fn is_content_type(input: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    };
    match input.split_once('/') {
        Some((kind, sub)) => token(kind) && token(sub),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";

    #[test]
    fn accepts_and_normalises_a_reference() {
        let m = MediaRef::new(HASH, "Video/MP4", 1024).unwrap();
        assert_eq!(m.sha256(), HASH.to_ascii_lowercase());
        assert_eq!(m.content_type(), "video/mp4");
        assert_eq!(m.size_bytes(), 1024);
    }

    #[test]
    fn refuses_bad_hashes_types_and_sizes() {
        assert_eq!(
            MediaRef::new("abc", "video/mp4", 1),
            Err(MediaRefError::Sha256)
        );
        let not_hex = "g".repeat(64);
        assert_eq!(
            MediaRef::new(&not_hex, "video/mp4", 1),
            Err(MediaRefError::Sha256)
        );
        assert_eq!(
            MediaRef::new(HASH, "video", 1),
            Err(MediaRefError::ContentType)
        );
        assert_eq!(
            MediaRef::new(HASH, "video/mp4; x=1", 1),
            Err(MediaRefError::ContentType)
        );
        assert_eq!(
            MediaRef::new(HASH, "audio/mpeg", 0),
            Err(MediaRefError::Empty)
        );
        assert!(matches!(
            MediaRef::new(HASH, "audio/mpeg", MAX_MEDIA_BYTES + 1),
            Err(MediaRefError::TooLarge { .. })
        ));
    }

    #[test]
    fn deserialisation_validates() {
        let ok = format!(r#"{{"sha256":"{HASH}","content_type":"audio/mpeg","size_bytes":5}}"#);
        assert!(serde_json::from_str::<MediaRef>(&ok).is_ok());
        let bad = r#"{"sha256":"x","content_type":"audio/mpeg","size_bytes":5}"#;
        assert!(serde_json::from_str::<MediaRef>(bad).is_err());
    }
}
