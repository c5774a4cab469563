use super::*;
use crate::domain::portfolio::{
    ActivityLogged, ApplicationRejected, ApplicationSubmitted, ExpectedCompletionConfirmed,
    FinalReflectionApproved, FinalReflectionSubmitted, PortfolioEvent, PortfolioOpened,
    ReflectionApproved, ReflectionReturned, ReflectionSubmitted, evolve,
};
use crate::domain::rules::WordBand;
use uuid::Uuid;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn aid(n: u128) -> ActivityId {
    ActivityId::new(Uuid::from_u128(n))
}

fn staff() -> StaffId {
    StaffId::parse("coord-1").unwrap()
}

fn opened() -> PortfolioEvent {
    PortfolioOpened {
        portfolio_id: PortfolioId::new(Uuid::from_u128(1)),
        program_id: ProgramId::new(Uuid::from_u128(2)),
        student_uid: StudentUid::new(Uuid::from_u128(3)),
        expected_completion: date(2026, 6, 30),
        identity_check: None,
        personal: None,
    }
    .into()
}

fn logged(n: u128, item: &str) -> PortfolioEvent {
    ActivityLogged {
        activity_id: aid(n),
        item: CatalogItemId::parse(item).unwrap(),
        item_name: format!("Item {item}"),
        started_on: date(2025, 9, 1),
        ended_on: date(2025, 9, 2),
        has_evidence: false,
        personal: None,
    }
    .into()
}

fn submitted(n: u128, attempt: u32) -> PortfolioEvent {
    ReflectionSubmitted {
        activity_id: aid(n),
        attempt,
        format: ReflectionFormat::Written,
        word_count: Some(1000),
        duration_s: None,
        duration_measured: None,
        recording: None,
        link_count: None,
        rules_version: 1,
        band: AppliedBand::Words(WordBand {
            min: 900,
            max: 1100,
        }),
        personal: None,
    }
    .into()
}

fn approved(n: u128, attempt: u32) -> PortfolioEvent {
    ReflectionApproved {
        activity_id: aid(n),
        attempt,
        by: staff(),
    }
    .into()
}

fn final_submitted(attempt: u32) -> PortfolioEvent {
    FinalReflectionSubmitted {
        attempt,
        format: FinalFormat::Written,
        word_count: Some(3000),
        duration_s: None,
        duration_measured: None,
        recording: None,
        language: Some("eng".into()),
        language_confidence: Some(0.987_654_321),
        rules_version: 1,
        band: AppliedBand::Words(WordBand {
            min: 2700,
            max: 3300,
        }),
        submitted_on: date(2026, 5, 1),
        deadline: Some(date(2026, 6, 2)),
        extended: false,
        personal: None,
    }
    .into()
}

fn view(events: &[PortfolioEvent]) -> PortfolioView {
    let state = events.iter().fold(PortfolioState::default(), evolve);
    PortfolioView::from_state(&state, &ProgramRules::default()).unwrap()
}

fn codes(v: &PortfolioView) -> Vec<NextStepCode> {
    v.next_steps.iter().map(|s| s.code).collect()
}

#[test]
fn a_new_portfolio_asks_for_three_different_activities() {
    let v = view(&[opened()]);
    assert_eq!(codes(&v), [NextStepCode::LogActivity]);
    assert_eq!(
        v.next_steps[0].sentence,
        "Log 3 more activities from your program's catalog, each a different item."
    );
    assert_eq!(v.deadline.date, date(2026, 6, 2));
    assert!(v.deadline.binding);
    assert_eq!(v.days_left(date(2026, 5, 31)), Some(2));
    assert_eq!(v.days_left(date(2026, 6, 3)), Some(-1));
    assert_eq!(
        PortfolioView::from_state(&PortfolioState::default(), &ProgramRules::default()),
        None
    );
}

#[test]
fn steps_follow_the_path_to_the_application() {
    let mut events = vec![opened(), logged(1, "tedx")];
    let v = view(&events);
    assert_eq!(
        codes(&v),
        [NextStepCode::SubmitReflection, NextStepCode::LogActivity]
    );
    assert_eq!(v.next_steps[0].activity_id, Some(aid(1)));
    assert_eq!(
        v.next_steps[0].sentence,
        "Submit a reflection on \u{201c}Item tedx\u{201d}."
    );

    events.extend([logged(2, "language-cafe"), logged(3, "student-ambassador")]);
    events.extend([submitted(1, 1), submitted(2, 1), submitted(3, 1)]);
    // The date given at enrolment is not confirmed yet: the final reflection waits for it.
    let v = view(&events);
    assert!(!v.expected_completion_confirmed);
    assert_eq!(
        codes(&v),
        [
            NextStepCode::AwaitCompletionConfirmation,
            NextStepCode::AwaitReview
        ]
    );
    assert!(v.next_steps[0].sentence.contains("2026-06-30"));
    events.push(
        ExpectedCompletionConfirmed {
            expected_completion: date(2026, 6, 30),
            by: staff(),
        }
        .into(),
    );
    let v = view(&events);
    assert!(v.expected_completion_confirmed);
    assert_eq!(
        codes(&v),
        [
            NextStepCode::SubmitFinalReflection,
            NextStepCode::AwaitReview
        ]
    );
    assert_eq!(v.next_steps[0].due, Some(date(2026, 6, 2)));
    assert_eq!(
        v.next_steps[1].sentence,
        "3 reflections wait for your coordinator's review."
    );

    events.push(
        ReflectionReturned {
            activity_id: aid(2),
            attempt: 1,
            by: staff(),
            personal: None,
        }
        .into(),
    );
    let v = view(&events);
    assert_eq!(
        codes(&v),
        [
            NextStepCode::ReviseReflection,
            NextStepCode::SubmitFinalReflection,
            NextStepCode::AwaitReview
        ]
    );
    events.extend([
        submitted(2, 2),
        approved(1, 1),
        approved(2, 2),
        approved(3, 1),
    ]);
    events.push(final_submitted(1));
    let v = view(&events);
    assert_eq!(codes(&v), [NextStepCode::AwaitReview]);
    assert!(!v.deadline.binding);
    assert_eq!(v.days_left(date(2026, 5, 1)), None);
    assert_eq!(v.activities[1].attempts.len(), 2, "every attempt is kept");
    assert_eq!(
        v.final_reflection.attempts[0].language_confidence_pct,
        Some(99)
    );

    events.push(
        FinalReflectionApproved {
            attempt: 1,
            by: staff(),
        }
        .into(),
    );
    assert_eq!(codes(&view(&events)), [NextStepCode::Apply]);
    events.push(
        ApplicationSubmitted {
            application: 1,
            activity_ids: vec![aid(1), aid(2), aid(3)],
        }
        .into(),
    );
    let v = view(&events);
    assert_eq!(codes(&v), [NextStepCode::AwaitDecision]);
    assert_eq!(v.phase, PhaseName::Applied);
    assert_eq!(v.application.pending, Some(1));
    events.push(
        ApplicationRejected {
            application: 1,
            by: staff(),
            personal: None,
        }
        .into(),
    );
    let v = view(&events);
    assert_eq!(codes(&v), [NextStepCode::Apply]);
    assert!(v.next_steps[0].sentence.contains("again"));
}

#[test]
fn the_view_round_trips_through_json() {
    let v = view(&[
        opened(),
        logged(1, "tedx"),
        submitted(1, 1),
        final_submitted(1),
    ]);
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(serde_json::from_value::<PortfolioView>(json).unwrap(), v);
}
