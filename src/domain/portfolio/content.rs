//! Measuring and judging reflection contents against the rules in force.
//!
//! Everything here is computed from what the student sent: word counts by UAX #29, links by parsing,
//! language by whatlang. Nothing a client says about its own content is trusted except a recording's
//! duration, which the upload service measures where it can and flags where it cannot.

use super::commands::{FinalContent, MAX_REFLECTION_TEXT_LEN, ReflectionContent};
use super::events::{FinalFormat, ReflectionFormat, ReflectionPersonal};
use super::recording::{check_measured, recording};
use crate::domain::errors::DomainError;
use crate::domain::rules::{AppliedBand, ProgramRules, WordBand};
use crate::domain::values::{
    EnglishCheck, InstagramPostLink, MediaRef, RecordingKind, TextError, is_english, word_count,
};

/// The facts of an activity reflection, ready to go into `ReflectionSubmitted`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct JudgedReflection {
    pub format: ReflectionFormat,
    pub word_count: Option<u32>,
    pub duration_s: Option<u32>,
    pub duration_measured: Option<bool>,
    pub recording: Option<RecordingKind>,
    pub link_count: Option<u32>,
    pub band: AppliedBand,
    pub personal: ReflectionPersonal,
}

/// The facts of a final reflection, ready to go into `FinalReflectionSubmitted`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct JudgedFinal {
    pub format: FinalFormat,
    pub word_count: Option<u32>,
    pub duration_s: Option<u32>,
    pub duration_measured: Option<bool>,
    pub recording: Option<RecordingKind>,
    pub language: Option<(&'static str, f64)>,
    pub band: AppliedBand,
    pub personal: ReflectionPersonal,
}

pub(super) fn judge_reflection(
    content: ReflectionContent,
    rules: &ProgramRules,
) -> Result<JudgedReflection, DomainError> {
    match content {
        ReflectionContent::Written { text } => {
            let (text, words) = measured_text(&text)?;
            check_words(ReflectionFormat::Written, words, rules.written)?;
            Ok(JudgedReflection {
                format: ReflectionFormat::Written,
                word_count: Some(words),
                duration_s: None,
                duration_measured: None,
                recording: None,
                link_count: None,
                band: AppliedBand::Words(rules.written),
                personal: personal(Some(text), Vec::new(), None),
            })
        }
        ReflectionContent::Oral {
            media,
            link,
            duration_s,
            duration_measured,
        } => {
            check_measured(&media, duration_measured)?;
            let (recording, video_link) = recording(&media, link, rules)?;
            if !rules.oral.contains(duration_s) {
                return Err(DomainError::ReflectionDurationOutOfBand {
                    duration_s,
                    band: rules.oral,
                });
            }
            Ok(JudgedReflection {
                format: ReflectionFormat::Oral,
                word_count: None,
                duration_s: Some(duration_s),
                duration_measured: Some(duration_measured),
                recording: Some(recording),
                link_count: None,
                band: AppliedBand::Duration(rules.oral),
                personal: ReflectionPersonal {
                    video_link,
                    ..personal(None, Vec::new(), media)
                },
            })
        }
        ReflectionContent::Instagram { links, text } => {
            let links = parse_links(&links)?;
            let posts = u32::try_from(links.len()).unwrap_or(u32::MAX);
            if posts < rules.instagram.min_posts {
                return Err(DomainError::InstagramTooFewPosts {
                    posts,
                    min: rules.instagram.min_posts,
                });
            }
            let (text, words) = measured_text(&text)?;
            check_words(ReflectionFormat::Instagram, words, rules.instagram.words)?;
            Ok(JudgedReflection {
                format: ReflectionFormat::Instagram,
                word_count: Some(words),
                duration_s: None,
                duration_measured: None,
                recording: None,
                link_count: Some(posts),
                band: AppliedBand::Instagram(rules.instagram),
                personal: personal(Some(text), links, None),
            })
        }
    }
}

pub(super) fn judge_final(
    content: FinalContent,
    rules: &ProgramRules,
) -> Result<JudgedFinal, DomainError> {
    match content {
        FinalContent::Written { text } => {
            let (text, words) = measured_text(&text)?;
            let band = rules.final_written;
            if !band.contains(words) {
                return Err(DomainError::FinalReflectionWordCountOutOfBand {
                    words,
                    min: band.min,
                    max: band.max,
                });
            }
            let check = is_english(&text);
            if check.refuses() {
                let detected = match check {
                    EnglishCheck::NotEnglish { lang, .. } => Some(lang),
                    _ => None,
                };
                return Err(DomainError::FinalReflectionNotEnglish { detected });
            }
            Ok(JudgedFinal {
                format: FinalFormat::Written,
                word_count: Some(words),
                duration_s: None,
                duration_measured: None,
                recording: None,
                language: check.detected(),
                band: AppliedBand::Words(band),
                personal: personal(Some(text), Vec::new(), None),
            })
        }
        FinalContent::Oral {
            media,
            link,
            duration_s,
            duration_measured,
        } => {
            check_measured(&media, duration_measured)?;
            let (recording, video_link) = recording(&media, link, rules)?;
            if duration_s < rules.final_oral_min_s {
                return Err(DomainError::FinalReflectionTooShort {
                    duration_s,
                    min_s: rules.final_oral_min_s,
                });
            }
            Ok(JudgedFinal {
                format: FinalFormat::Oral,
                word_count: None,
                duration_s: Some(duration_s),
                duration_measured: Some(duration_measured),
                recording: Some(recording),
                language: None,
                band: AppliedBand::MinimumDuration {
                    min_s: rules.final_oral_min_s,
                },
                personal: ReflectionPersonal {
                    video_link,
                    ..personal(None, Vec::new(), media)
                },
            })
        }
    }
}

fn personal(
    text: Option<String>,
    links: Vec<InstagramPostLink>,
    media: Option<MediaRef>,
) -> ReflectionPersonal {
    ReflectionPersonal {
        text,
        links,
        media,
        video_link: None,
    }
}

/// The trimmed text and its word count; the length cap only stops abuse, the band is the real rule.
fn measured_text(text: &str) -> Result<(String, u32), DomainError> {
    let text = text.trim();
    let len = text.chars().count();
    if len > MAX_REFLECTION_TEXT_LEN {
        return Err(TextError::TooLong {
            field: "text",
            len,
            max: MAX_REFLECTION_TEXT_LEN,
        }
        .into());
    }
    let words = u32::try_from(word_count(text)).unwrap_or(u32::MAX);
    Ok((text.to_owned(), words))
}

fn check_words(format: ReflectionFormat, words: u32, band: WordBand) -> Result<(), DomainError> {
    if band.contains(words) {
        Ok(())
    } else {
        Err(DomainError::ReflectionWordCountOutOfBand {
            format,
            words,
            min: band.min,
            max: band.max,
        })
    }
}

/// Parses every link and refuses the same post twice (judged on the shortcode, so a reel linked as
/// `/p/` and `/reel/` is one post).
fn parse_links(raw: &[String]) -> Result<Vec<InstagramPostLink>, DomainError> {
    let mut links: Vec<InstagramPostLink> = Vec::with_capacity(raw.len());
    for (i, input) in raw.iter().enumerate() {
        let link = InstagramPostLink::parse(input).map_err(|reason| {
            DomainError::InstagramLinkInvalid {
                position: i + 1,
                reason,
            }
        })?;
        if let Some(j) = links.iter().position(|l| l.code() == link.code()) {
            return Err(DomainError::InstagramLinkDuplicate {
                position: i + 1,
                same_as: j + 1,
            });
        }
        links.push(link);
    }
    Ok(links)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::portfolio::fixtures::{english_text, post_links, swedish_text};
    use crate::domain::values::InstagramLinkError;

    fn rules() -> ProgramRules {
        ProgramRules::default()
    }

    fn written(words: usize) -> ReflectionContent {
        ReflectionContent::Written {
            text: english_text(words),
        }
    }

    fn oral(duration_s: u32) -> ReflectionContent {
        ReflectionContent::Oral {
            media: Some(crate::domain::portfolio::fixtures::media()),
            link: None,
            duration_s,
            duration_measured: true,
        }
    }

    fn code(r: Result<impl std::fmt::Debug, DomainError>) -> &'static str {
        r.unwrap_err().code()
    }

    #[test]
    fn written_reflections_are_judged_on_the_server_word_count() {
        for ok in [900, 1000, 1100] {
            let judged = judge_reflection(written(ok), &rules()).unwrap();
            assert_eq!(judged.word_count, Some(ok as u32));
            assert_eq!(judged.band, AppliedBand::Words(rules().written));
        }
        let err = judge_reflection(written(642), &rules()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the reflection has 642 words; this program accepts 900 to 1100"
        );
        assert_eq!(
            code(judge_reflection(written(899), &rules())),
            "reflection_word_count_out_of_band"
        );
        assert_eq!(
            code(judge_reflection(written(1101), &rules())),
            "reflection_word_count_out_of_band"
        );
    }

    #[test]
    fn reflection_text_is_trimmed_and_kept_in_personal() {
        let text = format!("  {}  ", english_text(1000));
        let judged =
            judge_reflection(ReflectionContent::Written { text: text.clone() }, &rules()).unwrap();
        assert_eq!(judged.personal.text.as_deref(), Some(text.trim()));
    }

    #[test]
    fn absurdly_long_texts_are_refused_before_counting() {
        let text = "a".repeat(MAX_REFLECTION_TEXT_LEN + 1);
        assert_eq!(
            code(judge_reflection(
                ReflectionContent::Written { text },
                &rules()
            )),
            "text_too_long"
        );
    }

    #[test]
    fn oral_reflections_accept_the_band_with_tolerance() {
        for ok in [105, 120, 150, 180, 195] {
            let judged = judge_reflection(oral(ok), &rules()).unwrap();
            assert_eq!(judged.duration_s, Some(ok));
            assert_eq!(judged.duration_measured, Some(true));
        }
        for bad in [0, 104, 196, 600] {
            assert_eq!(
                code(judge_reflection(oral(bad), &rules())),
                "reflection_duration_out_of_band"
            );
        }
    }

    fn instagram(links: Vec<String>, words: usize) -> ReflectionContent {
        ReflectionContent::Instagram {
            links,
            text: english_text(words),
        }
    }

    #[test]
    fn instagram_reflections_need_enough_distinct_posts_and_words() {
        let judged = judge_reflection(instagram(post_links(3), 500), &rules()).unwrap();
        assert_eq!(judged.link_count, Some(3));
        assert_eq!(judged.word_count, Some(500));
        assert_eq!(judged.personal.links.len(), 3);
        assert!(judge_reflection(instagram(post_links(5), 450), &rules()).is_ok());
        assert!(judge_reflection(instagram(post_links(3), 550), &rules()).is_ok());

        let few = judge_reflection(instagram(post_links(2), 500), &rules()).unwrap_err();
        assert_eq!(few, DomainError::InstagramTooFewPosts { posts: 2, min: 3 });
        let short = judge_reflection(instagram(post_links(3), 449), &rules()).unwrap_err();
        assert_eq!(
            short.to_string(),
            "the text of the Instagram reflection has 449 words; this program accepts 450 to 550"
        );
        assert_eq!(
            code(judge_reflection(instagram(post_links(3), 551), &rules())),
            "reflection_word_count_out_of_band"
        );
    }

    #[test]
    fn instagram_duplicates_are_detected_after_normalising() {
        let mut links = post_links(3);
        links.push(format!("{}?igsh=xyz", links[1].trim_end_matches('/')));
        let err = judge_reflection(instagram(links, 500), &rules()).unwrap_err();
        assert_eq!(
            err,
            DomainError::InstagramLinkDuplicate {
                position: 4,
                same_as: 2
            }
        );
        let reel_and_post = vec![
            "https://www.instagram.com/p/SAME1/".to_owned(),
            "https://instagram.com/reel/SAME1".to_owned(),
            "https://instagram.com/p/OTHER2".to_owned(),
        ];
        assert_eq!(
            code(judge_reflection(instagram(reel_and_post, 500), &rules())),
            "instagram_link_duplicate"
        );
    }

    #[test]
    fn invalid_instagram_links_name_their_position_and_reason() {
        let mut links = post_links(2);
        links.push("http://www.instagram.com/p/abc/".to_owned());
        let err = judge_reflection(instagram(links, 500), &rules()).unwrap_err();
        assert_eq!(
            err,
            DomainError::InstagramLinkInvalid {
                position: 3,
                reason: InstagramLinkError::NotHttps
            }
        );
        assert_eq!(err.to_string(), "Instagram link 3 must start with https://");
    }

    #[test]
    fn final_written_must_be_english_and_in_band() {
        let ok = judge_final(
            FinalContent::Written {
                text: english_text(3000),
            },
            &rules(),
        )
        .unwrap();
        assert_eq!(ok.word_count, Some(3000));
        assert_eq!(ok.language.map(|(l, _)| l), Some("eng"));
        for words in [2700, 3300] {
            assert!(
                judge_final(
                    FinalContent::Written {
                        text: english_text(words)
                    },
                    &rules()
                )
                .is_ok()
            );
        }
        for words in [2699, 3301] {
            let err = judge_final(
                FinalContent::Written {
                    text: english_text(words),
                },
                &rules(),
            )
            .unwrap_err();
            assert_eq!(err.code(), "final_reflection_word_count_out_of_band");
        }
        let swedish = judge_final(
            FinalContent::Written {
                text: swedish_text(3000),
            },
            &rules(),
        )
        .unwrap_err();
        assert_eq!(
            swedish,
            DomainError::FinalReflectionNotEnglish {
                detected: Some("swe")
            }
        );
        assert!(swedish.to_string().contains("Swedish"));
    }

    #[test]
    fn final_written_without_any_language_is_refused() {
        let digits = vec!["12345"; 3000].join(" ");
        let err = judge_final(FinalContent::Written { text: digits }, &rules()).unwrap_err();
        assert_eq!(
            err,
            DomainError::FinalReflectionNotEnglish { detected: None }
        );
    }

    #[test]
    fn final_oral_needs_the_minimum_duration_only() {
        let oral = |duration_s| FinalContent::Oral {
            media: Some(crate::domain::portfolio::fixtures::media()),
            link: None,
            duration_s,
            duration_measured: false,
        };
        assert!(judge_final(oral(300), &rules()).is_ok());
        assert!(judge_final(oral(3600), &rules()).is_ok());
        assert_eq!(
            judge_final(oral(299), &rules()).unwrap_err(),
            DomainError::FinalReflectionTooShort {
                duration_s: 299,
                min_s: 300
            }
        );
        let impossible = FinalContent::Oral {
            media: None,
            link: None,
            duration_s: 400,
            duration_measured: true,
        };
        assert_eq!(
            code(judge_final(impossible, &rules())),
            "duration_measured_without_media"
        );
    }
}
