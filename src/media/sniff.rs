//! The type of an upload, read from its first bytes ("magic numbers"). The `Content-Type` a client
//! declares is never trusted: the stored and served type is the one detected here, and bytes that are
//! none of these types are refused (415).

/// How many leading bytes [`sniff`] wants to see (fewer is fine for short files).
pub const SNIFF_LEN: usize = 4096;

/// The accepted kinds of upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// ISO base media (`ftyp` box): MP4, M4A, MOV.
    Mp4 {
        audio_only: bool,
    },
    Mp3,
    Wav,
    Ogg,
    /// EBML (`1A 45 DF A3`): WebM when its DocType says so, otherwise Matroska.
    Matroska {
        webm: bool,
    },
    Pdf,
    Jpeg,
    Png,
}

impl Kind {
    /// The content type stored, recorded in events and served on download.
    pub fn content_type(self) -> &'static str {
        match self {
            Kind::Mp4 { audio_only: true } => "audio/mp4",
            Kind::Mp4 { audio_only: false } => "video/mp4",
            Kind::Mp3 => "audio/mpeg",
            Kind::Wav => "audio/wav",
            Kind::Ogg => "audio/ogg",
            Kind::Matroska { webm: true } => "video/webm",
            Kind::Matroska { webm: false } => "video/x-matroska",
            Kind::Pdf => "application/pdf",
            Kind::Jpeg => "image/jpeg",
            Kind::Png => "image/png",
        }
    }

    /// Audio or video, whose duration the server measures.
    pub fn is_timed(self) -> bool {
        !matches!(self, Kind::Pdf | Kind::Jpeg | Kind::Png)
    }

    /// The file extension symphonia's probe is hinted with.
    pub fn extension(self) -> &'static str {
        match self {
            Kind::Mp4 { .. } => "mp4",
            Kind::Mp3 => "mp3",
            Kind::Wav => "wav",
            Kind::Ogg => "ogg",
            Kind::Matroska { webm: true } => "webm",
            Kind::Matroska { webm: false } => "mkv",
            Kind::Pdf => "pdf",
            Kind::Jpeg => "jpg",
            Kind::Png => "png",
        }
    }
}

/// The kind of a file from its first bytes, or `None` when it is none of the accepted kinds.
pub fn sniff(head: &[u8]) -> Option<Kind> {
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        let brand = &head[8..12];
        return Some(Kind::Mp4 {
            audio_only: matches!(brand, b"M4A " | b"M4B " | b"M4P "),
        });
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WAVE" {
        return Some(Kind::Wav);
    }
    if head.starts_with(b"OggS") {
        return Some(Kind::Ogg);
    }
    if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        // The DocType element (42 82) holds "webm" or "matroska" within the EBML header.
        let webm = head.windows(4).any(|w| w == b"webm");
        return Some(Kind::Matroska { webm });
    }
    if head.starts_with(b"%PDF-") {
        return Some(Kind::Pdf);
    }
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(Kind::Jpeg);
    }
    if head.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        return Some(Kind::Png);
    }
    if head.starts_with(b"ID3") || is_mpeg_audio_frame(head) {
        return Some(Kind::Mp3);
    }
    None
}

/// An MPEG audio frame header: 11 sync bits, a valid version and layer, a bit rate other than "bad"
/// and a sample rate other than "reserved".
fn is_mpeg_audio_frame(head: &[u8]) -> bool {
    if head.len() < 4 {
        return false;
    }
    let (b1, b2) = (head[1], head[2]);
    head[0] == 0xFF
        && b1 & 0xE0 == 0xE0
        && (b1 >> 3) & 0x03 != 0x01
        && (b1 >> 1) & 0x03 != 0x00
        && b2 >> 4 != 0x0F
        && (b2 >> 2) & 0x03 != 0x03
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_kind_from_its_magic_bytes() {
        assert_eq!(
            sniff(b"\0\0\0\x20ftypM4A \0\0\0\0"),
            Some(Kind::Mp4 { audio_only: true })
        );
        assert_eq!(
            sniff(b"\0\0\0\x20ftypisom\0\0\0\0"),
            Some(Kind::Mp4 { audio_only: false })
        );
        assert_eq!(sniff(b"RIFF\x24\0\0\0WAVEfmt "), Some(Kind::Wav));
        assert_eq!(sniff(b"OggS\0\x02"), Some(Kind::Ogg));
        assert_eq!(
            sniff(b"\x1A\x45\xDF\xA3\x9F\x42\x82\x84webm"),
            Some(Kind::Matroska { webm: true })
        );
        assert_eq!(
            sniff(b"\x1A\x45\xDF\xA3\x42\x82\x88matroska"),
            Some(Kind::Matroska { webm: false })
        );
        assert_eq!(sniff(b"ID3\x04\0"), Some(Kind::Mp3));
        assert_eq!(sniff(&[0xFF, 0xFB, 0x90, 0x64]), Some(Kind::Mp3));
        assert_eq!(sniff(b"%PDF-1.7\n"), Some(Kind::Pdf));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(Kind::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0"), Some(Kind::Png));
    }

    #[test]
    fn refuses_what_is_not_media() {
        assert_eq!(sniff(b""), None);
        assert_eq!(
            sniff(b"hello, this is text pretending to be audio/wav"),
            None
        );
        assert_eq!(sniff(b"{}"), None);
        assert_eq!(sniff(b"RIFF\0\0\0\0AVI LIST"), None);
        // Sync bits with a reserved layer are not an MP3 frame.
        assert_eq!(sniff(&[0xFF, 0xF9, 0x90, 0x64]), None);
    }
}
