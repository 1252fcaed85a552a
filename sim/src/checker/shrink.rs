//! Shrinks a non-linearizable sub-history to a small window that still shows the violation.
//!
//! Three moves, in this order:
//! 1. **Cut the end.** A history truncated at time `t` keeps the operations invoked by `t`,
//!    and those still running at `t` lose their replies (outcome unknown). Truncation is
//!    sound (if the history were linearizable, so would every truncation be) and monotone, so
//!    a binary search finds the earliest `t` at which the violation already shows: the
//!    *violation time*.
//! 2. **Summarize the beginning.** Pick the latest instant `c` at which no operation of known
//!    outcome is running, leaving at least [`WINDOW_OPERATIONS_MIN`] operations invoked from
//!    `c` on. The operations invoked before `c` (the *context*) are replaced by the values the
//!    key could hold at `c` (found by the breadth-first sweep), and the rest is searched from
//!    each of these values in turn, the context's operations of unknown outcome still free to
//!    take effect later. The real value at `c` is one of them, so if the rest fails from each,
//!    the history fails. Without such an instant (or with too many values), nothing is cut.
//! 3. **Drop operations** after `c` greedily, in chunks of halving size (reads first, then
//!    any). A chunk may go only if the rest still fails at the violation time *with every
//!    dropped operation still there as an operation of unknown outcome* (reads among them then
//!    say nothing and vanish). This keeps the window honest: dropping the write a stale read
//!    saw would turn the stale read into a phantom, which fails too, but the relaxed write can
//!    explain the read, so the drop is refused. The window's operations contradict each other
//!    whatever the other operations did or did not do. And it keeps the window sound: relaxing
//!    operations to an unknown outcome only makes a history easier to linearize.
//!
//! Every search runs within what is left of the shrink budget (and, while dropping, within a
//! cap proportional to what refuting the whole key cost); when the budget runs out, the window
//! found so far is returned (it still fails), marked as not minimal.

use bytes::Bytes;

use super::frontier;
use super::model::{self, KeyCall};
use super::partition::{KeyOp, SYNTHETIC_SOURCE};
use super::search::{decide, Verdict};
use crate::history::Return;

/// The window left after summarizing the beginning keeps at least this many operations
/// (fewer only when the history is shorter), so that it usually holds the writes its reads saw.
pub(crate) const WINDOW_OPERATIONS_MIN: usize = 24;

/// A search while dropping may cost this many times the refutation of the whole key...
const STEPS_CAP_FACTOR: u64 = 4;

/// ...but at least this many steps (a window is small, but its relaxed operations of unknown
/// outcome can make its refutation cost more than the whole key's).
const STEPS_CAP_MIN: u64 = 1_000_000;

/// The result of shrinking.
#[derive(Debug)]
pub(crate) struct Window {
    /// Indices into the key's operations, in invocation order: the operations shown.
    pub kept: Vec<usize>,
    /// The violation time (`u64::MAX`: not found within the budget, nothing was cut).
    pub cut_ns: u64,
    /// What the beginning was summarized into, if it was.
    pub context: Option<Context>,
    /// Whether no single operation of the window can be dropped.
    pub minimal: bool,
    pub steps: u64,
}

/// The operations before the window, summarized.
#[derive(Debug)]
pub(crate) struct Context {
    /// The instant `c`: the window's operations were invoked at or after it.
    pub start_ns: u64,
    /// The values the key could hold at `c`; the window fails from each.
    pub values: Vec<Option<Bytes>>,
    /// Indices of the operations invoked before `c`.
    pub operations: Vec<usize>,
}

impl Window {
    /// The history the verdict on the window rests on, from the first value of the context:
    /// what the explanation describes.
    pub(crate) fn searched(&self, operations: &[KeyOp]) -> Vec<KeyOp> {
        let start = self.context.as_ref().and_then(|context| context.values.first().map(|value| (context, value)));
        trial(operations, start, &self.kept, &[], self.cut_ns)
    }
}

/// Shrinks `operations`, which must not be linearizable; `refutation_steps` is what the
/// search that found the violation cost.
pub(crate) fn shrink(operations: &[KeyOp], refutation_steps: u64, steps_max_per_search: u64, steps_max: u64) -> Window {
    let mut shrinker = Shrinker {
        operations,
        context: None,
        window: Vec::new(),
        cut_ns: u64::MAX,
        steps_cap: steps_max_per_search,
        steps_left: steps_max,
        steps: 0,
        undecided: false,
    };
    let all = by_invocation(operations, (0..operations.len()).collect());
    let Some(cut_ns) = shrinker.violation_time(&all) else {
        return Window { kept: all, cut_ns: u64::MAX, context: None, minimal: false, steps: shrinker.steps };
    };
    shrinker.cut_ns = cut_ns;
    let until_cut: Vec<usize> = all.into_iter().filter(|&index| operations[index].invoked_ns <= cut_ns).collect();
    shrinker.summarize_beginning(&until_cut);
    shrinker.steps_cap = refutation_steps.saturating_mul(STEPS_CAP_FACTOR).max(STEPS_CAP_MIN).min(steps_max_per_search);
    let mut kept = shrinker.window.clone();
    shrinker.drop_chunks(&mut kept, |operation| model::is_read(&operation.call));
    shrinker.drop_chunks(&mut kept, |_| true);
    let mut minimal = false;
    while shrinker.steps_left > 0 {
        shrinker.undecided = false;
        if !shrinker.drop_chunks_of(&mut kept, 1, |_| true) {
            minimal = shrinker.steps_left > 0 && !shrinker.undecided;
            break;
        }
    }
    Window { kept, cut_ns, context: shrinker.context, minimal, steps: shrinker.steps }
}

/// The operations `kept`, plus `relaxed` with their outcomes made unknown, truncated at
/// `cut_ns`: those invoked later are gone, and those still running lose their replies; reads
/// of unknown outcome, which then say nothing, go. With a context and one of its values, the
/// context's operations of unknown outcome come too, after a synthetic write of the value.
fn trial(
    operations: &[KeyOp],
    start: Option<(&Context, &Option<Bytes>)>,
    kept: &[usize],
    relaxed: &[usize],
    cut_ns: u64,
) -> Vec<KeyOp> {
    let mut window = Vec::with_capacity(kept.len() + relaxed.len() + 1);
    if let Some((context, value)) = start {
        window.extend(synthetic_write(context.start_ns, value));
        let unknown = context.operations.iter().filter(|&&index| operations[index].reply.is_none());
        window.extend(unknown.map(|&index| operations[index].clone()));
    }
    let all = kept.iter().map(|&index| (index, false)).chain(relaxed.iter().map(|&index| (index, true)));
    for (index, relax) in all {
        let operation = &operations[index];
        if operation.invoked_ns > cut_ns {
            continue;
        }
        let mut operation = operation.clone();
        if relax || operation.completed_ns.is_none_or(|completed_ns| completed_ns > cut_ns) {
            if model::is_read(&operation.call) {
                continue;
            }
            operation.reply = None;
            operation.completed_ns = None;
        }
        window.push(operation);
    }
    window
}

/// A write completed just before `start_ns` that leaves the key holding `value` (nothing is
/// needed for an absent key: every key starts absent).
fn synthetic_write(start_ns: u64, value: &Option<Bytes>) -> Option<KeyOp> {
    let value = value.as_ref()?;
    let at_ns = start_ns.saturating_sub(1);
    Some(KeyOp {
        source: SYNTHETIC_SOURCE,
        call: KeyCall::Set(value.clone()),
        reply: Some(Return::Done),
        invoked_ns: at_ns,
        completed_ns: Some(at_ns),
    })
}

fn by_invocation(operations: &[KeyOp], mut indices: Vec<usize>) -> Vec<usize> {
    indices.sort_by_key(|&index| (operations[index].invoked_ns, index));
    indices
}

#[derive(Debug)]
struct Shrinker<'a> {
    operations: &'a [KeyOp],
    context: Option<Context>,
    /// The operations after the context, invoked by the violation time: candidates to drop.
    window: Vec<usize>,
    cut_ns: u64,
    steps_cap: u64,
    steps_left: u64,
    steps: u64,
    /// Whether a search ran out of steps since this was last cleared: a drop refused then
    /// might have been possible, so the window is not known to be minimal.
    undecided: bool,
}

impl Shrinker<'_> {
    /// Decides a history, charging the budget.
    fn verdict(&mut self, operations: &[KeyOp]) -> Verdict {
        let outcome = decide(operations, self.steps_cap.min(self.steps_left));
        self.steps += outcome.steps;
        self.steps_left = self.steps_left.saturating_sub(outcome.steps);
        self.undecided |= outcome.verdict == Verdict::BudgetExceeded;
        outcome.verdict
    }

    /// Whether `kept`, with the other window operations relaxed, fails from every value of
    /// the context (or from the start, without one).
    fn fails(&mut self, kept: &[usize]) -> bool {
        let relaxed = self.relaxed(kept);
        let values = self.context.as_ref().map_or(1, |context| context.values.len());
        for value in 0..values {
            let start = self.context.as_ref().map(|context| (context, &context.values[value]));
            let operations = trial(self.operations, start, kept, &relaxed, self.cut_ns);
            if self.verdict(&operations) != Verdict::NotLinearizable {
                return false;
            }
        }
        true
    }

    /// The earliest completion time at which the truncated history fails, by binary search.
    fn violation_time(&mut self, all: &[usize]) -> Option<u64> {
        let mut times: Vec<u64> = all
            .iter()
            .filter(|&&index| self.operations[index].reply.is_some())
            .filter_map(|&index| self.operations[index].completed_ns)
            .collect();
        times.sort_unstable();
        times.dedup();
        let mut high = times.len().checked_sub(1)?;
        let fails_at = |shrinker: &mut Self, time: u64| {
            let operations = trial(shrinker.operations, None, all, &[], time);
            shrinker.verdict(&operations) == Verdict::NotLinearizable
        };
        if !fails_at(self, times[high]) {
            return None;
        }
        let mut low = 0;
        while low < high {
            let middle = (low + high) / 2;
            if fails_at(self, times[middle]) {
                high = middle;
            } else {
                low = middle + 1;
            }
        }
        Some(times[high])
    }

    /// Sets the context and the window (see the module notes); without a usable instant, the
    /// window is everything.
    fn summarize_beginning(&mut self, until_cut: &[usize]) {
        self.window = until_cut.to_vec();
        let Some(split) = self.latest_quiet_split(until_cut) else { return };
        let context_operations = until_cut[..split].to_vec();
        let context_history: Vec<KeyOp> =
            context_operations.iter().map(|&index| self.operations[index].clone()).collect();
        let swept = frontier::search(&context_history, self.steps_cap.min(self.steps_left));
        self.steps += swept.steps;
        self.steps_left = self.steps_left.saturating_sub(swept.steps);
        let Some(values) = swept.final_values.filter(|_| swept.verdict == Verdict::Linearizable) else { return };
        let start_ns = self.operations[until_cut[split]].invoked_ns;
        self.context = Some(Context { start_ns, values, operations: context_operations });
        self.window = until_cut[split..].to_vec();
        // Summarizing is more permissive (an unknown operation spent before `c` may be spent
        // again after it), so the window may no longer fail: then do without a context.
        let window = self.window.clone();
        if !self.fails(&window) {
            self.context = None;
            self.window = until_cut.to_vec();
        }
    }

    /// The largest position in `until_cut` (in invocation order) such that every operation
    /// of known outcome before it completed before it was invoked, leaving at least
    /// [`WINDOW_OPERATIONS_MIN`] operations from it on.
    fn latest_quiet_split(&self, until_cut: &[usize]) -> Option<usize> {
        let last = until_cut.len().checked_sub(WINDOW_OPERATIONS_MIN)?;
        let mut completed_max: Option<u64> = None;
        let mut quiet = Vec::with_capacity(until_cut.len());
        for &index in until_cut {
            let operation = &self.operations[index];
            quiet.push(completed_max.is_none_or(|completed_ns| completed_ns < operation.invoked_ns));
            if operation.reply.is_some() {
                completed_max = completed_max.max(operation.completed_ns);
            }
        }
        (1..=last).rev().find(|&split| quiet[split])
    }

    /// The window operations not in `kept`.
    fn relaxed(&self, kept: &[usize]) -> Vec<usize> {
        let mut in_kept = vec![false; self.operations.len()];
        for &index in kept {
            in_kept[index] = true;
        }
        self.window.iter().copied().filter(|&index| !in_kept[index]).collect()
    }

    /// Drops chunks of the eligible operations, halving the chunk size down to one.
    fn drop_chunks(&mut self, kept: &mut Vec<usize>, eligible: fn(&KeyOp) -> bool) {
        let count = kept.iter().filter(|&&index| eligible(&self.operations[index])).count();
        let mut size = count.div_ceil(2).max(1);
        loop {
            self.drop_chunks_of(kept, size, eligible);
            if size == 1 || self.steps_left == 0 {
                return;
            }
            size /= 2;
        }
    }

    /// One pass dropping chunks of `size` eligible operations; returns whether any went.
    fn drop_chunks_of(&mut self, kept: &mut Vec<usize>, size: usize, eligible: fn(&KeyOp) -> bool) -> bool {
        let mut dropped_any = false;
        let mut position = 0;
        while self.steps_left > 0 {
            let trial = self.without_chunk(kept, position, size, eligible);
            if trial.len() == kept.len() {
                break;
            }
            if self.fails(&trial) {
                *kept = trial;
                dropped_any = true;
            } else {
                position += size;
            }
        }
        dropped_any
    }

    /// `kept` without the eligible operations numbered `[position, position + size)`.
    fn without_chunk(&self, kept: &[usize], position: usize, size: usize, eligible: fn(&KeyOp) -> bool) -> Vec<usize> {
        let mut eligible_seen = 0;
        let mut trial = Vec::with_capacity(kept.len());
        for &index in kept {
            if eligible(&self.operations[index]) {
                eligible_seen += 1;
                if (position + 1..=position + size).contains(&eligible_seen) {
                    continue;
                }
            }
            trial.push(index);
        }
        trial
    }
}
