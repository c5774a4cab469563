//! Random histories: the steps a history is made of, their strategies, and the command each step becomes.

use chrono::{Duration, NaiveDate};
use proptest::prelude::*;
use proptest::sample::select;

use super::super::fixtures::*;
use super::super::*;
use crate::domain::ids::{ActivityId, CatalogItemId, CertificateId, StaffId};
use crate::domain::program::ProgramCommand;
use crate::domain::rules::ProgramRules;

#[derive(Debug, Clone, Copy)]
pub(super) enum Who {
    Coordinator,
    Stranger,
}

#[derive(Debug, Clone)]
pub(super) enum Content {
    Written(usize),
    Oral {
        duration_s: u32,
        measured: bool,
        media: bool,
    },
    Instagram {
        links: usize,
        duplicate: bool,
        words: usize,
    },
}

#[derive(Debug, Clone)]
pub(super) enum Final {
    Written { words: usize, english: bool },
    Oral(u32),
}

#[derive(Debug, Clone)]
pub(super) enum Step {
    Open(i64),
    ChangeCompletion(i64),
    ConfirmCompletion(Who),
    /// `fresh`: a new activity id; otherwise one already used (refused as taken, if any exists).
    Log {
        fresh: bool,
        act: u8,
        item: usize,
        ended_days_ago: i64,
        length_days: i64,
        evidence: bool,
    },
    Withdraw(u8),
    Submit(u8, Content),
    Resubmit(u8, Content),
    Approve(u8, Who),
    Return(u8, Who),
    SubmitFinal(Final),
    ResubmitFinal(Final),
    ApproveFinal(Who),
    ReturnFinal(Who),
    Extension(i64, Who),
    Apply,
    ApproveApplication(Who),
    RejectApplication(Who),
    Revoke(Who),
    Rules {
        required: u8,
        repeats: bool,
    },
    Retire(usize),
    Advance(i64),
}

/// Unknown catalog item, for the "not in the catalog" refusal.
const UNKNOWN_ITEM: usize = 99;
/// An activity reference that is never logged, for the "no such activity" refusal.
const UNKNOWN_ACT: u8 = 9;

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![6 => Just(Who::Coordinator), 1 => Just(Who::Stranger)]
}

/// Which activity a step refers to: 0..6 one of the active activities (by position), 6..9 any logged
/// one (withdrawn included), `UNKNOWN_ACT` one never logged.
fn act() -> impl Strategy<Value = u8> {
    prop_oneof![12 => 0u8..6, 2 => 6u8..9, 1 => Just(UNKNOWN_ACT)]
}

fn content() -> impl Strategy<Value = Content> {
    prop_oneof![
        4 => prop_oneof![4 => Just(1000usize), 1 => select(vec![600usize, 899, 900, 1100, 1101])]
            .prop_map(Content::Written),
        2 => (select(vec![100u32, 105, 150, 195, 196]), any::<bool>(), prop::bool::weighted(0.8))
            .prop_map(|(duration_s, measured, media)| Content::Oral { duration_s, measured, media }),
        2 => (2usize..5, prop::bool::weighted(0.15), select(vec![449usize, 500, 500, 551]))
            .prop_map(|(links, duplicate, words)| Content::Instagram { links, duplicate, words }),
    ]
}

fn final_content() -> impl Strategy<Value = Final> {
    prop_oneof![
        2 => (select(vec![2699usize, 2700, 3000, 3000, 3300, 3301]), prop::bool::weighted(0.85))
            .prop_map(|(words, english)| Final::Written { words, english }),
        3 => select(vec![240u32, 299, 300, 420]).prop_map(Final::Oral),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (-5i64..400).prop_map(Step::Open),
        1 => (-5i64..400).prop_map(Step::ChangeCompletion),
        2 => who().prop_map(Step::ConfirmCompletion),
        8 => (
            prop::bool::weighted(0.9),
            act(),
            prop_oneof![10 => 0usize..5, 1 => Just(UNKNOWN_ITEM)],
            -2i64..40,
            -2i64..20,
            any::<bool>(),
        )
            .prop_map(|(fresh, act, item, ended_days_ago, length_days, evidence)| Step::Log {
                fresh, act, item, ended_days_ago, length_days, evidence,
            }),
        1 => act().prop_map(Step::Withdraw),
        8 => (act(), content()).prop_map(|(a, c)| Step::Submit(a, c)),
        2 => (act(), content()).prop_map(|(a, c)| Step::Resubmit(a, c)),
        8 => (act(), who()).prop_map(|(a, w)| Step::Approve(a, w)),
        2 => (act(), who()).prop_map(|(a, w)| Step::Return(a, w)),
        4 => final_content().prop_map(Step::SubmitFinal),
        1 => final_content().prop_map(Step::ResubmitFinal),
        4 => who().prop_map(Step::ApproveFinal),
        1 => who().prop_map(Step::ReturnFinal),
        1 => (-3i64..200, who()).prop_map(|(d, w)| Step::Extension(d, w)),
        4 => Just(Step::Apply),
        4 => who().prop_map(Step::ApproveApplication),
        1 => who().prop_map(Step::RejectApplication),
        1 => who().prop_map(Step::Revoke),
        1 => (1u8..=3, any::<bool>()).prop_map(|(required, repeats)| Step::Rules { required, repeats }),
        1 => (0usize..6).prop_map(Step::Retire),
        2 => (1i64..24 * 20).prop_map(Step::Advance),
    ]
}

/// The straight path to a certificate, as steps.
fn happy_path() -> Vec<Step> {
    let mut steps = vec![Step::Open(200), Step::ConfirmCompletion(Who::Coordinator)];
    for i in 0..3u8 {
        steps.push(Step::Log {
            fresh: true,
            act: 0,
            item: usize::from(i),
            ended_days_ago: 2,
            length_days: 1,
            evidence: false,
        });
    }
    for i in 0..3u8 {
        steps.push(Step::Submit(i, Content::Written(1000)));
        steps.push(Step::Approve(i, Who::Coordinator));
    }
    steps.extend([
        Step::SubmitFinal(Final::Oral(300)),
        Step::ApproveFinal(Who::Coordinator),
        Step::Apply,
        Step::ApproveApplication(Who::Coordinator),
    ]);
    steps
}

/// Three kinds of history: random steps after an opening, the straight path with random steps mixed
/// in (so that certificates are reached often, from odd orders), and a few starting anywhere.
pub(super) fn history_steps() -> impl Strategy<Value = Vec<Step>> {
    let opened_first = (
        (30i64..400).prop_map(Step::Open),
        prop::collection::vec(step(), 0..80),
    )
        .prop_map(|(open, rest)| std::iter::once(open).chain(rest).collect::<Vec<_>>());
    let path = happy_path();
    let noisy_path =
        prop::collection::vec((0..=path.len(), step()), 0..40).prop_map(move |mut noise| {
            noise.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
            let mut steps = path.clone();
            for (at, step) in noise {
                steps.insert(at, step);
            }
            steps
        });
    prop_oneof![4 => opened_first, 4 => noisy_path, 1 => prop::collection::vec(step(), 1..40)]
}

fn staff(w: Who) -> StaffId {
    match w {
        Who::Coordinator => coordinator(),
        Who::Stranger => stranger(),
    }
}

fn reflection(c: &Content) -> ReflectionContent {
    match *c {
        Content::Written(words) => ReflectionContent::Written {
            text: english_text(words),
        },
        Content::Oral {
            duration_s,
            measured,
            media: with_media,
        } => ReflectionContent::Oral {
            media: with_media.then(media),
            link: None,
            duration_s,
            duration_measured: measured,
        },
        Content::Instagram {
            links,
            duplicate,
            words,
        } => {
            let mut links = post_links(links);
            if duplicate {
                links.push(links[0].clone());
            }
            ReflectionContent::Instagram {
                links,
                text: english_text(words),
            }
        }
    }
}

fn final_reflection(f: &Final) -> FinalContent {
    match *f {
        Final::Written {
            words,
            english: true,
        } => FinalContent::Written {
            text: english_text(words),
        },
        Final::Written {
            words,
            english: false,
        } => FinalContent::Written {
            text: swedish_text(words),
        },
        Final::Oral(duration_s) => FinalContent::Oral {
            media: Some(media()),
            link: None,
            duration_s,
            duration_measured: false,
        },
    }
}

/// What a step asks of the world: a portfolio command, a program command, or time passing.
pub(super) enum Action {
    Portfolio(PortfolioCommand),
    Program(ProgramCommand),
    Wait(Duration),
}

/// Counters that make ids unique across a history.
#[derive(Default)]
pub(super) struct Ids {
    activities: u128,
    certificates: u128,
}

pub(super) fn action(
    step: &Step,
    state: &PortfolioState,
    today: NaiveDate,
    ids: &mut Ids,
) -> Action {
    let days = |d: i64| today + Duration::days(d);
    let all: Vec<&Activity> = state
        .opened()
        .map(|p| p.activities.iter().collect())
        .unwrap_or_default();
    let active: Vec<ActivityId> = all
        .iter()
        .filter(|a| !a.withdrawn)
        .map(|a| a.id())
        .collect();
    let logged: Vec<ActivityId> = all.iter().map(|a| a.id()).collect();
    let a = |i: u8| {
        let pool = if i < 6 { &active } else { &logged };
        match pool.len() {
            _ if i == UNKNOWN_ACT => aid(u128::from(UNKNOWN_ACT)),
            0 => aid(u128::from(UNKNOWN_ACT)),
            n => pool[usize::from(i) % n],
        }
    };
    use PortfolioCommand as C;
    let cmd = match step {
        Step::Open(d) => open_command_with(days(*d)),
        Step::ConfirmCompletion(w) => C::ConfirmExpectedCompletion { by: staff(*w) },
        Step::ChangeCompletion(d) => C::SetExpectedCompletion {
            expected_completion: days(*d),
            reason: text("Study plan."),
            by: coordinator(),
        },
        Step::Log {
            fresh,
            act,
            item: i,
            ended_days_ago,
            length_days,
            evidence,
        } => {
            let activity_id = if *fresh || logged.is_empty() {
                ids.activities += 1;
                aid(0x1000 + ids.activities)
            } else {
                a(*act)
            };
            let ended_on = days(-ended_days_ago);
            let item = if *i == UNKNOWN_ITEM {
                CatalogItemId::parse("no-such-item").unwrap()
            } else {
                item(*i)
            };
            C::LogActivity {
                activity_id,
                item,
                started_on: ended_on - Duration::days(*length_days),
                ended_on,
                description: text("Took part and helped organise."),
                evidence: evidence.then(media),
            }
        }
        Step::Withdraw(i) => C::WithdrawActivity { activity_id: a(*i) },
        Step::Submit(i, c) => C::SubmitReflection {
            activity_id: a(*i),
            content: reflection(c),
        },
        Step::Resubmit(i, c) => C::ResubmitReflection {
            activity_id: a(*i),
            content: reflection(c),
        },
        Step::Approve(i, w) => C::ApproveReflection {
            activity_id: a(*i),
            by: staff(*w),
        },
        Step::Return(i, w) => C::ReturnReflection {
            activity_id: a(*i),
            by: staff(*w),
            feedback: text("Go deeper."),
        },
        Step::SubmitFinal(f) => C::SubmitFinalReflection {
            content: final_reflection(f),
        },
        Step::ResubmitFinal(f) => C::ResubmitFinalReflection {
            content: final_reflection(f),
        },
        Step::ApproveFinal(w) => C::ApproveFinalReflection { by: staff(*w) },
        Step::ReturnFinal(w) => C::ReturnFinalReflection {
            by: staff(*w),
            feedback: text("Go deeper."),
        },
        Step::Extension(d, w) => C::GrantExtension {
            until: days(*d),
            reason: text("Illness."),
            by: staff(*w),
        },
        Step::Apply => C::Apply,
        Step::ApproveApplication(w) => {
            ids.certificates += 1;
            let certificate_id =
                CertificateId::new(uuid::Uuid::from_u128(0xCE00 + ids.certificates));
            C::ApproveApplication {
                certificate_id,
                by: staff(*w),
            }
        }
        Step::RejectApplication(w) => C::RejectApplication {
            by: staff(*w),
            reason: text("Incomplete."),
        },
        Step::Revoke(w) => C::RevokeCertificate {
            by: staff(*w),
            reason: text("Issued in error."),
        },
        Step::Rules { required, repeats } => {
            let rules = ProgramRules {
                required_activities: *required,
                allow_repeat_items: *repeats,
                ..ProgramRules::default()
            };
            return Action::Program(ProgramCommand::ChangeRules { rules });
        }
        Step::Retire(i) => {
            return Action::Program(ProgramCommand::RetireCatalogItem { item: item(*i) });
        }
        Step::Advance(hours) => return Action::Wait(Duration::hours(*hours)),
    };
    Action::Portfolio(cmd)
}
