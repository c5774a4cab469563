//! The recording behind an oral reflection: an upload, or a link to the university's video platform.
//!
//! A duration alone proves nothing was recorded, so an oral reflection needs one of the two unless the
//! program's rules allow a declared duration. Links are accepted only to the hosts the program lists in
//! its rules (`video_platform_hosts`): a link anywhere else could point at something the coordinator
//! cannot open or that disappears.

use serde::{Deserialize, Serialize};

/// Longest link accepted; platform links are far shorter.
pub const MAX_VIDEO_LINK_LEN: usize = 2_000;

/// What an oral reflection rested on, shown to the coordinator. Not personal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordingKind {
    /// A file uploaded to this portfolio (`POST /portfolios/{id}/media`).
    Upload,
    /// A link to the university's video platform.
    Link,
    /// Neither: the student's declared duration, where the program's rules allow it.
    Declared,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VideoLinkError {
    #[error(
        "this program has not named a video platform, so links are not accepted; upload the recording instead"
    )]
    NoPlatform,
    #[error("the link is not a valid web address")]
    NotAUrl,
    #[error("the link must start with https://")]
    NotHttps,
    #[error(
        "the link must point to the university's video platform ({allowed}); upload the recording if it is elsewhere"
    )]
    HostNotAllowed { allowed: String },
}

impl VideoLinkError {
    pub fn code(&self) -> &'static str {
        match self {
            VideoLinkError::NoPlatform => "video_platform_not_configured",
            VideoLinkError::NotAUrl => "video_link_invalid",
            VideoLinkError::NotHttps => "video_link_not_https",
            VideoLinkError::HostNotAllowed { .. } => "video_link_host_not_allowed",
        }
    }
}

/// An `https` link to one of the allowed hosts, as the parser normalised it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct VideoLink(String);

impl VideoLink {
    /// `allowed` are lower-case host names (checked when the rules were set); the host must equal one
    /// of them. No wildcard: a university's platform has a fixed name, and a suffix match would let
    /// `play.ki.se.example.com`-style names through by mistake.
    pub fn parse(input: &str, allowed: &[String]) -> Result<Self, VideoLinkError> {
        if allowed.is_empty() {
            return Err(VideoLinkError::NoPlatform);
        }
        let input = input.trim();
        if input.is_empty() || input.chars().count() > MAX_VIDEO_LINK_LEN {
            return Err(VideoLinkError::NotAUrl);
        }
        let url = url::Url::parse(input).map_err(|_| VideoLinkError::NotAUrl)?;
        if url.scheme() != "https" {
            return Err(VideoLinkError::NotHttps);
        }
        // Credentials in a link are never the platform's own form, and `user@host` tricks the eye.
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let known = allowed.contains(&host);
        if !known || !url.username().is_empty() || url.password().is_some() {
            return Err(VideoLinkError::HostNotAllowed {
                allowed: allowed.join(", "),
            });
        }
        Ok(Self(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A host name for the allow-list: lower-case letters, digits, `-` and `.`, with at least one dot.
pub fn is_host_name(host: &str) -> bool {
    let labels: Vec<&str> = host.split('.').collect();
    host.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<String> {
        vec!["play.ki.se".to_owned(), "video.ki.se".to_owned()]
    }

    #[test]
    fn links_to_the_platform_are_accepted_and_normalised() {
        let link = VideoLink::parse(" https://PLAY.ki.se/media/t/0_abc123 ", &hosts()).unwrap();
        assert_eq!(link.as_str(), "https://play.ki.se/media/t/0_abc123");
        assert!(VideoLink::parse("https://video.ki.se/v?id=1", &hosts()).is_ok());
    }

    #[test]
    fn links_elsewhere_or_malformed_are_refused_with_a_reason() {
        let refuse = |s: &str| VideoLink::parse(s, &hosts()).unwrap_err().code();
        assert_eq!(refuse("not a link"), "video_link_invalid");
        assert_eq!(refuse(""), "video_link_invalid");
        assert_eq!(refuse("http://play.ki.se/x"), "video_link_not_https");
        assert_eq!(
            refuse("https://youtube.com/watch?v=1"),
            "video_link_host_not_allowed"
        );
        assert_eq!(
            refuse("https://play.ki.se.example.com/x"),
            "video_link_host_not_allowed"
        );
        assert_eq!(
            refuse("https://evil.example@play.ki.se/x"),
            "video_link_host_not_allowed"
        );
        assert_eq!(
            VideoLink::parse("https://play.ki.se/x", &[]).unwrap_err(),
            VideoLinkError::NoPlatform
        );
        let long = format!("https://play.ki.se/{}", "a".repeat(MAX_VIDEO_LINK_LEN));
        assert_eq!(refuse(&long), "video_link_invalid");
        let err = VideoLink::parse("https://youtube.com/x", &hosts()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the link must point to the university's video platform (play.ki.se, video.ki.se); upload the recording if it is elsewhere"
        );
    }

    #[test]
    fn host_names_for_the_allow_list() {
        for ok in ["play.ki.se", "ki.video.example-1.com"] {
            assert!(is_host_name(ok), "{ok}");
        }
        for bad in [
            "",
            "localhost",
            "Play.ki.se",
            "https://play.ki.se",
            "play.ki.se/",
            "-a.se",
            "a..se",
        ] {
            assert!(!is_host_name(bad), "{bad}");
        }
    }
}
