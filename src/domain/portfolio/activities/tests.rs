//! Tests for logging and withdrawing activities and for submitting and reviewing their reflections.

use super::super::fixtures::*;
use super::super::{PortfolioCommand, PortfolioState, ReflectionContent, Review, decide};
use super::*;
use crate::domain::program::{ProgramCommand, ProgramState};
use crate::domain::rules::{AppliedBand, ProgramRules, WordBand};

fn log_dates(
    n: u128,
    item_index: usize,
    started_on: NaiveDate,
    ended_on: NaiveDate,
) -> PortfolioCommand {
    PortfolioCommand::LogActivity {
        activity_id: aid(n),
        item: item(item_index),
        started_on,
        ended_on,
        description: text("Language café every Thursday."),
        evidence: Some(media()),
    }
}

fn only_event(
    state: &PortfolioState,
    prog: &ProgramState,
    cmd: PortfolioCommand,
) -> PortfolioEvent {
    let mut events = decide(state, prog, cmd, now()).unwrap();
    assert_eq!(events.len(), 1);
    events.remove(0)
}

#[test]
fn logging_records_the_item_name_as_it_is_now_and_the_evidence_as_personal() {
    let prog = program();
    let event = only_event(
        &opened(&prog),
        &prog,
        log_dates(1, 12, date(2026, 1, 1), date(2026, 2, 1)),
    );
    let PortfolioEvent::ActivityLogged(e) = event else {
        panic!()
    };
    assert_eq!(e.item, item(12));
    assert_eq!(
        e.item_name,
        "Participation in language café, participant and/or coordinator"
    );
    assert!(e.has_evidence);
    let personal = e.personal.unwrap();
    assert_eq!(personal.evidence, Some(media()));
    assert_eq!(
        personal.description.as_str(),
        "Language café every Thursday."
    );
}

#[test]
fn a_later_rename_or_retirement_does_not_touch_logged_activities() {
    let prog = program();
    let state = run(opened(&prog), &prog, log_cmd(1, 6));
    let prog = program_with(
        prog,
        ProgramCommand::RenameCatalogItem {
            item: item(6),
            name: text("TEDx Stockholm"),
        },
    );
    let prog = program_with(prog, ProgramCommand::RetireCatalogItem { item: item(6) });
    assert_eq!(
        portfolio(&state).activity(aid(1)).unwrap().logged.item_name,
        "TEDx"
    );
    // Work on an activity whose item has since been retired goes on.
    let state = run(state, &prog, submit_cmd(1));
    let state = run(state, &prog, approve_cmd(1));
    assert_eq!(
        portfolio(&state).activity(aid(1)).unwrap().status(),
        ReflectionStatus::Approved
    );
}

#[test]
fn logging_refuses_unknown_and_retired_items() {
    let prog = program();
    let unknown = PortfolioCommand::LogActivity {
        activity_id: aid(1),
        item: CatalogItemId::parse("space-travel").unwrap(),
        started_on: date(2026, 1, 1),
        ended_on: date(2026, 1, 2),
        description: text("x"),
        evidence: None,
    };
    assert_eq!(
        refuse(&opened(&prog), &prog, unknown).code(),
        "catalog_item_unknown"
    );
    let retired = program_with(prog, ProgramCommand::RetireCatalogItem { item: item(0) });
    let err = refuse(&opened(&retired), &retired, log_cmd(1, 0));
    assert_eq!(err.code(), "catalog_item_retired");
    assert_eq!(err.field(), Some("item"));
}

#[test]
fn logging_refuses_a_reused_activity_id() {
    let prog = program();
    let state = run(opened(&prog), &prog, log_cmd(1, 0));
    assert_eq!(
        refuse(&state, &prog, log_cmd(1, 1)),
        DomainError::ActivityIdTaken
    );
}

#[test]
fn activity_dates_must_be_in_order_and_not_in_the_future() {
    let prog = program();
    let state = opened(&prog);
    let reversed = refuse(
        &state,
        &prog,
        log_dates(1, 0, date(2026, 2, 2), date(2026, 2, 1)),
    );
    assert_eq!(
        reversed,
        DomainError::ActivityDatesReversed {
            started_on: date(2026, 2, 2),
            ended_on: date(2026, 2, 1)
        }
    );
    let future = refuse(
        &state,
        &prog,
        log_dates(1, 0, date(2026, 3, 1), date(2026, 3, 3)),
    );
    assert_eq!(
        future,
        DomainError::ActivityInFuture {
            ended_on: date(2026, 3, 3),
            today: today()
        }
    );
    // One-day activities ending today are fine.
    assert!(decide(&state, &prog, log_dates(1, 0, today(), today()), now()).is_ok());
}

#[test]
fn the_same_item_counts_once_unless_the_program_allows_repeats() {
    let prog = program();
    let state = run(opened(&prog), &prog, log_cmd(1, 3));
    let err = refuse(&state, &prog, log_cmd(2, 3));
    assert_eq!(err.code(), "repeated_catalog_item");
    assert!(
        err.to_string()
            .contains("Welcoming incoming exchange students")
    );

    let repeats = program_with(
        prog.clone(),
        ProgramCommand::ChangeRules {
            rules: ProgramRules {
                allow_repeat_items: true,
                ..ProgramRules::default()
            },
        },
    );
    assert!(decide(&state, &repeats, log_cmd(2, 3), now()).is_ok());

    // After a withdrawal the item is free again.
    let state = run(
        state,
        &prog,
        PortfolioCommand::WithdrawActivity {
            activity_id: aid(1),
        },
    );
    assert!(decide(&state, &prog, log_cmd(2, 3), now()).is_ok());
}

#[test]
fn descriptions_have_a_length_limit() {
    let prog = program();
    let long = PortfolioCommand::LogActivity {
        activity_id: aid(1),
        item: item(0),
        started_on: date(2026, 1, 1),
        ended_on: date(2026, 1, 2),
        description: NonEmptyText::parse(
            &"x".repeat(MAX_DESCRIPTION_LEN + 1),
            "description",
            usize::MAX,
        )
        .unwrap(),
        evidence: None,
    };
    let err = refuse(&opened(&prog), &prog, long);
    assert_eq!(
        (err.code(), err.field()),
        ("text_too_long", Some("description"))
    );
}

#[test]
fn withdrawing_is_allowed_until_the_reflection_is_approved() {
    let prog = program();
    let withdraw = |n| PortfolioCommand::WithdrawActivity {
        activity_id: aid(n),
    };
    let state = with_activities(&prog, 2, false);
    let state = run(state, &prog, approve_cmd(2));
    assert_eq!(
        refuse(&state, &prog, withdraw(2)),
        DomainError::ActivityReflectionApproved
    );
    assert_eq!(
        refuse(&state, &prog, withdraw(7)),
        DomainError::ActivityUnknown
    );
    let state = run(state, &prog, withdraw(1));
    let activity = portfolio(&state).activity(aid(1)).unwrap();
    assert!(activity.withdrawn);
    assert_eq!(
        activity.attempts.len(),
        1,
        "the attempt stays in the history"
    );
    assert_eq!(
        refuse(&state, &prog, withdraw(1)),
        DomainError::ActivityWithdrawn
    );
    // A returned reflection does not protect the activity either.
    let state = run(opened(&prog), &prog, log_cmd(3, 4));
    let state = run(state, &prog, submit_cmd(3));
    let state = run(
        state,
        &prog,
        PortfolioCommand::ReturnReflection {
            activity_id: aid(3),
            by: coordinator(),
            feedback: text("More depth."),
        },
    );
    assert!(decide(&state, &prog, withdraw(3), now()).is_ok());
}

#[test]
fn a_reflection_records_the_measures_and_the_rules_in_force() {
    let prog = program();
    let state = run(opened(&prog), &prog, log_cmd(1, 0));
    let PortfolioEvent::ReflectionSubmitted(e) = only_event(&state, &prog, submit_cmd(1)) else {
        panic!()
    };
    assert_eq!(
        (e.attempt, e.word_count, e.rules_version),
        (1, Some(1000), 1)
    );
    assert_eq!(
        e.band,
        AppliedBand::Words(WordBand {
            min: 900,
            max: 1100
        })
    );

    let stricter = ProgramRules {
        written: WordBand {
            min: 1050,
            max: 1200,
        },
        ..ProgramRules::default()
    };
    let prog = program_with(
        prog,
        ProgramCommand::ChangeRules {
            rules: stricter.clone(),
        },
    );
    let err = refuse(&state, &prog, submit_cmd(1));
    assert_eq!(
        err.to_string(),
        "the reflection has 1000 words; this program accepts 1050 to 1200"
    );
    let cmd = PortfolioCommand::SubmitReflection {
        activity_id: aid(1),
        content: written(1100),
    };
    let PortfolioEvent::ReflectionSubmitted(e) = only_event(&state, &prog, cmd) else {
        panic!()
    };
    assert_eq!(e.rules_version, 2);
    assert_eq!(e.band, AppliedBand::Words(stricter.written));
}

#[test]
fn every_format_can_be_submitted() {
    let prog = program();
    let state = run(opened(&prog), &prog, log_cmd(1, 0));
    let oral = ReflectionContent::Oral {
        media: Some(media()),
        link: None,
        duration_s: 170,
        duration_measured: true,
    };
    let insta = ReflectionContent::Instagram {
        links: post_links(3),
        text: english_text(500),
    };
    for content in [written(1000), oral, insta] {
        let cmd = PortfolioCommand::SubmitReflection {
            activity_id: aid(1),
            content,
        };
        assert!(decide(&state, &prog, cmd, now()).is_ok());
    }
}

#[test]
fn a_reflection_is_submitted_once_then_only_resubmitted_after_a_return() {
    let prog = program();
    let state = with_activities(&prog, 1, false);
    assert_eq!(
        refuse(&state, &prog, submit_cmd(1)),
        DomainError::ReflectionAlreadySubmitted
    );
    let resubmit = PortfolioCommand::ResubmitReflection {
        activity_id: aid(1),
        content: written(1050),
    };
    assert_eq!(
        refuse(&state, &prog, resubmit.clone()),
        DomainError::ReflectionNotReturned
    );

    let returned = PortfolioCommand::ReturnReflection {
        activity_id: aid(1),
        by: coordinator(),
        feedback: text("Say more about what you will take with you."),
    };
    let state = run(state, &prog, returned);
    assert_eq!(
        refuse(&state, &prog, submit_cmd(1)),
        DomainError::ReflectionAlreadySubmitted
    );
    let state = run(state, &prog, resubmit.clone());
    let state = run(state, &prog, approve_cmd(1));
    assert_eq!(
        refuse(&state, &prog, resubmit),
        DomainError::ReflectionNotReturned
    );

    let attempts = &portfolio(&state).activity(aid(1)).unwrap().attempts;
    assert_eq!(attempts.len(), 2);
    assert_eq!(
        (attempts[0].submitted.attempt, attempts[1].submitted.attempt),
        (1, 2)
    );
    assert_eq!(attempts[1].submitted.word_count, Some(1050));
    let Some(Review::Returned { by, personal }) = &attempts[0].review else {
        panic!()
    };
    assert_eq!(by, &coordinator());
    assert_eq!(
        personal.as_ref().unwrap().feedback.as_str(),
        "Say more about what you will take with you."
    );
    assert_eq!(
        attempts[1].review,
        Some(Review::Approved { by: coordinator() })
    );
}

#[test]
fn reflections_on_unknown_or_withdrawn_activities_are_refused() {
    let prog = program();
    assert_eq!(
        refuse(&opened(&prog), &prog, submit_cmd(1)),
        DomainError::ActivityUnknown
    );
    let state = run(opened(&prog), &prog, log_cmd(1, 0));
    let state = run(
        state,
        &prog,
        PortfolioCommand::WithdrawActivity {
            activity_id: aid(1),
        },
    );
    assert_eq!(
        refuse(&state, &prog, submit_cmd(1)),
        DomainError::ActivityWithdrawn
    );
}

#[test]
fn review_needs_a_reflection_waiting_for_it() {
    let prog = program();
    let state = run(opened(&prog), &prog, log_cmd(1, 0));
    assert_eq!(
        refuse(&state, &prog, approve_cmd(1)),
        DomainError::ReflectionNotAwaitingReview
    );
    let state = run(state, &prog, submit_cmd(1));
    let state = run(state, &prog, approve_cmd(1));
    assert_eq!(
        refuse(&state, &prog, approve_cmd(1)),
        DomainError::ReflectionNotAwaitingReview
    );
    let ret = PortfolioCommand::ReturnReflection {
        activity_id: aid(1),
        by: coordinator(),
        feedback: text("x"),
    };
    assert_eq!(
        refuse(&state, &prog, ret),
        DomainError::ReflectionNotAwaitingReview
    );
}

#[test]
fn review_events_name_the_attempt_and_the_reviewer() {
    let prog = program();
    let state = with_activities(&prog, 1, false);
    assert_eq!(
        only_event(&state, &prog, approve_cmd(1)),
        ReflectionApproved {
            activity_id: aid(1),
            attempt: 1,
            by: coordinator()
        }
        .into()
    );
}

#[test]
fn a_portfolio_weighs_what_its_student_wrote() {
    let prog = program();
    let logged = run(opened(&prog), &prog, log_cmd(1, 0));
    let submitted = run(logged.clone(), &prog, submit_cmd(1));
    let text = submitted.opened().unwrap().activities[0].attempts[0]
        .submitted
        .personal
        .as_ref()
        .and_then(|p| p.text.as_ref())
        .map_or(0, String::len);
    assert!(text > 1_000, "a 1,000-word reflection, {text} bytes");
    assert!(submitted.approx_bytes() >= logged.approx_bytes() + text);
    assert!(PortfolioState::NotOpened.approx_bytes() < logged.approx_bytes());
}
