//! Checks of RANGE replies on their own, before any search: the reply's shape, and phantom
//! values. (How RANGE results enter the per-key searches is in [`super::partition`].)

use std::collections::BTreeMap;

use bytes::Bytes;

use super::model::parse_integer;
use super::partition::in_range;
use super::timeline::{describe_operation, describe_return, quoted};
use crate::history::{Call, Operation, Outcome, Return};

/// At most this many writes are listed when explaining a phantom value.
const WRITES_LISTED_MAX: usize = 8;

/// A RANGE reply that is wrong on its face.
#[derive(Debug)]
pub(crate) struct RangeProblem {
    pub key: Bytes,
    /// Indices into the history: the RANGE first, then writes that bear on it.
    pub operations: Vec<usize>,
    pub explanation: String,
}

/// Checks every completed RANGE; returns how many were checked, and the first problem.
pub(crate) fn check_ranges(history: &[Operation]) -> (usize, Option<RangeProblem>) {
    let writes = Writes::index(history);
    let mut checked = 0;
    for (index, operation) in history.iter().enumerate() {
        let (Call::Range { start, end }, Outcome::Ok(reply)) = (&operation.call, &operation.outcome) else {
            continue;
        };
        checked += 1;
        let problem = match reply {
            Return::Pairs(pairs) => check_shape(history, index, start, end, pairs)
                .or_else(|| pairs.iter().find_map(|(key, value)| writes.phantom(history, index, key, value))),
            _ => Some(RangeProblem {
                key: start.clone(),
                operations: vec![index],
                explanation: format!(
                    "{} replied {}, which is not a list of key-value pairs.",
                    describe_operation(operation),
                    describe_return(reply)
                ),
            }),
        };
        if problem.is_some() {
            return (checked, problem);
        }
    }
    (checked, None)
}

/// Keys must lie in `[start, end)` and come in strictly increasing byte order.
fn check_shape(
    history: &[Operation],
    index: usize,
    start: &Bytes,
    end: &Bytes,
    pairs: &[(Bytes, Bytes)],
) -> Option<RangeProblem> {
    let operation = describe_operation(&history[index]);
    let mut previous: Option<&Bytes> = None;
    for (key, _) in pairs {
        let explanation = if !in_range(key, start, end) {
            format!("{operation} returned key {}, which lies outside the range.", quoted(key))
        } else if previous.is_some_and(|previous| previous >= key) {
            format!("{operation} returned key {} out of byte order or twice.", quoted(key))
        } else {
            previous = Some(key);
            continue;
        };
        return Some(RangeProblem { key: key.clone(), operations: vec![index], explanation });
    }
    None
}

/// The writes of the history by key, failed ones included (they explain phantoms).
#[derive(Debug)]
struct Writes<'a> {
    /// SET and CAS, by key and the value they store.
    exact: BTreeMap<(&'a Bytes, &'a Bytes), Vec<usize>>,
    /// APPEND and INCR, whose stored value depends on the value before, by key.
    derived: BTreeMap<&'a Bytes, Vec<usize>>,
}

impl<'a> Writes<'a> {
    fn index(history: &'a [Operation]) -> Writes<'a> {
        let mut writes = Writes { exact: BTreeMap::new(), derived: BTreeMap::new() };
        for (index, operation) in history.iter().enumerate() {
            match &operation.call {
                Call::Set(key, value) | Call::Cas { key, new: value, .. } => {
                    writes.exact.entry((key, value)).or_default().push(index);
                }
                Call::Append(key, _) | Call::Incr(key) => writes.derived.entry(key).or_default().push(index),
                Call::Get(_) | Call::Del(_) | Call::Range { .. } => {}
            }
        }
        writes
    }

    /// A problem if no write that did not fail, invoked before the RANGE (at `index`)
    /// completed, could have left `value` in `key`.
    ///
    /// SET and CAS count when they store exactly `value`; APPEND when `value` ends with its
    /// suffix; INCR when `value` is an integer. The last two are necessary conditions only:
    /// the per-key search checks the exact value.
    fn phantom(&self, history: &[Operation], index: usize, key: &Bytes, value: &Bytes) -> Option<RangeProblem> {
        let completed_ns = history[index].completed_ns.expect("a completed RANGE has a completion time");
        let exact = self.exact.get(&(key, value)).into_iter().flatten();
        let derived = self.derived.get(key).into_iter().flatten().filter(|&&write| match &history[write].call {
            Call::Append(_, suffix) => value.ends_with(suffix),
            _ => parse_integer(value).is_some(),
        });
        let candidates: Vec<usize> = exact.chain(derived).copied().collect();
        let explains = |write: &usize| {
            let operation = &history[*write];
            operation.outcome != Outcome::Failed && operation.invoked_ns <= completed_ns
        };
        if candidates.iter().any(explains) {
            return None;
        }
        Some(phantom_problem(history, index, key, value, candidates))
    }
}

fn phantom_problem(
    history: &[Operation],
    index: usize,
    key: &Bytes,
    value: &Bytes,
    candidates: Vec<usize>,
) -> RangeProblem {
    let range = &history[index];
    let mut explanation = format!(
        "{} returned {} = {}, a phantom: no write that could leave this value in the key was invoked before the \
         RANGE completed (at {} ns) and did not fail.",
        describe_operation(range),
        quoted(key),
        quoted(value),
        range.completed_ns.unwrap_or_default()
    );
    if candidates.is_empty() {
        explanation.push_str(" No operation ever wrote it.");
    }
    let mut operations = vec![index];
    for &write in candidates.iter().take(WRITES_LISTED_MAX) {
        let operation = &history[write];
        let why = if operation.outcome == Outcome::Failed {
            "failed, so it never took effect".to_string()
        } else {
            format!("was invoked only at {} ns", operation.invoked_ns)
        };
        explanation.push_str(&format!("\n  {} {why}.", describe_operation(operation)));
        operations.push(write);
    }
    RangeProblem { key: key.clone(), operations, explanation }
}
