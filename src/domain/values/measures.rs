//! Measurements the server makes itself instead of trusting the client: word counts, the language of a
//! text, and the identity of an Instagram post.

use std::fmt;

use serde::{Deserialize, Serialize};
use unicode_segmentation::UnicodeSegmentation;
use url::Url;

/// Words as Unicode's word-boundary rules (UAX #29) see them, so the count means the same in every
/// script: punctuation and spaces are not words, "don't" is one word, and each CJK ideograph counts as a
/// word because UAX #29 gives ideographic text no spaces to split on.
pub fn word_count(text: &str) -> usize {
    text.unicode_words().count()
}

/// The most likely language as an ISO 639-3 code (`"eng"`, `"swe"`) with whatlang's confidence in 0..=1,
/// or `None` when the text has no letters to judge.
pub fn detect_language(text: &str) -> Option<(&'static str, f64)> {
    whatlang::detect(text).map(|info| (info.lang().code(), info.confidence()))
}

/// The confidence from which we trust a detection enough to refuse a text because of it.
///
/// This is whatlang's own reliability bar (it calls a detection reliable above 0.9). For texts the length
/// of a final reflection the confidence saturates at 1.0 for any text that is mostly in one language, so
/// the bar only decides short or thoroughly mixed texts; there a wrong refusal would block a student near
/// a deadline, while a wrong acceptance is caught by the coordinator who reviews the reflection anyway.
pub const RELIABLE_LANGUAGE_CONFIDENCE: f64 = 0.9;

/// The answer to "is this text in English?", with enough detail for the coordinator to judge doubtful
/// cases.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EnglishCheck {
    /// The best guess is English (at any confidence).
    English { confidence: f64 },
    /// The best guess is another language and the detection is reliable.
    NotEnglish { lang: &'static str, confidence: f64 },
    /// The best guess is another language but below [`RELIABLE_LANGUAGE_CONFIDENCE`].
    Unreliable { lang: &'static str, confidence: f64 },
    /// No language could be detected at all (no letters).
    Undetectable,
}

impl EnglishCheck {
    /// Whether a text with this result should be refused as "not in English".
    pub fn refuses(&self) -> bool {
        matches!(
            self,
            EnglishCheck::NotEnglish { .. } | EnglishCheck::Undetectable
        )
    }

    /// The detected language code and confidence, as recorded in events.
    pub fn detected(&self) -> Option<(&'static str, f64)> {
        match *self {
            EnglishCheck::English { confidence } => Some(("eng", confidence)),
            EnglishCheck::NotEnglish { lang, confidence }
            | EnglishCheck::Unreliable { lang, confidence } => Some((lang, confidence)),
            EnglishCheck::Undetectable => None,
        }
    }
}

pub fn is_english(text: &str) -> EnglishCheck {
    match detect_language(text) {
        None => EnglishCheck::Undetectable,
        Some(("eng", confidence)) => EnglishCheck::English { confidence },
        Some((lang, confidence)) if confidence >= RELIABLE_LANGUAGE_CONFIDENCE => {
            EnglishCheck::NotEnglish { lang, confidence }
        }
        Some((lang, confidence)) => EnglishCheck::Unreliable { lang, confidence },
    }
}

/// The English name of an ISO 639-3 code whatlang knows, for messages ("the text looks Swedish").
pub fn language_name(code: &str) -> &'static str {
    whatlang::Lang::from_code(code).map_or("unknown", |lang| lang.eng_name())
}

/// Why a link is not accepted as an Instagram post. The link itself is not repeated: it is personal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstagramLinkError {
    #[error("is not a web address")]
    NotAUrl,
    #[error("must start with https://")]
    NotHttps,
    #[error("must point to instagram.com")]
    WrongHost,
    #[error("must be the link of one post or reel, like https://www.instagram.com/p/ABC123/")]
    NotAPost,
}

impl InstagramLinkError {
    pub fn code(&self) -> &'static str {
        match self {
            InstagramLinkError::NotAUrl => "instagram_link_not_a_url",
            InstagramLinkError::NotHttps => "instagram_link_not_https",
            InstagramLinkError::WrongHost => "instagram_link_wrong_host",
            InstagramLinkError::NotAPost => "instagram_link_not_a_post",
        }
    }
}

/// Whether the link is to a photo post (`/p/`) or a reel (`/reel/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstagramPostKind {
    Post,
    Reel,
}

/// One Instagram post, normalised to `https://www.instagram.com/{p|reel}/{code}/`.
///
/// Normalising (one host, no query such as `?igsh=…`, no fragment, a trailing slash) is what makes "the
/// same post pasted twice" detectable, so that three links really are three posts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct InstagramPostLink {
    kind: InstagramPostKind,
    code: String,
}

impl InstagramPostLink {
    pub fn parse(input: &str) -> Result<Self, InstagramLinkError> {
        let url = Url::parse(input.trim()).map_err(|_| InstagramLinkError::NotAUrl)?;
        if url.scheme() != "https" {
            return Err(InstagramLinkError::NotHttps);
        }
        let host_ok = matches!(url.host_str(), Some("instagram.com" | "www.instagram.com"));
        if !host_ok
            || url.port().is_some()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(InstagramLinkError::WrongHost);
        }
        let segments: Vec<&str> = url
            .path_segments()
            .ok_or(InstagramLinkError::NotAPost)?
            .collect();
        let (kind, code) = match segments.as_slice() {
            [kind, code] | [kind, code, ""] => (*kind, *code),
            _ => return Err(InstagramLinkError::NotAPost),
        };
        let kind = match kind {
            "p" => InstagramPostKind::Post,
            "reel" => InstagramPostKind::Reel,
            _ => return Err(InstagramLinkError::NotAPost),
        };
        let code_ok = !code.is_empty()
            && code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !code_ok {
            return Err(InstagramLinkError::NotAPost);
        }
        Ok(Self {
            kind,
            code: code.to_owned(),
        })
    }

    pub fn kind(&self) -> InstagramPostKind {
        self.kind
    }

    /// Instagram's shortcode. A reel is also reachable under `/p/{code}/`, so duplicates are judged on
    /// the code alone.
    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn as_url(&self) -> String {
        let kind = match self.kind {
            InstagramPostKind::Post => "p",
            InstagramPostKind::Reel => "reel",
        };
        format!("https://www.instagram.com/{kind}/{}/", self.code)
    }
}

impl fmt::Display for InstagramPostLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_url())
    }
}

impl TryFrom<String> for InstagramPostLink {
    type Error = InstagramLinkError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<InstagramPostLink> for String {
    fn from(value: InstagramPostLink) -> Self {
        value.as_url()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENGLISH: &str = "After the exchange I understood how much the way a hospital is organised \
        depends on the culture around it. Working with students from other countries taught me to \
        listen before I explain, and to ask what people expect instead of assuming it.";
    const SWEDISH: &str = "Efter utbytet förstod jag hur mycket sjukhusets organisation beror på \
        kulturen omkring det. Att arbeta med studenter från andra länder lärde mig att lyssna innan \
        jag förklarar, och att fråga vad människor förväntar sig i stället för att anta det.";

    #[test]
    fn word_count_ignores_punctuation_and_spacing() {
        assert_eq!(word_count(""), 0);
        assert_eq!(word_count("  Hello,   world!  "), 2);
        assert_eq!(word_count("It's a well-known fact — really."), 6);
        assert_eq!(word_count("Jag gick på språkcafé i går."), 6);
        assert_eq!(word_count("line one\nline two\ttab"), 5);
    }

    #[test]
    fn word_count_works_in_other_scripts() {
        // Each ideograph is a word under UAX #29.
        assert_eq!(word_count("我们是学生"), 5);
        assert_eq!(word_count("Привет, как дела?"), 3);
        assert_eq!(word_count("مرحبا بالعالم"), 2);
    }

    #[test]
    fn detects_english_and_other_languages() {
        let (lang, confidence) = detect_language(ENGLISH).unwrap();
        assert_eq!(lang, "eng");
        assert!(confidence > 0.9);
        assert_eq!(detect_language(SWEDISH).unwrap().0, "swe");
        assert_eq!(detect_language("12345 !!!"), None);
    }

    #[test]
    fn english_check_refuses_only_reliable_other_languages_and_nothing_detectable() {
        assert!(matches!(is_english(ENGLISH), EnglishCheck::English { .. }));
        let swedish = is_english(SWEDISH);
        assert!(matches!(
            swedish,
            EnglishCheck::NotEnglish { lang: "swe", .. }
        ));
        assert!(swedish.refuses());
        assert!(!is_english(ENGLISH).refuses());
        assert_eq!(is_english("1 2 3"), EnglishCheck::Undetectable);
        assert!(EnglishCheck::Undetectable.refuses());
        let unsure = EnglishCheck::Unreliable {
            lang: "dan",
            confidence: 0.2,
        };
        assert!(!unsure.refuses());
        assert_eq!(unsure.detected(), Some(("dan", 0.2)));
        assert_eq!(language_name("swe"), "Swedish");
    }

    #[test]
    fn instagram_links_are_normalised() {
        let cases = [
            "https://www.instagram.com/p/C3xYz_-12/",
            "https://instagram.com/p/C3xYz_-12",
            "https://www.instagram.com/p/C3xYz_-12/?igsh=abc&utm_source=x",
            "https://WWW.Instagram.com/p/C3xYz_-12/#comments",
            " https://www.instagram.com/p/C3xYz_-12/ ",
        ];
        for case in cases {
            let link = InstagramPostLink::parse(case).unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(link.as_url(), "https://www.instagram.com/p/C3xYz_-12/");
            assert_eq!(link.code(), "C3xYz_-12");
        }
        let reel = InstagramPostLink::parse("https://instagram.com/reel/AbC/").unwrap();
        assert_eq!(reel.kind(), InstagramPostKind::Reel);
        assert_eq!(reel.to_string(), "https://www.instagram.com/reel/AbC/");
    }

    #[test]
    fn instagram_links_are_refused_with_a_reason() {
        use InstagramLinkError::*;
        let cases = [
            ("instagram.com/p/abc/", NotAUrl),
            ("not a link", NotAUrl),
            ("http://www.instagram.com/p/abc/", NotHttps),
            ("https://www.instagram.com.evil.example/p/abc/", WrongHost),
            ("https://evil.example/p/abc/", WrongHost),
            ("https://www.instagram.com:8443/p/abc/", WrongHost),
            ("https://user@www.instagram.com/p/abc/", WrongHost),
            ("https://www.instagram.com/someone/", NotAPost),
            ("https://www.instagram.com/p/", NotAPost),
            ("https://www.instagram.com/p//", NotAPost),
            ("https://www.instagram.com/p/abc/extra/", NotAPost),
            ("https://www.instagram.com/stories/abc/", NotAPost),
            ("https://www.instagram.com/p/a%20b/", NotAPost),
        ];
        for (case, expected) in cases {
            assert_eq!(InstagramPostLink::parse(case), Err(expected), "{case}");
        }
    }

    #[test]
    fn instagram_link_serde_uses_the_normalised_url() {
        let link = InstagramPostLink::parse("https://instagram.com/p/abc?x=1").unwrap();
        let json = serde_json::to_string(&link).unwrap();
        assert_eq!(json, "\"https://www.instagram.com/p/abc/\"");
        assert_eq!(
            serde_json::from_str::<InstagramPostLink>(&json).unwrap(),
            link
        );
    }
}
