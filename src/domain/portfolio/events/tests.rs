use super::super::evolve;
use super::super::fixtures::{FEEDBACK, REASON, history};
use super::super::state::PortfolioState;
use super::*;
use crate::domain::event_payload::{PERSONAL_FIELD, PayloadError};
use std::collections::BTreeSet;

#[test]
fn the_history_fixture_covers_every_event_type() {
    let (events, _) = history();
    let seen: BTreeSet<_> = events.iter().map(PortfolioEvent::event_type).collect();
    let all: BTreeSet<_> = PortfolioEvent::EVENT_TYPES.iter().copied().collect();
    assert_eq!(seen, all);
}

#[test]
fn payloads_round_trip_and_carry_the_stable_type_name() {
    for event in history().0 {
        let (event_type, payload) = event.to_payload();
        assert_eq!(event_type, event.event_type());
        assert_eq!(event.schema_version(), 1);
        assert!(
            payload.get("type").is_none(),
            "the type lives in its own column"
        );
        let back = PortfolioEvent::from_payload(event_type, &payload).unwrap();
        assert_eq!(back, event);
        // The serde form is internally tagged with the same name.
        let tagged = serde_json::to_value(&event).unwrap();
        assert_eq!(tagged["type"], event_type);
        assert_eq!(
            serde_json::from_value::<PortfolioEvent>(tagged).unwrap(),
            event
        );
    }
}

#[test]
fn personal_data_is_one_json_object_and_nothing_personal_is_outside_it() {
    let secrets = [
        "198112189876",
        // Ladok's correction of the typed number.
        "199001010017",
        "anna.berg@stud.ki.se",
        "Berg",
        "Exchange semester",
        "Post0_x",
        "hospital",
        FEEDBACK,
        REASON,
        &"ab".repeat(32),
    ];
    let mut with_personal = 0;
    for event in history().0 {
        let (event_type, mut payload) = event.to_payload();
        if let Some(personal) = payload.as_object_mut().unwrap().remove(PERSONAL_FIELD) {
            assert!(
                personal.is_object(),
                "{event_type}: personal must be an object"
            );
            with_personal += 1;
        }
        let rest = payload.to_string();
        for secret in secrets {
            assert!(
                !rest.contains(secret),
                "{event_type} leaks {secret:?} outside personal: {rest}"
            );
        }
    }
    assert!(with_personal >= 10);
}

#[test]
fn erased_payloads_still_load_and_replay() {
    let (events, full) = history();
    let mut erased_state = PortfolioState::default();
    for event in &events {
        let (event_type, payload) = event.to_payload();
        let mut removed = payload.clone();
        removed.as_object_mut().unwrap().remove(PERSONAL_FIELD);
        let mut nulled = payload;
        if nulled.get(PERSONAL_FIELD).is_some() {
            nulled[PERSONAL_FIELD] = serde_json::Value::Null;
        }
        let a = PortfolioEvent::from_payload(event_type, &removed).unwrap();
        let b = PortfolioEvent::from_payload(event_type, &nulled).unwrap();
        assert_eq!(a, b);
        erased_state = evolve(erased_state, &a);
    }
    let (erased, full) = (erased_state.opened().unwrap(), full.opened().unwrap());
    assert_eq!(erased.student, None);
    assert!(
        erased
            .activities
            .iter()
            .all(|a| a.logged.personal.is_none())
    );
    // Every non-personal fact survives.
    assert_eq!(erased.phase, full.phase);
    assert_eq!(erased.activities.len(), full.activities.len());
    assert_eq!(erased.final_attempts.len(), full.final_attempts.len());
    let words = |p: &super::super::state::Portfolio| -> Vec<_> {
        p.activities
            .iter()
            .flat_map(|a| a.attempts.iter().map(|t| t.submitted.word_count))
            .collect()
    };
    assert_eq!(words(erased), words(full));
    assert_eq!(
        erased.certificate.as_ref().map(|c| c.activities.clone()),
        full.certificate.as_ref().map(|c| c.activities.clone())
    );
}

#[test]
fn unknown_types_and_broken_payloads_are_errors() {
    assert!(matches!(
        PortfolioEvent::from_payload("PortfolioExploded", &serde_json::json!({})),
        Err(PayloadError::UnknownEventType(t)) if t == "PortfolioExploded"
    ));
    assert!(matches!(
        PortfolioEvent::from_payload("ActivityWithdrawn", &serde_json::json!({"activity_id": 5})),
        Err(PayloadError::Invalid {
            event_type: "ActivityWithdrawn",
            ..
        })
    ));
}
