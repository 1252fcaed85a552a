//! The linearizability checker: is there one order of the history's operations, each taking
//! effect at an instant between its invocation and its completion, in which every reply is
//! the one a single-copy key-value store would have given?
//!
//! # What is checked
//!
//! - **Single-key operations** (GET, SET, DEL, CAS, APPEND, INCR), exactly. The store is a
//!   set of independent keys, so the history is split by key (P-compositionality, Herlihy
//!   and Wing) and each key's sub-history is searched on its own with the Wing–Gong–Lowe
//!   algorithm ([`search`](self) module notes), against the model of [`model`](self).
//! - **Outcomes.** A failed operation surely did not take effect and is left out. An
//!   operation of unknown outcome may take effect at any instant after its invocation, or
//!   never, and its reply is unconstrained: the search may place it or leave it out. An
//!   unknown GET says nothing and is left out.
//! - **RANGE, per key.** A completed RANGE is projected onto every key it covers, as a
//!   read of that key with the range's invocation and completion times that saw the value the
//!   range returned, or the key's absence. Each key's search then has to fit that read at an
//!   instant inside the range's window, consistently with the key's other operations. So a
//!   range that misses a key certainly present for its whole duration, or returns a value the
//!   key cannot hold at any instant of it, is a violation.
//! - **RANGE, on its own.** Before any search: keys in `[start, end)`, in strictly increasing
//!   byte order; no phantom values, that is every returned value could have been left in its
//!   key by a write (SET or CAS storing it, APPEND of one of its suffixes, INCR if it is an
//!   integer) that did not fail and was invoked before the range completed.
//!
//! # What is not checked
//!
//! - **Atomicity of RANGE across keys.** Each key's read may be placed at a different instant
//!   of the range's window; a range that mixes one key's value from before a write with
//!   another's from after it, with no single instant showing both, is not flagged. (That
//!   needs a search over all the keys a range covers at once, which P-compositionality does
//!   not give.)
//! - **Keys beyond the last violation found.** The first key (in byte order) with a violation
//!   is reported; later keys are not searched.
//! - **Client order.** An operation may take effect anywhere inside its own window; a client's
//!   next operation is ordered after it only through real time, as linearizability requires.
//!
//! # Cost, and limits
//!
//! A key's search is usually linear in its number of operations, thanks to the cache of
//! explored configurations. It can grow exponentially with the number of mutually concurrent
//! operations the model cannot tell apart; [`CheckConfig::search_steps_max_per_key`] bounds
//! it, and a key that reaches the bound makes the verdict [`Verdict::Inconclusive`] unless a
//! violation is found elsewhere: never a silent pass.
//!
//! # On a violation
//!
//! The key's sub-history is shrunk (see [`shrink`](self) module notes) to a small window of
//! operations that is not linearizable on its own and fails at the same instant as the whole,
//! within [`CheckConfig::shrink_steps_max`]. The [`Violation`] shows it as a text timeline
//! (its `Display`) or as HTML ([`render_html`]), with an explanation drawn from the deepest
//! point the search reached.
//!
//! Everything here is deterministic: no clocks, no threads, no iteration over hash maps.

mod cache;
mod explain;
mod frontier;
pub mod generator;
mod html;
mod model;
mod partition;
mod range;
mod report;
mod search;
mod shrink;
mod symmetry;
#[cfg(test)]
mod tests;
mod timeline;

use bytes::Bytes;

pub use html::render_html;
pub use report::{CheckConfig, Report, Stats, Verdict, Violation};
pub use timeline::{describe_call, describe_operation, describe_outcome, describe_return, quoted, render_text};

use crate::history::{Operation, Outcome};
use partition::KeyOp;
use range::RangeProblem;

/// Checks `history` for linearizability; see the [module documentation](self) for exactly
/// what that covers.
///
/// # Panics
///
/// If an operation with a reply has no completion time, or completed before it was invoked:
/// the recording is broken, not the system under test.
pub fn check(history: &[Operation], config: &CheckConfig) -> Report {
    assert_well_formed(history);
    let mut stats = Stats { operations: history.len(), ..Stats::default() };
    let (ranges_checked, problem) = range::check_ranges(history);
    stats.ranges_checked = ranges_checked;
    if let Some(problem) = problem {
        let violation = range_violation(history, problem);
        return Report { verdict: Verdict::Violation(Box::new(violation)), stats };
    }
    let mut inconclusive = Vec::new();
    for (key, operations) in partition::partition(history) {
        stats.keys_checked += 1;
        let outcome = search::decide(&operations, config.search_steps_max_per_key);
        stats.search_steps += outcome.steps;
        stats.cache_entries_max = stats.cache_entries_max.max(outcome.cache_entries);
        match outcome.verdict {
            search::Verdict::Linearizable => {}
            search::Verdict::BudgetExceeded => inconclusive.push(key),
            search::Verdict::NotLinearizable => {
                let violation = key_violation(key, &operations, outcome.steps, history, config, &mut stats);
                return Report { verdict: Verdict::Violation(Box::new(violation)), stats };
            }
        }
    }
    let verdict =
        if inconclusive.is_empty() { Verdict::Linearizable } else { Verdict::Inconclusive { keys: inconclusive } };
    Report { verdict, stats }
}

fn assert_well_formed(history: &[Operation]) {
    for operation in history {
        if let Outcome::Ok(_) = operation.outcome {
            let completed_ns = operation
                .completed_ns
                .unwrap_or_else(|| panic!("operation #{} has a reply but no completion time", operation.id));
            assert!(
                completed_ns >= operation.invoked_ns,
                "operation #{} completed at {completed_ns} ns, before its invocation at {} ns",
                operation.id,
                operation.invoked_ns
            );
        }
    }
}

/// Shrinks a failing key's sub-history and explains the window.
fn key_violation(
    key: Bytes,
    operations: &[KeyOp],
    refutation_steps: u64,
    history: &[Operation],
    config: &CheckConfig,
    stats: &mut Stats,
) -> Violation {
    let window = shrink::shrink(operations, refutation_steps, config.search_steps_max_per_key, config.shrink_steps_max);
    stats.shrink_steps = window.steps;
    let searched = window.searched(operations);
    let (mut explanation, consistent_order) = explain_window(&key, &searched, history, window.cut_ns, config);
    if let Some(context) = &window.context {
        explanation.push_str(&explain::context_note(context, operations));
    }
    let sources = window.kept.iter().map(|&index| operations[index].source);
    Violation {
        key,
        window: window_of(history, sources),
        explanation,
        consistent_order,
        minimal: window.minimal,
        key_operations: operations.len(),
    }
}

/// The explanation of a failing window: where the sweep of [`frontier`] broke (the
/// operation whose completion no order accommodates), then the longest consistent order the
/// depth-first search found, if it finishes within its budget (small windows do). Also the
/// ids of that order.
fn explain_window(
    key: &Bytes,
    searched: &[KeyOp],
    history: &[Operation],
    cut_ns: u64,
    config: &CheckConfig,
) -> (String, Vec<u64>) {
    let swept = frontier::search(searched, config.search_steps_max_per_key);
    let mut explanation = match swept.blocked {
        Some((blocked, values)) => explain::explain_blocked(key, searched, history, blocked, &values),
        None => format!("No order of these operations is consistent with one value of key {}.", quoted(key)),
    };
    let outcome = search::search(searched, config.search_steps_max_per_key.min(EXPLAIN_STEPS_MAX), true);
    let Some(dead_end) = &outcome.dead_end else {
        explanation.push_str(&explain::still_running_note(searched, history, cut_ns));
        return (explanation, Vec::new());
    };
    explanation.push_str(&explain::explain_dead_end(key, searched, history, dead_end));
    explanation.push_str(&explain::still_running_note(searched, history, cut_ns));
    let order = dead_end
        .order
        .iter()
        .filter(|&&index| searched[index].source != partition::SYNTHETIC_SOURCE)
        .map(|&index| history[searched[index].source].id)
        .collect();
    (explanation, order)
}

/// The explaining depth-first search gives up after this many steps (it records its deepest
/// dead end as it goes, which costs more than deciding).
const EXPLAIN_STEPS_MAX: u64 = 1_000_000;

fn range_violation(history: &[Operation], problem: RangeProblem) -> Violation {
    let key_operations = history.iter().filter(|operation| operation.call.key() == Some(&problem.key)).count();
    Violation {
        key: problem.key,
        window: window_of(history, problem.operations.into_iter()),
        explanation: problem.explanation,
        consistent_order: Vec::new(),
        minimal: true,
        key_operations,
    }
}

/// The operations at `sources`, once each, in invocation order.
fn window_of(history: &[Operation], sources: impl Iterator<Item = usize>) -> Vec<Operation> {
    let mut sources: Vec<usize> = sources.collect();
    sources.sort_by_key(|&source| (history[source].invoked_ns, source));
    sources.dedup();
    sources.into_iter().map(|source| history[source].clone()).collect()
}
