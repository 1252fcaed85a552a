//! The linearizability checker: is there one order of the history's operations, each taking
//! effect at an instant between its invocation and its completion, in which every reply is
//! the one a single-copy key-value store would have given?
//!
//! # What is checked
//!
//! - **Single-key operations** (GET, SET, DEL, CAS, APPEND, INCR), exactly, against the model
//!   in `model.rs`. The store is a set of independent keys, so the history is split by key
//!   (P-compositionality, Herlihy and Wing) and each key's sub-history is decided on its own.
//! - **Outcomes.** A failed operation surely did not take effect and is left out. An
//!   operation of unknown outcome may take effect at any instant after its invocation (even
//!   long after its client gave up), or never, and its reply is unconstrained. An unknown GET
//!   says nothing and is left out.
//! - **RANGE, per key.** A completed RANGE is projected onto every key it covers (every key
//!   the history mentions within `[start, end)`), as a read of that key with the range's
//!   invocation and completion times that saw the value the range returned, or the key's
//!   absence. Each key's search then has to fit that read at an instant inside the range's
//!   window, consistently with the key's other operations. So a range that misses a key
//!   certainly present throughout, or returns a value the key cannot hold at any instant of
//!   it, is a violation.
//! - **RANGE, on its own.** Before any search: keys within `[start, end)` (an `end` of `+`
//!   is unbounded, as for the server), in strictly increasing byte order; no phantom values,
//!   that is every returned value could have been left in its key by a write (SET or CAS
//!   storing it, APPEND of one of its suffixes, INCR if it is an integer) that did not fail
//!   and was invoked before the range completed.
//!
//! # What is not checked
//!
//! - **Atomicity of RANGE across keys.** Each key's read may be placed at a different instant
//!   of the range's window; a range that mixes one key's value from before a write with
//!   another's from after it, with no single instant showing both, is not flagged. (That
//!   needs one search over all the keys a range covers, which P-compositionality does not
//!   give.)
//! - **Keys after the first violation.** The first key (in byte order) with a violation is
//!   reported; later keys are not searched.
//!
//! # How a key is decided
//!
//! Two complete searches, run in turns with a growing budget (`search.rs`, `decide`):
//! - the Wing–Gong–Lowe depth-first search in Lowe's and porcupine's form (a linked list of
//!   call and return events, backtracking, a cache of explored configurations keyed on the
//!   set of linearized operations and the key's value): fastest at finding a linearization;
//! - a breadth-first sweep over time, "just-in-time linearization" (`frontier.rs`): fastest at
//!   refuting long histories with many unknown outcomes.
//!
//! Both prune without losing any linearization: an unknown operation is placed only right
//! before an operation that notices it (canonical orders), interchangeable unknown operations
//! are spent in invocation order (`symmetry.rs`), and a configuration that spent a superset of
//! the unknown operations of an explored one is skipped (`cache.rs`). A unit test holds both
//! to a brute-force reference on thousands of small random histories.
//!
//! # Cost, and limits
//!
//! Accepting a history usually takes one or two steps per operation. Refuting one explores
//! every consistent configuration up to the violation, which grows with the operations of
//! unknown outcome still able to take effect; a few percent of them cost little, a fifth of
//! a long, hot key's operations can exhaust [`CheckConfig::search_steps_max_per_key`]. Then
//! the verdict is [`Verdict::Inconclusive`] (unless another key has a violation): never a
//! silent pass.
//!
//! # On a violation
//!
//! The key's sub-history is shrunk (`shrink.rs`) to a small window of operations that fails
//! whatever the key's other operations did (they are relaxed to an unknown outcome, not
//! dropped), with the operations before it summarized by the values they leave in the key,
//! within [`CheckConfig::shrink_steps_max`]. The [`Violation`] shows the window as a text
//! timeline (its `Display`, [`render_text`]) or as HTML ([`render_html`]), with an
//! explanation: the operation at whose completion every consistent order breaks, and the
//! longest consistent order found.
//!
//! Everything here is deterministic: no clocks, no threads, no iteration over hash maps (the
//! few hash maps, with fixed hashers, serve lookups only).

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
    let searched = window.searched(operations, config.search_steps_max_per_key);
    let (mut explanation, consistent_order) = explain_window(&key, &searched, history, window.cut_ns, config);
    if let Some(context) = &window.context {
        explanation.push_str(&explain::context_note(context, operations));
    }
    explanation.push_str(&explain::writers_note(&window.writers, operations, history));
    let sources = window.kept.iter().chain(&window.writers).map(|&index| operations[index].source);
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
    // An order holding nothing but the summary of the operations before the window adds
    // nothing to the sentence above.
    let real = |index: &usize| searched[*index].source != partition::SYNTHETIC_SOURCE;
    let Some(dead_end) = outcome.dead_end.as_ref().filter(|dead_end| dead_end.order.iter().any(real)) else {
        explanation.push_str(&explain::still_running_note(searched, history, cut_ns));
        return (explanation, Vec::new());
    };
    explanation.push_str(&explain::explain_dead_end(key, searched, history, dead_end));
    explanation.push_str(&explain::still_running_note(searched, history, cut_ns));
    let order =
        dead_end.order.iter().filter(|index| real(index)).map(|&index| history[searched[index].source].id).collect();
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
