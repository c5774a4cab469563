//! Folding portfolio events into state.

use super::events::PortfolioEvent;
use super::state::*;

/// Applies one event. An event that cannot apply (which `decide` never produces, e.g. an activity event
/// for an unknown activity) leaves the state unchanged instead of panicking, so that one bad stored
/// event cannot take a projection down.
pub fn evolve(state: PortfolioState, event: &PortfolioEvent) -> PortfolioState {
    let mut p = match (state, event) {
        (PortfolioState::NotOpened, PortfolioEvent::PortfolioOpened(e)) => {
            return PortfolioState::Opened(Box::new(Portfolio {
                id: e.portfolio_id,
                program_id: e.program_id,
                student_uid: e.student_uid,
                student: e.personal.clone(),
                identity_check: e.identity_check,
                expected_completion: e.expected_completion,
                completion_confirmed: false,
                completion_proposal: None,
                completion_proposals: 0,
                activities: Vec::new(),
                final_attempts: Vec::new(),
                extensions: Vec::new(),
                phase: Phase::Collecting,
                applications: 0,
                rejections: Vec::new(),
                certificate: None,
                revocation: None,
            }));
        }
        (PortfolioState::Opened(p), _) => p,
        (state, _) => return state,
    };
    match event {
        PortfolioEvent::PortfolioOpened(_) => {}
        PortfolioEvent::IdentityCheckedInLadok(e) => {
            p.identity_check = Some(e.outcome);
            if let (Some(student), Some(ladok)) = (p.student.as_mut(), e.personal.as_ref()) {
                student.identity_number = ladok.identity_number.clone();
            }
        }
        // Logs from before the rule: the student moved the date, so it is theirs again.
        PortfolioEvent::ExpectedCompletionChanged(e) => {
            p.expected_completion = e.expected_completion;
            p.completion_confirmed = false;
        }
        PortfolioEvent::ExpectedCompletionSet(e) => {
            p.expected_completion = e.expected_completion;
            p.completion_confirmed = true;
        }
        PortfolioEvent::ExpectedCompletionConfirmed(_) => {
            p.completion_confirmed = true;
        }
        PortfolioEvent::ExpectedCompletionProposed(e) => {
            p.completion_proposals = e.proposal;
            p.completion_proposal = Some(e.clone());
        }
        PortfolioEvent::ExpectedCompletionProposalAccepted(e) => {
            p.expected_completion = e.expected_completion;
            p.completion_confirmed = true;
            p.completion_proposal = None;
        }
        PortfolioEvent::ExpectedCompletionProposalDeclined(_) => {
            p.completion_proposal = None;
        }
        PortfolioEvent::ActivityLogged(e) => p.activities.push(Activity {
            logged: e.clone(),
            withdrawn: false,
            attempts: Vec::new(),
        }),
        PortfolioEvent::ActivityWithdrawn(e) => {
            if let Some(a) = p.activity_mut(e.activity_id) {
                a.withdrawn = true;
            }
        }
        PortfolioEvent::ReflectionSubmitted(e) => {
            if let Some(a) = p.activity_mut(e.activity_id) {
                a.attempts.push(ReflectionAttempt {
                    submitted: e.clone(),
                    review: None,
                });
            }
        }
        PortfolioEvent::ReflectionApproved(e) => {
            let review = Review::Approved { by: e.by.clone() };
            if let Some(attempt) = p
                .activity_mut(e.activity_id)
                .and_then(|a| a.attempts.last_mut())
            {
                attempt.review = Some(review);
            }
        }
        PortfolioEvent::ReflectionReturned(e) => {
            let review = Review::Returned {
                by: e.by.clone(),
                personal: e.personal.clone(),
            };
            if let Some(attempt) = p
                .activity_mut(e.activity_id)
                .and_then(|a| a.attempts.last_mut())
            {
                attempt.review = Some(review);
            }
        }
        PortfolioEvent::FinalReflectionSubmitted(e) => p.final_attempts.push(FinalAttempt {
            submitted: e.clone(),
            review: None,
        }),
        PortfolioEvent::FinalReflectionApproved(e) => {
            if let Some(attempt) = p.final_attempts.last_mut() {
                attempt.review = Some(Review::Approved { by: e.by.clone() });
            }
        }
        PortfolioEvent::FinalReflectionReturned(e) => {
            if let Some(attempt) = p.final_attempts.last_mut() {
                attempt.review = Some(Review::Returned {
                    by: e.by.clone(),
                    personal: e.personal.clone(),
                });
            }
        }
        PortfolioEvent::ExtensionGranted(e) => p.extensions.push(e.clone()),
        PortfolioEvent::ApplicationSubmitted(e) => {
            p.applications = e.application;
            p.phase = Phase::Applied {
                application: e.application,
            };
        }
        PortfolioEvent::ApplicationRejected(e) => {
            p.rejections.push(e.clone());
            p.phase = Phase::Collecting;
        }
        PortfolioEvent::CertificateApproved(e) => {
            p.certificate = Some(e.clone());
            p.phase = Phase::Certified;
        }
        PortfolioEvent::CertificateRevoked(e) => {
            p.revocation = Some(e.clone());
            p.phase = Phase::Revoked;
        }
        // Changes no fact: the erasure itself is in the keys (earlier personal parts already read
        // as `None`), and the portfolio goes on in whatever phase it was.
        PortfolioEvent::PersonalDataErased(_) => {}
    }
    PortfolioState::Opened(p)
}

#[cfg(test)]
mod tests {
    use super::super::events::*;
    use super::super::fixtures::{aid, coordinator, history};
    use super::*;

    #[test]
    fn replaying_the_history_rebuilds_the_state() {
        let (events, state) = history();
        let replayed = events.iter().fold(PortfolioState::default(), evolve);
        assert_eq!(replayed, state);
        let p = replayed.opened().unwrap();
        assert_eq!(p.phase, Phase::Revoked);
        assert_eq!(p.applications, 2);
        assert_eq!(p.extensions.len(), 1);
        assert_eq!(p.activity(aid(1)).unwrap().attempts.len(), 2);
        assert!(p.activity(aid(4)).unwrap().withdrawn);
    }

    #[test]
    fn events_that_cannot_apply_leave_the_state_alone() {
        let stray: PortfolioEvent = ReflectionApproved {
            activity_id: aid(9),
            attempt: 1,
            by: coordinator(),
        }
        .into();
        assert_eq!(
            evolve(PortfolioState::default(), &stray),
            PortfolioState::default()
        );
        let (_, state) = history();
        assert_eq!(evolve(state.clone(), &stray), state);
        let withdrawn: PortfolioEvent = ActivityWithdrawn {
            activity_id: aid(9),
        }
        .into();
        assert_eq!(evolve(state.clone(), &withdrawn), state);
    }

    #[test]
    fn a_second_opening_event_does_not_reset_the_portfolio() {
        let (events, state) = history();
        assert_eq!(evolve(state.clone(), &events[0]), state);
    }
}
