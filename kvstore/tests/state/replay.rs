//! Determinism and snapshots: replicas fed the same entries agree on every
//! reply and on their whole state (versions and sessions included), and a
//! snapshot restored through postcard continues exactly like the original.

use std::collections::BTreeMap;

use kvstore::state::{Command, Limits, Reply, Request, SessionId, Snapshot, StateMachine};
use proptest::prelude::*;

use crate::model::command;

/// How a generated write picks its sequence number.
#[derive(Clone, Copy, Debug)]
enum Sequence {
    Next,
    Retry,
    Jump,
    Stale,
}

/// One generated log entry.
#[derive(Clone, Debug)]
enum Entry {
    Register,
    Write {
        slot: Option<usize>,
        sequence: Sequence,
        command: Command,
    },
    /// A leader's empty entry or a membership change.
    Empty,
    /// A payload that may not decode.
    Garbage(Vec<u8>),
}

fn entry() -> impl Strategy<Value = Entry> {
    let sequence =
        prop::sample::select(vec![Sequence::Next, Sequence::Next, Sequence::Retry, Sequence::Jump, Sequence::Stale]);
    prop_oneof![
        1 => Just(Entry::Register),
        8 => (prop::option::of(0..4usize), sequence, command())
            .prop_map(|(slot, sequence, command)| Entry::Write { slot, sequence, command }),
        1 => Just(Entry::Empty),
        1 => prop::collection::vec(any::<u8>(), 0..12).prop_map(Entry::Garbage),
    ]
}

/// Turns generated entries into log payloads (None for an empty entry) at
/// increasing indexes with gaps, tracking sessions the way a client would.
fn build_log(entries: Vec<Entry>, gaps: Vec<u64>) -> Vec<(u64, Option<Vec<u8>>)> {
    let mut sessions: Vec<SessionId> = Vec::new();
    let mut sequences: BTreeMap<SessionId, u64> = BTreeMap::new();
    let mut index = 0;
    let mut log = Vec::new();
    for (entry, gap) in entries.into_iter().zip(gaps.into_iter().chain(std::iter::repeat(1))) {
        index += gap;
        let payload = match entry {
            Entry::Register => {
                sessions.push(SessionId(index));
                Some(request(None, 0, Command::RegisterSession).encode())
            }
            Entry::Write { slot, sequence, command } => {
                let session = slot.map(|slot| match sessions.len() {
                    // Never registered: the machine must call it expired.
                    0 => SessionId(u64::MAX),
                    count => sessions[slot % count],
                });
                let number = session.map_or(0, |session| {
                    let last = sequences.entry(session).or_insert(0);
                    *last = match sequence {
                        Sequence::Next => *last + 1,
                        Sequence::Retry => *last,
                        Sequence::Jump => *last + 3,
                        Sequence::Stale => last.saturating_sub(1),
                    };
                    *last
                });
                Some(request(session, number, command).encode())
            }
            Entry::Empty => None,
            Entry::Garbage(bytes) => Some(bytes),
        };
        log.push((index, payload));
    }
    log
}

fn request(session: Option<SessionId>, sequence: u64, command: Command) -> Request {
    Request { session, sequence, command }
}

fn feed(machine: &mut StateMachine, index: u64, payload: &Option<Vec<u8>>) -> Option<Reply> {
    match payload {
        Some(payload) => Some(machine.apply_encoded(index, payload)),
        None => {
            machine.apply_empty(index);
            None
        }
    }
}

fn restored(machine: &StateMachine) -> StateMachine {
    let snapshot = Snapshot::decode(&machine.snapshot().encode()).expect("a snapshot decodes");
    StateMachine::restore(snapshot).expect("a snapshot of a real machine restores")
}

/// Small bounds, so that eviction and the size limit are exercised.
fn small_limits() -> Limits {
    Limits { value_size_bytes_max: 12, sessions_max: 3 }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Replica A applies decoded requests, replica B raw payloads; replica C
    /// is restored from A's encoded snapshot at `cut` and applies the rest.
    /// All three answer alike and end equal.
    #[test]
    fn replicas_and_restored_snapshots_agree(
        entries in prop::collection::vec(entry(), 1..80),
        gaps in prop::collection::vec(1..4u64, 0..80),
        cut in any::<prop::sample::Index>(),
    ) {
        let log = build_log(entries, gaps);
        let cut = cut.index(log.len());
        let mut first = StateMachine::new(small_limits());
        let mut second = StateMachine::new(small_limits());
        let mut third = None;
        for (position, (index, payload)) in log.iter().enumerate() {
            if position == cut {
                third = Some(restored(&first));
            }
            let decoded = payload.as_deref().map(Request::decode);
            let reply = match decoded {
                Some(Ok(request)) => Some(first.apply(*index, request)),
                _ => feed(&mut first, *index, payload),
            };
            prop_assert_eq!(&feed(&mut second, *index, payload), &reply);
            if let Some(third) = third.as_mut() {
                prop_assert_eq!(&feed(third, *index, payload), &reply);
            }
        }
        let third = third.expect("the cut lies inside the log");
        prop_assert_eq!(&first, &second);
        prop_assert_eq!(&first, &third);
        prop_assert_eq!(first.snapshot().encode(), third.snapshot().encode());
        prop_assert_eq!(restored(&first), first);
    }

    /// A snapshot is an image of one moment: writes after it do not show in it.
    #[test]
    fn snapshot_is_unaffected_by_later_writes(
        before in prop::collection::vec(command(), 0..30),
        after in prop::collection::vec(command(), 1..30),
    ) {
        let mut machine = StateMachine::new(small_limits());
        let mut index = 0;
        for command in before {
            index += 1;
            machine.apply(index, request(None, 0, command));
        }
        let frozen = machine.clone();
        let snapshot = machine.snapshot();
        let encoded = snapshot.encode();
        for command in after {
            index += 1;
            machine.apply(index, request(None, 0, command));
        }
        prop_assert_eq!(snapshot.encode(), encoded);
        prop_assert_eq!(snapshot.applied_index(), frozen.applied_index());
        prop_assert_eq!(StateMachine::restore(snapshot).expect("restores"), frozen);
    }
}

#[test]
#[should_panic(expected = "entries apply once, in log order")]
fn applying_an_index_twice_is_misuse() {
    let mut machine = StateMachine::new(Limits::default());
    machine.apply(1, request(None, 0, crate::support::put("k", "v")));
    machine.apply(1, request(None, 0, crate::support::put("k", "v")));
}

#[test]
fn snapshot_can_be_encoded_on_another_thread() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Snapshot>();
}
