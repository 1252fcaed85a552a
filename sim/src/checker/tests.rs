//! Both searches against a brute-force reference on small random histories: the prunings of
//! the searches (canonical orders, interchangeable operations, subsumption) must never change
//! a verdict.

use bytes::Bytes;
use proptest::prelude::*;

use super::frontier;
use super::model::KeyCall;
use super::partition::KeyOp;
use super::search::{search, Verdict};
use crate::history::Return;

/// The reference store, written independently of [`super::model`].
fn apply(call: &KeyCall, value: &Option<Bytes>) -> (Option<Bytes>, Return) {
    match call {
        KeyCall::Get | KeyCall::RangeRead => (value.clone(), Return::Value(value.clone())),
        KeyCall::Set(new) => (Some(new.clone()), Return::Done),
        KeyCall::Del => (None, Return::Integer(i64::from(value.is_some()))),
        KeyCall::Cas { expected, new } if value.as_ref() == Some(expected) => (Some(new.clone()), Return::Integer(1)),
        KeyCall::Cas { .. } => (value.clone(), Return::Integer(0)),
        KeyCall::Append(suffix) => {
            let mut joined = value.as_deref().unwrap_or_default().to_vec();
            joined.extend_from_slice(suffix);
            let length = joined.len() as i64;
            (Some(Bytes::from(joined)), Return::Integer(length))
        }
        KeyCall::Incr => {
            let text = value.as_deref().unwrap_or(b"0");
            let parsed = std::str::from_utf8(text).ok().and_then(|text| text.parse::<i64>().ok());
            match parsed.filter(|number| number.to_string().as_bytes() == text).and_then(|n| n.checked_add(1)) {
                Some(next) => (Some(Bytes::from(next.to_string())), Return::Integer(next)),
                None => (value.clone(), Return::Error),
            }
        }
    }
}

/// Whether some order of all known operations and any subset of unknown ones, each after
/// every known operation that completed before it was invoked, replays the recorded replies.
fn brute_force(operations: &[KeyOp]) -> bool {
    explore(operations, &mut vec![false; operations.len()], &None)
}

fn explore(operations: &[KeyOp], placed: &mut [bool], value: &Option<Bytes>) -> bool {
    if (0..operations.len()).all(|index| placed[index] || operations[index].reply.is_none()) {
        return true;
    }
    for index in 0..operations.len() {
        let blocked = (0..operations.len()).any(|other| {
            !placed[other]
                && other != index
                && operations[other].completed_ns.is_some_and(|done| done < operations[index].invoked_ns)
        });
        if placed[index] || blocked {
            continue;
        }
        let (next, reply) = apply(&operations[index].call, value);
        if operations[index].reply.as_ref().is_some_and(|recorded| *recorded != reply) {
            continue;
        }
        placed[index] = true;
        let found = explore(operations, placed, &next);
        placed[index] = false;
        if found {
            return true;
        }
    }
    false
}

fn value() -> impl Strategy<Value = Bytes> {
    prop_oneof![Just("a"), Just("b"), Just("ab"), Just("1"), Just(""), Just("xy")].prop_map(Bytes::from)
}

fn call() -> impl Strategy<Value = KeyCall> {
    prop_oneof![
        3 => Just(KeyCall::Get),
        3 => value().prop_map(KeyCall::Set),
        2 => Just(KeyCall::Del),
        2 => (value(), value()).prop_map(|(expected, new)| KeyCall::Cas { expected, new }),
        2 => value().prop_map(KeyCall::Append),
        1 => Just(KeyCall::Incr),
    ]
}

fn reply() -> impl Strategy<Value = Return> {
    prop_oneof![
        Just(Return::Done),
        Just(Return::Error),
        (0i64..5).prop_map(Return::Integer),
        proptest::option::of(value()).prop_map(Return::Value),
    ]
}

/// Small histories with random times, many unknown outcomes, and replies that are either
/// random or those of a sequential run in invocation order (so both verdicts are common).
fn history() -> impl Strategy<Value = Vec<KeyOp>> {
    let operation = (call(), 0u64..12, 0u64..6, 0u8..10, reply());
    (proptest::collection::vec(operation, 1..8), any::<bool>(), any::<u64>()).prop_map(
        |(operations, plausible, mask)| {
            let mut operations: Vec<KeyOp> = operations
                .into_iter()
                .enumerate()
                .filter(|(_, (call, _, _, fate, _))| !(*fate < 4 && *call == KeyCall::Get))
                .map(|(source, (call, invoked_ns, duration_ns, fate, reply))| {
                    let known = fate >= 4;
                    KeyOp {
                        source,
                        call,
                        reply: known.then_some(reply),
                        invoked_ns,
                        completed_ns: known.then_some(invoked_ns + duration_ns),
                    }
                })
                .collect();
            if plausible {
                make_plausible(&mut operations, mask);
            }
            operations
        },
    )
}

fn make_plausible(operations: &mut [KeyOp], mask: u64) {
    let mut order: Vec<usize> = (0..operations.len()).collect();
    order.sort_by_key(|&index| operations[index].invoked_ns);
    let mut value = None;
    for (position, index) in order.into_iter().enumerate() {
        let (next, reply) = apply(&operations[index].call, &value);
        match &mut operations[index].reply {
            Some(recorded) => {
                *recorded = reply;
                value = next;
            }
            None if mask >> (position % 64) & 1 == 1 => value = next,
            None => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn both_searches_agree_with_brute_force(operations in history()) {
        let expected = if brute_force(&operations) { Verdict::Linearizable } else { Verdict::NotLinearizable };
        let depth_first = search(&operations, u64::MAX, false).verdict;
        prop_assert_eq!(depth_first, expected, "depth-first on {:#?}", operations);
        let breadth_first = frontier::search(&operations, u64::MAX).verdict;
        prop_assert_eq!(breadth_first, expected, "breadth-first on {:#?}", operations);
    }
}
