//! Property tests over random histories.
//!
//! A history is a random sequence of student, coordinator and program actions with valid and invalid
//! inputs (unknown activities, strangers reviewing, texts just outside their band, dates in the future,
//! rules changing mid-way, time passing). Folding it through decide/evolve must keep the invariants
//! below whatever the order.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use super::fixtures::*;
use super::*;
use crate::domain::calendar::stockholm_date;
use crate::domain::errors::DomainError;
use crate::domain::event_payload::PERSONAL_FIELD;
use crate::domain::ids::{ActivityId, CatalogItemId, CertificateId, StaffId};
use crate::domain::program::{self, ProgramCommand, ProgramState};
use crate::domain::rules::ProgramRules;

#[derive(Debug, Clone, Copy)]
enum Who {
    Coordinator,
    Stranger,
}

#[derive(Debug, Clone)]
enum Content {
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
enum Final {
    Written { words: usize, english: bool },
    Oral(u32),
}

#[derive(Debug, Clone)]
enum Step {
    Open(i64),
    ChangeCompletion(i64),
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
    let mut steps = vec![Step::Open(200)];
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
fn history_steps() -> impl Strategy<Value = Vec<Step>> {
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
enum Action {
    Portfolio(PortfolioCommand),
    Program(ProgramCommand),
    Wait(Duration),
}

/// Counters that make ids unique across a history.
#[derive(Default)]
struct Ids {
    activities: u128,
    certificates: u128,
}

fn action(step: &Step, state: &PortfolioState, today: NaiveDate, ids: &mut Ids) -> Action {
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

/// An independent statement of "may this portfolio be certified under these rules", written without
/// the helpers `decide` uses.
fn certifiable(p: &Portfolio, rules: &ProgramRules) -> bool {
    let approved =
        |reviews: Option<&Option<Review>>| matches!(reviews, Some(Some(Review::Approved { .. })));
    let mut items: Vec<&CatalogItemId> = p
        .activities
        .iter()
        .filter(|a| !a.withdrawn && approved(a.attempts.last().map(|t| &t.review)))
        .map(|a| &a.logged.item)
        .collect();
    if !rules.allow_repeat_items {
        items.sort();
        items.dedup();
    }
    let final_approved = approved(p.final_attempts.last().map(|t| &t.review));
    items.len() >= usize::from(rules.required_activities) && final_approved
}

/// The event with its personal part erased, as the store would load it after an erasure.
fn erased(event: &PortfolioEvent) -> PortfolioEvent {
    let (event_type, mut payload) = event.to_payload();
    payload.as_object_mut().unwrap().remove(PERSONAL_FIELD);
    PortfolioEvent::from_payload(event_type, payload).unwrap()
}

fn erased_outcome(
    result: &Result<Vec<PortfolioEvent>, DomainError>,
) -> Result<Vec<PortfolioEvent>, &'static str> {
    match result {
        Ok(events) => Ok(events.iter().map(erased).collect()),
        Err(e) => Err(e.code()),
    }
}

/// What happened along one history, for the coverage check (refusals counted by code).
#[derive(Debug, Default)]
struct Outcome {
    codes: std::collections::BTreeMap<&'static str, usize>,
    certificates: usize,
    accepted: usize,
    refused: usize,
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap()
}

/// Folds one history, checking every invariant as it goes; a broken invariant is returned as a test
/// case failure so that proptest can shrink the history to a minimal one.
fn check_history(steps: &[Step]) -> Result<Outcome, TestCaseError> {
    let mut prog = program();
    let mut now = start();
    let mut state = PortfolioState::default();
    let mut erased_state = PortfolioState::default();
    let mut log: Vec<PortfolioEvent> = Vec::new();
    let mut outcome = Outcome::default();
    let mut ids = Ids::default();
    for step in steps {
        let cmd = match action(step, &state, stockholm_date(now), &mut ids) {
            Action::Wait(d) => {
                now += d;
                continue;
            }
            Action::Program(cmd) => {
                if let Ok(events) = program::decide(&prog, cmd, now) {
                    prog = events.iter().fold(prog, program::evolve);
                }
                continue;
            }
            Action::Portfolio(cmd) => cmd,
        };
        let before = state.clone();
        let result = decide(&state, &prog, cmd.clone(), now);

        // Decisions do not depend on personal data: the erased state decides the same.
        let on_erased = decide(&erased_state, &prog, cmd.clone(), now);
        prop_assert_eq!(
            erased_outcome(&on_erased),
            erased_outcome(&result),
            "{:?}",
            step
        );

        match result {
            Err(e) => {
                outcome.refused += 1;
                *outcome.codes.entry(e.code()).or_default() += 1;
                // (b) A refusal changes nothing, and is the same refusal when asked again.
                prop_assert_eq!(&state, &before);
                prop_assert_eq!(decide(&state, &prog, cmd, now).unwrap_err(), e);
            }
            Ok(events) => {
                outcome.accepted += 1;
                prop_assert!(!events.is_empty());
                for event in &events {
                    // (a) No certificate without the required approved reflections and final reflection.
                    if let PortfolioEvent::CertificateApproved(c) = event {
                        let p = state.opened().unwrap();
                        prop_assert!(certifiable(p, &prog.registered().unwrap().rules), "{:?}", p);
                        let required =
                            usize::from(prog.registered().unwrap().rules.required_activities);
                        prop_assert!(c.activities.len() >= required);
                        outcome.certificates += 1;
                    }
                    state = evolve(state, event);
                    erased_state = evolve(erased_state, &erased(event));
                }
                // Every accepted command leaves a trace.
                prop_assert_ne!(&state, &before);
                log.extend(events);
            }
        }
    }
    // (c) Replaying the events from nothing rebuilds the state, also through the store's payloads.
    let replayed = log.iter().fold(PortfolioState::default(), evolve);
    prop_assert_eq!(&replayed, &state);
    let from_payloads = log
        .iter()
        .map(|e| {
            let (t, payload) = e.to_payload();
            PortfolioEvent::from_payload(t, payload).unwrap()
        })
        .fold(PortfolioState::default(), |s, e| evolve(s, &e));
    prop_assert_eq!(&from_payloads, &state);
    Ok(outcome)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn random_histories_keep_the_invariants(steps in history_steps()) {
        check_history(&steps)?;
    }
}

/// Guards against the property above passing vacuously: a fixed sample of histories must reach
/// certificates and refusals alike.
#[test]
fn random_histories_reach_certificates() {
    let mut runner = TestRunner::deterministic();
    let strategy = history_steps();
    let mut total = Outcome::default();
    for _ in 0..150 {
        let steps = strategy.new_tree(&mut runner).unwrap().current();
        let outcome = check_history(&steps).unwrap();
        total.certificates += outcome.certificates;
        total.accepted += outcome.accepted;
        total.refused += outcome.refused;
        for (k, v) in outcome.codes {
            *total.codes.entry(k).or_default() += v;
        }
    }
    assert!(total.certificates >= 20, "{total:?}");
    assert!(
        total.codes.len() >= 25,
        "too few kinds of refusal exercised: {total:?}"
    );
    assert!(total.accepted > 500 && total.refused > 500, "{total:?}");
}

/// Days around the switches to and from summer time (last Sundays of March and October).
fn dst_days() -> Vec<NaiveDate> {
    let last_sunday = |year: i32, month: u32| {
        let mut d = NaiveDate::from_ymd_opt(year, month, 31).unwrap();
        while d.weekday() != Weekday::Sun {
            d = d.pred_opt().unwrap();
        }
        d
    };
    (2020..2036)
        .flat_map(|y| [last_sunday(y, 3), last_sunday(y, 10)])
        .flat_map(|d| [d.pred_opt().unwrap(), d, d.succ_opt().unwrap()])
        .collect()
}

fn deadline_day() -> impl Strategy<Value = NaiveDate> {
    let base = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
    prop_oneof![
        (0i64..5800).prop_map(move |d| base + Duration::days(d)),
        select(dst_days()),
    ]
}

/// A portfolio with three reflected activities whose final-reflection deadline is `deadline`, either
/// the regular one or one set by an extension.
fn due_on(deadline: NaiveDate, extended: bool) -> (PortfolioState, ProgramState) {
    let prog = program();
    let opening_day = deadline - Duration::days(60);
    let opened_at = stockholm(
        opening_day.year(),
        opening_day.month(),
        opening_day.day(),
        12,
        0,
        0,
    );
    // With an extension the regular deadline is 8 days earlier and the extension sets `deadline`.
    let completion = deadline + Duration::days(if extended { 20 } else { 28 });
    let mut state = run_at(
        PortfolioState::default(),
        &prog,
        open_command_with(completion),
        opened_at,
    );
    for n in 1..=3u128 {
        let log = PortfolioCommand::LogActivity {
            activity_id: aid(n),
            item: item(n as usize),
            started_on: opening_day - Duration::days(3),
            ended_on: opening_day - Duration::days(1),
            description: text("Volunteered."),
            evidence: None,
        };
        let submit = PortfolioCommand::SubmitReflection {
            activity_id: aid(n),
            content: ReflectionContent::Oral {
                media: Some(media()),
                link: None,
                duration_s: 150,
                duration_measured: false,
            },
        };
        state = run_at(state, &prog, log, opened_at);
        state = run_at(state, &prog, submit, opened_at);
    }
    if extended {
        let grant = PortfolioCommand::GrantExtension {
            until: deadline,
            reason: text("Illness."),
            by: coordinator(),
        };
        state = run_at(state, &prog, grant, opened_at);
    }
    (state, prog)
}

fn at(day: NaiveDate, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    stockholm(day.year(), day.month(), day.day(), h, mi, s)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// (d) The whole deadline day counts in Stockholm, the next day does not, in summer and winter time
    /// and on the days the clocks change.
    #[test]
    fn deadlines_hold_at_the_stockholm_day_boundary(deadline in deadline_day(), extended in any::<bool>()) {
        let (state, prog) = due_on(deadline, extended);
        let submit = PortfolioCommand::SubmitFinalReflection {
            content: FinalContent::Oral { media: Some(media()), link: None, duration_s: 300, duration_measured: false },
        };
        for ok in [at(deadline, 0, 0, 0), at(deadline, 23, 59, 0), at(deadline, 23, 59, 59)] {
            let events = decide(&state, &prog, submit.clone(), ok);
            let Ok(events) = events else { return Err(TestCaseError::fail(format!("refused at {ok}: {events:?}"))) };
            let PortfolioEvent::FinalReflectionSubmitted(e) = &events[0] else { unreachable!() };
            prop_assert_eq!(e.deadline, Some(deadline));
            prop_assert_eq!(e.submitted_on, deadline);
            prop_assert_eq!(e.extended, extended);
        }
        let next = deadline.succ_opt().unwrap();
        for late in [at(next, 0, 0, 0), at(next, 0, 0, 1), at(next, 12, 0, 0)] {
            let err = decide(&state, &prog, submit.clone(), late).unwrap_err();
            let DomainError::FinalReflectionPastDeadline { deadline: stated, extended: was_extended, .. } = err else {
                return Err(TestCaseError::fail(format!("{err:?}")));
            };
            prop_assert_eq!(stated, deadline);
            prop_assert_eq!(was_extended, extended);
        }
    }
}

#[test]
fn dst_switch_days_are_in_the_sample() {
    let days = dst_days();
    assert!(days.contains(&NaiveDate::from_ymd_opt(2026, 3, 29).unwrap()));
    assert!(days.contains(&NaiveDate::from_ymd_opt(2026, 10, 25).unwrap()));
}
