//! Property tests of the final-reflection deadline at the Stockholm day boundary, summer time included.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use proptest::prelude::*;
use proptest::sample::select;

use super::super::fixtures::*;
use super::super::*;
use crate::domain::errors::DomainError;
use crate::domain::program::ProgramState;

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
    state = run_at(state, &prog, confirm_cmd(), opened_at);
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
