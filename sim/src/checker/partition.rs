//! Splits a history into one sub-history per key (P-compositionality: a history of
//! independent registers is linearizable iff each register's sub-history is), and projects
//! every RANGE onto the keys it covers as one read per key.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::model::KeyCall;
use crate::history::{Call, Operation, Outcome, Return};

/// The RANGE end that means "to the last key", as the server reads it.
const END_UNBOUNDED: &[u8] = b"+";

/// The [`KeyOp::source`] of an operation the shrinker made up to stand for the operations
/// before a window (see [`super::shrink`]).
pub(crate) const SYNTHETIC_SOURCE: usize = usize::MAX;

/// One operation as seen by one key.
#[derive(Clone, Debug)]
pub(crate) struct KeyOp {
    /// Index of the operation in the checked history, or [`SYNTHETIC_SOURCE`].
    pub source: usize,
    pub call: KeyCall,
    /// The reply, or `None` when the outcome is unknown (its reply is then unconstrained).
    pub reply: Option<Return>,
    pub invoked_ns: u64,
    /// `Some` exactly when `reply` is; an unknown operation may take effect at any time
    /// after its invocation, as if it completed at infinity.
    pub completed_ns: Option<u64>,
}

/// The per-key sub-histories, in key order.
pub(crate) fn partition(history: &[Operation]) -> BTreeMap<Bytes, Vec<KeyOp>> {
    let mut per_key: BTreeMap<Bytes, Vec<KeyOp>> = BTreeMap::new();
    for (source, operation) in history.iter().enumerate() {
        if let Some((key, key_op)) = single_key_op(source, operation) {
            per_key.entry(key).or_default().push(key_op);
        }
    }
    project_ranges(history, &mut per_key);
    per_key
}

/// The key and per-key view of a single-key operation that belongs in the search; `None`
/// for RANGE, for failed operations (they did not happen), and for reads of unknown outcome
/// (they neither changed anything nor told us anything).
fn single_key_op(source: usize, operation: &Operation) -> Option<(Bytes, KeyOp)> {
    let (key, call) = match &operation.call {
        Call::Get(key) => (key, KeyCall::Get),
        Call::Set(key, value) => (key, KeyCall::Set(value.clone())),
        Call::Del(key) => (key, KeyCall::Del),
        Call::Cas { key, expected, new } => (key, KeyCall::Cas { expected: expected.clone(), new: new.clone() }),
        Call::Append(key, value) => (key, KeyCall::Append(value.clone())),
        Call::Incr(key) => (key, KeyCall::Incr),
        Call::Range { .. } => return None,
    };
    let (reply, completed_ns) = match &operation.outcome {
        Outcome::Failed => return None,
        Outcome::Unknown if call == KeyCall::Get => return None,
        Outcome::Unknown => (None, None),
        Outcome::Ok(reply) => (Some(reply.clone()), operation.completed_ns),
    };
    Some((key.clone(), KeyOp { source, call, reply, invoked_ns: operation.invoked_ns, completed_ns }))
}

/// Adds, for every completed RANGE and every known key it covers, a read of that key that
/// saw what the range returned for it (its value, or its absence).
///
/// Keys that no operation ever touched and no range ever returned are left out: they were
/// absent throughout, so a range that did not return them is trivially right about them.
fn project_ranges(history: &[Operation], per_key: &mut BTreeMap<Bytes, Vec<KeyOp>>) {
    let mut keys: BTreeSet<Bytes> = per_key.keys().cloned().collect();
    for operation in history {
        if let (Call::Range { .. }, Outcome::Ok(Return::Pairs(pairs))) = (&operation.call, &operation.outcome) {
            keys.extend(pairs.iter().map(|(key, _)| key.clone()));
        }
    }
    for (source, operation) in history.iter().enumerate() {
        let (Call::Range { start, end }, Outcome::Ok(Return::Pairs(pairs))) = (&operation.call, &operation.outcome)
        else {
            continue;
        };
        let returned: BTreeMap<&Bytes, &Bytes> = pairs.iter().map(|(key, value)| (key, value)).collect();
        for key in keys_in_range(&keys, start, end) {
            let observed = returned.get(key).map(|value| (*value).clone());
            per_key.entry(key.clone()).or_default().push(KeyOp {
                source,
                call: KeyCall::RangeRead,
                reply: Some(Return::Value(observed)),
                invoked_ns: operation.invoked_ns,
                completed_ns: operation.completed_ns,
            });
        }
    }
}

/// The keys of `keys` in `[start, end)`; an `end` of `+` means no upper bound.
pub(crate) fn keys_in_range<'a>(
    keys: &'a BTreeSet<Bytes>,
    start: &'a Bytes,
    end: &'a Bytes,
) -> impl Iterator<Item = &'a Bytes> + 'a {
    keys.range(start.clone()..).take_while(move |key| in_range(key, start, end))
}

/// Whether `key` lies in `[start, end)` (`+` as `end` meaning no upper bound).
pub(crate) fn in_range(key: &[u8], start: &[u8], end: &[u8]) -> bool {
    key >= start && (end == END_UNBOUNDED || key < end)
}
