//! Interchangeable operations of unknown outcome, which the searches spend in invocation
//! order.
//!
//! Two unknown operations are interchangeable when either could stand for the other in any
//! linearization: the same call (two unknown `DEL`s), or two `SET`s of *anonymous* values of
//! the same length. A value is anonymous when nothing in the key's history can tell it apart
//! from another: it is not an integer and cannot become one by appends (it holds a byte other
//! than a digit or `-`), and no read, RANGE or CAS ever saw or expected a value starting with
//! it. Such a value can only show through its length, its presence, and not being an
//! integer, which anonymous values of one length share.
//!
//! If a linearization spends a later operation of a class while an earlier one stays unspent,
//! spending the earlier one instead (it was invoked sooner, so it may take effect wherever the
//! later one did) leaves every reply unchanged. So the searches only spend an operation once
//! every earlier one of its class is spent; without this, configurations differing only in
//! *which* of several equivalent operations were spent would be explored separately, which
//! is exponential.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::model::KeyCall;
use super::partition::KeyOp;
use crate::history::Return;

/// What makes unknown operations interchangeable.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    SameCall(KeyCall),
    AnonymousSet { length: usize },
}

/// For each operation, the closest earlier-invoked operation of unknown outcome
/// interchangeable with it (`None` for operations of known outcome).
pub(crate) fn previous_interchangeable(operations: &[KeyOp]) -> Vec<Option<usize>> {
    let observed = observed_values(operations);
    let mut unknown: Vec<usize> = (0..operations.len()).filter(|&index| operations[index].reply.is_none()).collect();
    unknown.sort_by_key(|&index| (operations[index].invoked_ns, index));
    let mut last_of_class: BTreeMap<Class, usize> = BTreeMap::new();
    let mut previous = vec![None; operations.len()];
    for index in unknown {
        let class = class_of(&operations[index].call, &observed);
        previous[index] = last_of_class.insert(class, index);
    }
    previous
}

fn class_of(call: &KeyCall, observed: &BTreeSet<Bytes>) -> Class {
    match call {
        KeyCall::Set(value) if is_anonymous(value, observed) => Class::AnonymousSet { length: value.len() },
        _ => Class::SameCall(call.clone()),
    }
}

/// Values some operation saw or compared against: they, and any value they start with, are
/// not anonymous.
fn observed_values(operations: &[KeyOp]) -> BTreeSet<Bytes> {
    let mut observed = BTreeSet::new();
    for operation in operations {
        match (&operation.call, &operation.reply) {
            (KeyCall::Cas { expected, .. }, _) => {
                observed.insert(expected.clone());
            }
            (_, Some(Return::Value(Some(value)))) => {
                observed.insert(value.clone());
            }
            _ => {}
        }
    }
    observed
}

fn is_anonymous(value: &Bytes, observed: &BTreeSet<Bytes>) -> bool {
    let never_an_integer = value.iter().any(|&byte| !byte.is_ascii_digit() && byte != b'-');
    // Values starting with `value` sort right after it, so the first one from `value` on
    // starts with it if any does.
    let seen = observed.range(value.clone()..).next().is_some_and(|first| first.starts_with(value));
    never_an_integer && !seen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operation(call: KeyCall, reply: Option<Return>, invoked_ns: u64) -> KeyOp {
        let completed_ns = reply.as_ref().map(|_| invoked_ns + 1);
        KeyOp { source: 0, call, reply, invoked_ns, completed_ns }
    }

    fn set(value: &'static str) -> KeyCall {
        KeyCall::Set(Bytes::from_static(value.as_bytes()))
    }

    #[test]
    fn identical_calls_and_anonymous_values_of_one_length_are_interchangeable() {
        let operations = [
            operation(KeyCall::Del, None, 5),
            operation(set("aa"), None, 1),
            operation(KeyCall::Del, None, 3),
            operation(set("bb"), None, 2),
            operation(set("seen"), None, 0),
            operation(set("seex"), None, 0),
            operation(KeyCall::Get, Some(Return::Value(Some(Bytes::from_static(b"seen-and-more")))), 9),
            operation(set("12"), None, 4),
            operation(set("34"), None, 4),
        ];
        let previous = previous_interchangeable(&operations);
        assert_eq!(previous[0], Some(2));
        assert_eq!(previous[2], None);
        assert_eq!(previous[3], Some(1), "anonymous values of one length");
        assert_eq!(previous[5], None, "\"seen\" is observed, so \"seex\" has no class mate");
        assert_eq!(previous[6], None, "known operations have none");
        assert_eq!(previous[8], None, "integers are never anonymous");
    }
}
