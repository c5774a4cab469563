//! Property tests over random histories.
//!
//! A history is a random sequence of student, coordinator and program actions with valid and invalid
//! inputs (unknown activities, strangers reviewing, texts just outside their band, dates in the future,
//! rules changing mid-way, time passing). Folding it through decide/evolve must keep the invariants
//! below whatever the order.

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use super::fixtures::*;
use super::*;
use crate::domain::calendar::stockholm_date;
use crate::domain::errors::DomainError;
use crate::domain::event_payload::PERSONAL_FIELD;
use crate::domain::ids::CatalogItemId;
use crate::domain::program;
use crate::domain::rules::ProgramRules;

mod deadlines;
mod history;

use history::{Action, Ids, Step, action, history_steps};

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
    PortfolioEvent::from_payload(event_type, &payload).unwrap()
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
            PortfolioEvent::from_payload(t, &payload).unwrap()
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
