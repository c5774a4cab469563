//! The recording behind an oral reflection (activity or final): an upload, a link to the program's
//! video platform, or, only where the program's rules allow it, the declared duration alone.

use crate::domain::errors::DomainError;
use crate::domain::rules::ProgramRules;
use crate::domain::values::{MediaRef, RecordingKind, VideoLink};

/// A duration can only have been measured from a file; claiming otherwise is a client bug that would
/// hide the "check this duration" flag from the coordinator.
pub(super) fn check_measured(media: &Option<MediaRef>, measured: bool) -> Result<(), DomainError> {
    if measured && media.is_none() {
        return Err(DomainError::DurationMeasuredWithoutMedia);
    }
    Ok(())
}

/// What an oral submission rests on, and the checked link when it is a link.
pub(super) fn recording(
    media: &Option<MediaRef>,
    link: Option<String>,
    rules: &ProgramRules,
) -> Result<(RecordingKind, Option<VideoLink>), DomainError> {
    match (media, link) {
        (Some(_), Some(_)) => Err(DomainError::RecordingTwice),
        (Some(_), None) => Ok((RecordingKind::Upload, None)),
        (None, Some(link)) => {
            let link = VideoLink::parse(&link, &rules.video_platform_hosts)?;
            Ok((RecordingKind::Link, Some(link)))
        }
        (None, None) if rules.allow_declared_duration => Ok((RecordingKind::Declared, None)),
        (None, None) => Err(DomainError::RecordingRequired),
    }
}

#[cfg(test)]
mod tests {
    use super::super::commands::{FinalContent, ReflectionContent};
    use super::super::content::{judge_final, judge_reflection};
    use super::super::fixtures::media;
    use super::*;

    fn oral(media: Option<MediaRef>, link: Option<&str>) -> ReflectionContent {
        ReflectionContent::Oral {
            media,
            link: link.map(str::to_owned),
            duration_s: 150,
            duration_measured: false,
        }
    }

    fn with_platform() -> ProgramRules {
        ProgramRules {
            video_platform_hosts: vec!["play.ki.se".into()],
            ..ProgramRules::default()
        }
    }

    #[test]
    fn declared_durations_are_kept_and_flagged() {
        let declared = ReflectionContent::Oral {
            media: None,
            link: None,
            duration_s: 150,
            duration_measured: false,
        };
        let allowed = ProgramRules {
            allow_declared_duration: true,
            ..ProgramRules::default()
        };
        let judged = judge_reflection(declared, &allowed).unwrap();
        assert_eq!(judged.duration_measured, Some(false));
        let impossible = ReflectionContent::Oral {
            media: None,
            link: None,
            duration_s: 150,
            duration_measured: true,
        };
        assert_eq!(
            judge_reflection(impossible, &ProgramRules::default())
                .unwrap_err()
                .code(),
            "duration_measured_without_media"
        );
    }

    #[test]
    fn a_declared_duration_alone_is_refused_unless_the_rules_allow_it() {
        let err = judge_reflection(oral(None, None), &ProgramRules::default()).unwrap_err();
        assert_eq!(err, DomainError::RecordingRequired);
        assert_eq!(err.code(), "recording_required");
        assert!(err.to_string().contains("upload"), "{err}");
        let final_declared = FinalContent::Oral {
            media: None,
            link: None,
            duration_s: 400,
            duration_measured: false,
        };
        assert_eq!(
            judge_final(final_declared.clone(), &ProgramRules::default()).unwrap_err(),
            DomainError::RecordingRequired
        );
        let allowed = ProgramRules {
            allow_declared_duration: true,
            ..ProgramRules::default()
        };
        let judged = judge_reflection(oral(None, None), &allowed).unwrap();
        assert_eq!(judged.recording, Some(RecordingKind::Declared));
        let judged = judge_final(final_declared, &allowed).unwrap();
        assert_eq!(judged.recording, Some(RecordingKind::Declared));
    }

    #[test]
    fn an_upload_or_a_platform_link_is_a_recording_and_says_which() {
        let judged = judge_reflection(oral(Some(media()), None), &ProgramRules::default()).unwrap();
        assert_eq!(judged.recording, Some(RecordingKind::Upload));
        assert_eq!(judged.personal.video_link, None);
        let judged = judge_reflection(
            oral(None, Some("https://play.ki.se/media/0_ab")),
            &with_platform(),
        )
        .unwrap();
        assert_eq!(judged.recording, Some(RecordingKind::Link));
        assert_eq!(judged.duration_measured, Some(false));
        assert_eq!(
            judged.personal.video_link.map(|l| l.as_str().to_owned()),
            Some("https://play.ki.se/media/0_ab".to_owned())
        );
    }

    #[test]
    fn links_elsewhere_and_both_at_once_are_refused() {
        let code = |c, r: &ProgramRules| judge_reflection(c, r).unwrap_err().code();
        let youtube = oral(None, Some("https://www.youtube.com/watch?v=x"));
        assert_eq!(
            code(youtube, &with_platform()),
            "video_link_host_not_allowed"
        );
        let no_platform = oral(None, Some("https://play.ki.se/media/0_ab"));
        assert_eq!(
            code(no_platform, &ProgramRules::default()),
            "video_platform_not_configured"
        );
        let both = oral(Some(media()), Some("https://play.ki.se/media/0_ab"));
        assert_eq!(code(both, &with_platform()), "recording_twice");
        // The band still applies to a link's declared duration.
        let short = ReflectionContent::Oral {
            media: None,
            link: Some("https://play.ki.se/media/0_ab".into()),
            duration_s: 30,
            duration_measured: false,
        };
        assert_eq!(
            code(short, &with_platform()),
            "reflection_duration_out_of_band"
        );
    }
}
