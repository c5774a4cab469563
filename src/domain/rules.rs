//! The per-program rules.
//!
//! The seed gives targets ("about 1000 words", "about 2-3 minutes"); the accepted bands around them are
//! our defaults, and every program may change them. Rules are versioned by the program aggregate and each
//! reflection event records the version and the band it was judged by, so a later rules change never
//! makes an accepted reflection look wrong in the audit.

use serde::{Deserialize, Serialize};

/// An inclusive range of words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WordBand {
    pub min: u32,
    pub max: u32,
}

impl WordBand {
    pub fn contains(&self, words: u32) -> bool {
        (self.min..=self.max).contains(&words)
    }
}

/// A target duration range plus a tolerance on each side.
///
/// The tolerance is kept separate from the range (instead of widening the range) because students are
/// told the range ("2-3 minutes"), while the tolerance absorbs intros, outros and rounding by recording
/// apps; messages quote both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DurationBand {
    pub min_s: u32,
    pub max_s: u32,
    pub tolerance_s: u32,
}

impl DurationBand {
    pub fn accepted_min_s(&self) -> u32 {
        self.min_s.saturating_sub(self.tolerance_s)
    }

    pub fn accepted_max_s(&self) -> u32 {
        self.max_s.saturating_add(self.tolerance_s)
    }

    pub fn contains(&self, seconds: u32) -> bool {
        (self.accepted_min_s()..=self.accepted_max_s()).contains(&seconds)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstagramBand {
    pub min_posts: u32,
    pub words: WordBand,
}

/// Everything a program may configure about CIM.
///
/// `#[serde(default)]` lets rules stored before a field existed load with that field's default, which is
/// what the program was implicitly using at the time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct ProgramRules {
    /// How many activities (each with an approved reflection) a certificate needs.
    pub required_activities: u8,
    /// Whether the same catalog item may count more than once (default: three *different* items).
    pub allow_repeat_items: bool,
    pub written: WordBand,
    pub oral: DurationBand,
    pub instagram: InstagramBand,
    pub final_written: WordBand,
    /// The final oral reflection has a floor only ("at least 5 minutes").
    pub final_oral_min_s: u32,
    /// The final reflection is due this many days before the expected completion of studies.
    pub final_deadline_offset_days: u32,
    /// Whether an oral reflection may rest on the student's declared duration alone, without an
    /// upload or a video-platform link. Off unless a program explicitly allows it.
    pub allow_declared_duration: bool,
    /// Host names of the university's video platform (e.g. `play.ki.se`) that oral reflections may
    /// link to instead of uploading. Empty: links are not accepted.
    pub video_platform_hosts: Vec<String>,
}

impl Default for ProgramRules {
    fn default() -> Self {
        Self {
            required_activities: 3,
            allow_repeat_items: false,
            written: WordBand {
                min: 900,
                max: 1100,
            },
            oral: DurationBand {
                min_s: 120,
                max_s: 180,
                tolerance_s: 15,
            },
            instagram: InstagramBand {
                min_posts: 3,
                words: WordBand { min: 450, max: 550 },
            },
            final_written: WordBand {
                min: 2700,
                max: 3300,
            },
            final_oral_min_s: 300,
            final_deadline_offset_days: 28,
            allow_declared_duration: false,
            video_platform_hosts: Vec::new(),
        }
    }
}

/// Longest deadline offset accepted: beyond a year the "final" reflection would precede most activities.
pub const MAX_DEADLINE_OFFSET_DAYS: u32 = 365;

/// Why a rules change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("at least one activity must be required")]
    NoRequiredActivities,
    #[error("the {band} band runs from {min} to {max}; its minimum must not exceed its maximum")]
    BandInverted {
        band: &'static str,
        min: u32,
        max: u32,
    },
    #[error("the {band} minimum is 0; an empty reflection would be accepted")]
    ZeroMinimum { band: &'static str },
    #[error(
        "the final reflection deadline is {days} days before completion; at most {MAX_DEADLINE_OFFSET_DAYS} are accepted"
    )]
    DeadlineOffsetTooLarge { days: u32 },
    #[error(
        "video platform host {position} is not a host name; give names such as play.ki.se, without https:// or a path"
    )]
    VideoHostInvalid { position: usize },
}

impl RulesError {
    pub fn code(&self) -> &'static str {
        match self {
            RulesError::NoRequiredActivities => "rules_no_required_activities",
            RulesError::BandInverted { .. } => "rules_band_inverted",
            RulesError::ZeroMinimum { .. } => "rules_zero_minimum",
            RulesError::DeadlineOffsetTooLarge { .. } => "rules_deadline_offset_too_large",
            RulesError::VideoHostInvalid { .. } => "rules_video_host_invalid",
        }
    }
}

impl ProgramRules {
    /// Checked when a program changes its rules; stored rules are facts and are not re-checked on load.
    pub fn validate(&self) -> Result<(), RulesError> {
        if self.required_activities == 0 {
            return Err(RulesError::NoRequiredActivities);
        }
        let ranges = [
            ("written", self.written.min, self.written.max),
            ("oral", self.oral.min_s, self.oral.max_s),
            (
                "Instagram words",
                self.instagram.words.min,
                self.instagram.words.max,
            ),
            (
                "final written",
                self.final_written.min,
                self.final_written.max,
            ),
        ];
        for (band, min, max) in ranges {
            if min == 0 {
                return Err(RulesError::ZeroMinimum { band });
            }
            if min > max {
                return Err(RulesError::BandInverted { band, min, max });
            }
        }
        if self.instagram.min_posts == 0 {
            return Err(RulesError::ZeroMinimum {
                band: "Instagram posts",
            });
        }
        if self.final_oral_min_s == 0 {
            return Err(RulesError::ZeroMinimum { band: "final oral" });
        }
        if self.final_deadline_offset_days > MAX_DEADLINE_OFFSET_DAYS {
            return Err(RulesError::DeadlineOffsetTooLarge {
                days: self.final_deadline_offset_days,
            });
        }
        if let Some(i) = self
            .video_platform_hosts
            .iter()
            .position(|h| !crate::domain::values::recording::is_host_name(h))
        {
            return Err(RulesError::VideoHostInvalid { position: i + 1 });
        }
        Ok(())
    }
}

/// The band a reflection was judged by, recorded in its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AppliedBand {
    Words(WordBand),
    Duration(DurationBand),
    Instagram(InstagramBand),
    MinimumDuration { min_s: u32 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let r = ProgramRules::default();
        assert_eq!(r.required_activities, 3);
        assert!(!r.allow_repeat_items);
        assert_eq!(
            r.written,
            WordBand {
                min: 900,
                max: 1100
            }
        );
        assert_eq!(
            (r.oral.accepted_min_s(), r.oral.accepted_max_s()),
            (105, 195)
        );
        assert_eq!(r.instagram.min_posts, 3);
        assert_eq!(r.instagram.words, WordBand { min: 450, max: 550 });
        assert_eq!(
            r.final_written,
            WordBand {
                min: 2700,
                max: 3300
            }
        );
        assert_eq!(r.final_oral_min_s, 300);
        assert_eq!(r.final_deadline_offset_days, 28);
        assert_eq!(r.validate(), Ok(()));
    }

    #[test]
    fn bands_are_inclusive_and_tolerance_widens_durations() {
        let words = WordBand {
            min: 900,
            max: 1100,
        };
        assert!(!words.contains(899));
        assert!(words.contains(900) && words.contains(1100));
        assert!(!words.contains(1101));
        let oral = ProgramRules::default().oral;
        assert!(!oral.contains(104));
        assert!(oral.contains(105) && oral.contains(195));
        assert!(!oral.contains(196));
    }

    #[test]
    fn tolerance_larger_than_the_minimum_does_not_underflow() {
        let band = DurationBand {
            min_s: 10,
            max_s: 20,
            tolerance_s: 30,
        };
        assert_eq!(band.accepted_min_s(), 0);
        assert!(band.contains(0));
    }

    #[test]
    fn validation_refuses_impossible_rules() {
        let base = ProgramRules::default();
        let cases = [
            (
                ProgramRules {
                    required_activities: 0,
                    ..base.clone()
                },
                RulesError::NoRequiredActivities,
            ),
            (
                ProgramRules {
                    written: WordBand {
                        min: 1200,
                        max: 1100,
                    },
                    ..base.clone()
                },
                RulesError::BandInverted {
                    band: "written",
                    min: 1200,
                    max: 1100,
                },
            ),
            (
                ProgramRules {
                    oral: DurationBand {
                        min_s: 200,
                        max_s: 100,
                        tolerance_s: 0,
                    },
                    ..base.clone()
                },
                RulesError::BandInverted {
                    band: "oral",
                    min: 200,
                    max: 100,
                },
            ),
            (
                ProgramRules {
                    final_written: WordBand { min: 0, max: 10 },
                    ..base.clone()
                },
                RulesError::ZeroMinimum {
                    band: "final written",
                },
            ),
            (
                ProgramRules {
                    instagram: InstagramBand {
                        min_posts: 0,
                        ..base.instagram
                    },
                    ..base.clone()
                },
                RulesError::ZeroMinimum {
                    band: "Instagram posts",
                },
            ),
            (
                ProgramRules {
                    final_oral_min_s: 0,
                    ..base.clone()
                },
                RulesError::ZeroMinimum { band: "final oral" },
            ),
            (
                ProgramRules {
                    final_deadline_offset_days: 366,
                    ..base.clone()
                },
                RulesError::DeadlineOffsetTooLarge { days: 366 },
            ),
        ];
        for (rules, expected) in cases {
            assert_eq!(rules.validate(), Err(expected));
        }
    }

    #[test]
    fn rules_round_trip_and_missing_fields_take_defaults() {
        let rules = ProgramRules {
            allow_repeat_items: true,
            ..ProgramRules::default()
        };
        let json = serde_json::to_value(&rules).unwrap();
        assert_eq!(serde_json::from_value::<ProgramRules>(json).unwrap(), rules);
        let partial: ProgramRules = serde_json::from_str(r#"{"required_activities": 2}"#).unwrap();
        assert_eq!(partial.required_activities, 2);
        assert_eq!(partial.written, ProgramRules::default().written);
        // Rules stored before the recording rules existed: declared durations off, no platform.
        assert!(!partial.allow_declared_duration);
        assert!(partial.video_platform_hosts.is_empty());
    }

    #[test]
    fn video_platform_hosts_must_be_host_names() {
        let rules = ProgramRules {
            video_platform_hosts: vec!["play.ki.se".into(), "https://video.ki.se/".into()],
            ..ProgramRules::default()
        };
        assert_eq!(
            rules.validate(),
            Err(RulesError::VideoHostInvalid { position: 2 })
        );
    }

    #[test]
    fn applied_band_is_tagged() {
        let json = serde_json::to_value(AppliedBand::Words(WordBand { min: 1, max: 2 })).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "words", "min": 1, "max": 2})
        );
        let back: AppliedBand = serde_json::from_value(json).unwrap();
        assert_eq!(back, AppliedBand::Words(WordBand { min: 1, max: 2 }));
    }
}
