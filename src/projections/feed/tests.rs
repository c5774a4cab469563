//! The feed's memory of batches, without a database.

use super::*;
use crate::store::ActorRole;
use chrono::Utc;
use uuid::Uuid;

fn event(transaction_id: i64, position: i64) -> RecordedEvent {
    RecordedEvent {
        checkpoint: Checkpoint {
            transaction_id,
            position,
        },
        stream_id: "s".into(),
        version: 1,
        event_id: Uuid::nil(),
        event_type: "T".into(),
        schema_version: 1,
        stored_schema_version: 1,
        payload: serde_json::Value::Null,
        personal: None,
        data_subject: None,
        actor_id: "a".into(),
        actor_role: ActorRole::System,
        correlation_id: Uuid::nil(),
        causation_id: None,
        command_id: Uuid::nil(),
        recorded_at: Utc::now(),
    }
}

fn batch() -> Remembered {
    Remembered {
        after: Checkpoint {
            transaction_id: 5,
            position: 9,
        },
        events: vec![event(7, 10), event(7, 11), event(8, 12)].into(),
    }
}

fn positions(events: Option<FedEvents>) -> Vec<i64> {
    events.map_or_else(Vec::new, |e| e.iter().map(|e| e.position()).collect())
}

#[test]
fn a_batch_serves_its_start_and_the_rest_after_any_of_its_events() {
    let b = batch();
    assert_eq!(positions(b.after(b.after, 100)), [10, 11, 12]);
    assert_eq!(positions(b.after(b.after, 2)), [10, 11]);
    assert_eq!(positions(b.after(b.events[0].checkpoint, 100)), [11, 12]);
    assert_eq!(positions(b.after(b.events[1].checkpoint, 1)), [12]);
}

#[test]
fn a_batch_serves_nothing_it_cannot_vouch_for() {
    let b = batch();
    // After its last event: the log beyond it was not read.
    assert!(b.after(b.events[2].checkpoint, 100).is_none());
    // A checkpoint that is none of its events nor its start.
    let between = Checkpoint {
        transaction_id: 7,
        position: 10_000,
    };
    assert!(b.after(between, 100).is_none());
    let before = Checkpoint {
        transaction_id: 1,
        position: 1,
    };
    assert!(b.after(before, 100).is_none());
}

/// Eight remembered batches of one event each, the one at index `i` after position `i`.
fn full_state() -> State {
    let mut state = State::default();
    for i in 0..REMEMBERED_BATCHES as i64 {
        state.batches.push_back(Remembered {
            after: Checkpoint {
                transaction_id: 1,
                position: i,
            },
            events: vec![event(1, i + 1)].into(),
        });
    }
    state
}

fn at(position: i64) -> Checkpoint {
    Checkpoint {
        transaction_id: 1,
        position,
    }
}

#[test]
fn a_full_feed_forgets_what_every_follower_passed_and_a_read_ahead_nothing_else() {
    let now = Instant::now();
    let mut state = full_state();
    // Both followers are past the first three batches: the oldest of them goes.
    state.followers.insert(1, (at(3), now));
    state.followers.insert(2, (at(6), now));
    assert_eq!(state.room(now, true), Ok(Some(0)));
    assert_eq!(state.room(now, false), Ok(Some(0)));
    // One follower is about to read the first batch: nothing is behind everyone. A follower's
    // own read may forget a batch only ahead of the slow one (the second); a read ahead waits.
    state.followers.insert(1, (at(0), now));
    assert_eq!(state.room(now, true), Err(()));
    assert_eq!(state.room(now, false), Ok(Some(1)));
    // A follower that stopped asking holds nothing back.
    state.followers.insert(1, (at(0), now - STALE));
    assert_eq!(state.room(now, true), Ok(Some(0)));
}

/// A remembered batch of one event at each of `positions`, after `after`.
fn remembered(after: i64, positions: &[i64]) -> Remembered {
    Remembered {
        after: at(after),
        events: positions.iter().map(|&p| event(1, p)).collect(),
    }
}

#[test]
fn a_follower_behind_the_others_is_served_their_batches_as_one() {
    let mut state = State::default();
    // Three small live batches, one after another, and a fourth that does not follow them.
    state.batches.push_back(remembered(0, &[1, 2]));
    state.batches.push_back(remembered(2, &[3]));
    state.batches.push_back(remembered(3, &[4, 5, 6]));
    state.batches.push_back(remembered(9, &[10]));
    let run = |after: i64, wanted: usize| {
        let joined = FedEvents::join(state.find_run(at(after), wanted));
        positions(joined)
    };
    // From the start of the first: all three, in order, and not the one that does not follow.
    assert_eq!(run(0, 100), [1, 2, 3, 4, 5, 6]);
    // From inside the first, and cut at what is wanted.
    assert_eq!(run(1, 100), [2, 3, 4, 5, 6]);
    assert_eq!(run(1, 3), [2, 3, 4]);
    // At the end of the run: nothing remembered (the log is asked).
    assert!(state.find_run(at(6), 100).is_empty());
    // One part is served as it was read, without a copy.
    let one = state.find_run(at(9), 100);
    assert_eq!(one.len(), 1);
    let served = FedEvents::join(one).expect("one part");
    assert_eq!(served.events.len(), 1);
    assert_eq!(positions(Some(served)), [10]);
}
