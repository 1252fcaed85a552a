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
//!    `c` on (twice as many, and so on, while the rest does not fail as described next). The operations invoked before `c` (the *context*) are replaced by the values the
//!    key could hold at `c` (found by the breadth-first sweep), and the rest is searched from
//!    each of these values in turn, the context's operations of unknown outcome still free to
//!    take effect later. The real value at `c` is one of them, so if the rest fails from each,
//!    the history fails. Without such an instant (or with too many values), nothing is cut.
//! 3. **Drop operations** after `c`: first try keeping only the last 1, 2, 4, ... operations
//!    to complete (the violation shows at the violation time, so its cause is usually among
//!    them), then drop greedily, in chunks of halving size (reads first, then any). A set of
//!    operations may go only if the rest still fails at the violation time *with every
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

/// The window left after summarizing the beginning keeps at least this many operations at
/// first. Small, because relaxing many operations of a window to an unknown outcome makes
/// its searches expensive; it is widened while it does not fail.
pub(crate) const WINDOW_OPERATIONS_MIN: usize = 1;

/// The window is widened (doubling) at most up to this many operations before giving up on
/// summarizing the beginning.
const WINDOW_OPERATIONS_MAX: usize = 256;

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
    /// The operations dropped from the window: the verdict holds with them relaxed to an
    /// unknown outcome.
    pub relaxed: Vec<usize>,
    /// Among the operations not in the window, the last to write each value the window's story
    /// needs (the context's values, those the window's reads saw, those its CASes expected):
    /// shown for context.
    pub writers: Vec<usize>,
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
    /// The history the verdict on the window rests on, which the explanation describes: from
    /// a value of the context from which the window fails at the violation time (rather than
    /// earlier, for a reason that value alone brings), else the first.
    pub(crate) fn searched(&self, operations: &[KeyOp], steps_max: u64) -> Vec<KeyOp> {
        let Some(context) = &self.context else {
            return trial(operations, None, &self.kept, &self.relaxed, self.cut_ns);
        };
        let trials = context
            .values
            .iter()
            .map(|value| trial(operations, Some((context, value)), &self.kept, &self.relaxed, self.cut_ns));
        let mut first = None;
        for candidate in trials {
            let blocked = frontier::search(&candidate, steps_max).blocked;
            if blocked.is_some_and(|(blocked, _)| candidate[blocked].completed_ns == Some(self.cut_ns)) {
                return candidate;
            }
            first.get_or_insert(candidate);
        }
        first.unwrap_or_default()
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
        let (relaxed, writers) = (Vec::new(), Vec::new());
        return Window {
            kept: all,
            cut_ns: u64::MAX,
            context: None,
            relaxed,
            writers,
            minimal: false,
            steps: shrinker.steps,
        };
    };
    shrinker.cut_ns = cut_ns;
    let until_cut: Vec<usize> = all.into_iter().filter(|&index| operations[index].invoked_ns <= cut_ns).collect();
    shrinker.summarize_beginning(&until_cut);
    shrinker.steps_cap = refutation_steps.saturating_mul(STEPS_CAP_FACTOR).max(STEPS_CAP_MIN).min(steps_max_per_search);
    let mut kept = shrinker.window.clone();
    shrinker.keep_the_last(&mut kept);
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
    let relaxed = shrinker.relaxed(&kept);
    let context = shrinker.context;
    let others: Vec<usize> =
        context.iter().flat_map(|context| context.operations.iter()).chain(&relaxed).copied().collect();
    let writers = last_writers(operations, context.as_ref(), &kept, &others);
    Window { kept, cut_ns, context, relaxed, writers, minimal, steps: shrinker.steps }
}

/// The last of `others` (in invocation order) writing each value the window's story needs:
/// the values the context leaves, those the window's reads saw, those its CASes expected.
fn last_writers(operations: &[KeyOp], context: Option<&Context>, kept: &[usize], others: &[usize]) -> Vec<usize> {
    let mut values: Vec<&Bytes> = context.iter().flat_map(|context| context.values.iter().flatten()).collect();
    for &index in kept {
        match (&operations[index].call, &operations[index].reply) {
            (KeyCall::Cas { expected, .. }, _) => values.push(expected),
            (_, Some(Return::Value(Some(value)))) => values.push(value),
            _ => {}
        }
    }
    let mut writers: Vec<usize> = values
        .into_iter()
        .filter_map(|value| {
            others.iter().rev().copied().find(|&index| match &operations[index].call {
                KeyCall::Set(written) | KeyCall::Cas { new: written, .. } => written == value,
                _ => false,
            })
        })
        .collect();
    writers.sort_unstable();
    writers.dedup();
    writers
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

    /// The earliest completion time at which the truncated history fails. The sweep of
    /// [`frontier`] breaks at the completion of some operation `o`: every truncation before it
    /// is linearizable (the sweep's configurations there give linearizations), so the answer
    /// is `o`'s completion if the truncation there fails, as it almost always does; else a
    /// binary search over the later completion times finds it.
    fn violation_time(&mut self, all: &[usize]) -> Option<u64> {
        let mut times: Vec<u64> = all
            .iter()
            .filter(|&&index| self.operations[index].reply.is_some())
            .filter_map(|&index| self.operations[index].completed_ns)
            .collect();
        times.sort_unstable();
        times.dedup();
        let swept = frontier::search(self.operations, self.steps_cap.min(self.steps_left));
        self.steps += swept.steps;
        self.steps_left = self.steps_left.saturating_sub(swept.steps);
        let earliest = swept.blocked.and_then(|(blocked, _)| self.operations[blocked].completed_ns);
        let mut low = earliest.map_or(0, |earliest| times.partition_point(|&time| time < earliest));
        let mut high = times.len().checked_sub(1)?;
        let fails_at = |shrinker: &mut Self, time: u64| {
            let operations = trial(shrinker.operations, None, all, &[], time);
            shrinker.verdict(&operations) == Verdict::NotLinearizable
        };
        if low < high && fails_at(self, times[low]) {
            return Some(times[low]);
        }
        if !fails_at(self, times[high]) {
            return None;
        }
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
        self.context = None;
        self.window = until_cut.to_vec();
        let mut splits = Vec::new();
        let mut window_operations_min = WINDOW_OPERATIONS_MIN;
        while window_operations_min <= WINDOW_OPERATIONS_MAX {
            match self.latest_quiet_split(until_cut, window_operations_min) {
                Some(split) if splits.last() != Some(&split) => splits.push(split),
                Some(_) => {}
                None => break,
            }
            window_operations_min *= 2;
        }
        // One sweep finds the values at every candidate instant, earliest first.
        let instants: Vec<u64> =
            splits.iter().rev().map(|&split| self.operations[until_cut[split]].invoked_ns).collect();
        let history: Vec<KeyOp> = until_cut.iter().map(|&index| self.operations[index].clone()).collect();
        let swept = frontier::search_with_checkpoints(&history, self.steps_cap.min(self.steps_left), &instants);
        self.steps += swept.steps;
        self.steps_left = self.steps_left.saturating_sub(swept.steps);
        for (&split, values) in splits.iter().zip(swept.values_at.iter().rev()) {
            let Some(values) = values.clone() else { continue };
            let start_ns = self.operations[until_cut[split]].invoked_ns;
            let operations = until_cut[..split].to_vec();
            self.context = Some(Context { start_ns, values, operations });
            self.window = until_cut[split..].to_vec();
            // Summarizing is more permissive (an unknown operation spent before `c` may be
            // spent again after it), so the window may not fail: then widen it.
            let window = self.window.clone();
            if self.fails(&window) {
                return;
            }
        }
        self.context = None;
        self.window = until_cut.to_vec();
    }

    /// The largest position in `until_cut` (in invocation order) such that every operation
    /// of known outcome before it completed before it was invoked, leaving at least
    /// `window_operations_min` operations from it on.
    fn latest_quiet_split(&self, until_cut: &[usize], window_operations_min: usize) -> Option<usize> {
        let last = until_cut.len().checked_sub(window_operations_min)?;
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

    /// Keeps only the last 1, 2, 4, ... operations of `kept` to complete (unknown ones by
    /// invocation), if that still fails.
    fn keep_the_last(&mut self, kept: &mut Vec<usize>) {
        let mut by_completion = kept.clone();
        let end = |operation: &KeyOp| operation.completed_ns.unwrap_or(operation.invoked_ns);
        by_completion.sort_by_key(|&index| std::cmp::Reverse((end(&self.operations[index]), index)));
        let mut count = 1;
        while count < by_completion.len() && self.steps_left > 0 {
            let trial = by_invocation(self.operations, by_completion[..count].to_vec());
            if self.fails(&trial) {
                *kept = trial;
                return;
            }
            count *= 2;
        }
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
