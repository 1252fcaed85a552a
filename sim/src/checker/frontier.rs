//! A second search for one key, breadth-first over time: "just-in-time" linearization
//! (Lowe, *Testing for linearizability*, 2017). The checker falls back to it when the
//! depth-first search of [`super::search`] runs long, which happens when refuting a long
//! history with many operations of unknown outcome.
//!
//! Why the depth-first search struggles there: it reaches configurations that spent *more*
//! unknown operations before those that spent fewer, so subsumption (see [`super::cache`])
//! cannot prune the latter, and every independent way of spending unknown operations is
//! explored again. Here all configurations live at the same point in time, so a dominated
//! one is dropped whichever came first.
//!
//! The sweep goes through the events in time order, keeping every reachable configuration:
//! the key's value, the running operations already linearized, and the unknown operations
//! spent. A call adds an operation to the running ones. A return of operation `o` keeps the
//! configurations that already placed `o`, and extends each other one by every canonical
//! sequence of running operations ending with `o` (the canonical form of
//! [`super::search`]: an unknown operation must be noticed by the one right after it). Among
//! configurations with the same value and the same running operations placed, only those
//! with a minimal set of spent unknown operations are kept. The history is linearizable iff
//! configurations remain after the last event.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasherDefault, DefaultHasher};

use bytes::Bytes;

use super::cache::is_subset;
use super::model::{self, Follows, Next, StateId, States};
use super::partition::KeyOp;
use super::search::Verdict;
use super::symmetry::previous_interchangeable;

/// Sequences of running operations longer than this are not explored (their length is
/// bounded by the number of running operations anyway; this bounds the recursion).
const SEQUENCE_LENGTH_MAX: usize = 2_000;

/// How the sweep ended.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub verdict: Verdict,
    pub steps: u64,
    /// When not linearizable: the operation whose completion no configuration could
    /// accommodate, and the values the key could hold just before (each once, in first-seen
    /// order, at most [`VALUES_MAX`]).
    pub blocked: Option<(usize, Vec<Option<Bytes>>)>,
    /// For each checkpoint asked for (see [`search_with_checkpoints`]) that the sweep reached:
    /// the values the key could hold just before the first event at or after it, or `None` if
    /// there are more than [`VALUES_MAX`].
    pub values_at: Vec<Option<Vec<Option<Bytes>>>>,
}

/// At most this many values are listed in an [`Outcome`].
const VALUES_MAX: usize = 64;

/// Searches `operations` within `steps_max` steps (each a candidate tried).
pub(crate) fn search(operations: &[KeyOp], steps_max: u64) -> Outcome {
    search_with_checkpoints(operations, steps_max, &[])
}

/// Searches `operations` within `steps_max` steps, noting the values the key could hold at
/// each of the `checkpoints` (instants, ascending).
pub(crate) fn search_with_checkpoints(operations: &[KeyOp], steps_max: u64, checkpoints: &[u64]) -> Outcome {
    let events = events(operations);
    let mut call_rank = vec![0; operations.len()];
    for (rank, &(_, operation)) in events.iter().filter(|(is_return, _)| !is_return).enumerate() {
        call_rank[operation] = rank;
    }
    let mut sweep = Sweep {
        operations,
        call_rank,
        previous_interchangeable: previous_interchangeable(operations),
        states: States::new(),
        steps: 0,
        steps_max,
        running_known: Vec::new(),
        running_unknown: Vec::new(),
    };
    sweep.run(&events, checkpoints)
}

/// A reachable configuration between two events.
#[derive(Clone, Debug)]
struct Configuration {
    state: StateId,
    /// Running operations of known outcome already linearized, sorted.
    placed: Vec<usize>,
    /// Operations of unknown outcome that took effect, sorted.
    spent: Vec<usize>,
}

/// The configurations after an event, deduplicated, dominated ones dropped.
#[derive(Debug, Default)]
struct Configurations {
    /// By value and running operations placed: the minimal sets of spent unknown operations.
    by_placement: BTreeMap<(StateId, Vec<usize>), Vec<Vec<usize>>>,
}

impl Configurations {
    fn insert(&mut self, state: StateId, placed: Vec<usize>, spent: Vec<usize>) {
        let minimal = self.by_placement.entry((state, placed)).or_default();
        if minimal.iter().any(|existing| is_subset(existing, &spent)) {
            return;
        }
        minimal.retain(|existing| !is_subset(&spent, existing));
        minimal.push(spent);
    }

    fn into_vec(self) -> Vec<Configuration> {
        let mut configurations = Vec::new();
        for ((state, placed), minimal) in self.by_placement {
            for spent in minimal {
                configurations.push(Configuration { state, placed: placed.clone(), spent });
            }
        }
        configurations
    }
}

/// The budget ran out.
#[derive(Debug)]
struct Exhausted;

/// What a sequence being extended has placed so far.
#[derive(Debug)]
struct Partial {
    state: StateId,
    placed: Vec<usize>,
    spent: Vec<usize>,
    /// The unknown operation placed last and the value before it, which the next operation
    /// must notice.
    restriction: Option<(usize, StateId)>,
    length: usize,
}

/// Sequences already extended during one closure: membership only, fixed hasher.
type Seen = HashSet<(StateId, Vec<usize>, Vec<usize>, Option<(usize, StateId)>), BuildHasherDefault<DefaultHasher>>;

#[derive(Debug)]
struct Sweep<'a> {
    operations: &'a [KeyOp],
    /// Each operation's position in invocation order, which orders commuting unknown ones.
    call_rank: Vec<usize>,
    /// See [`super::symmetry`].
    previous_interchangeable: Vec<Option<usize>>,
    states: States,
    steps: u64,
    steps_max: u64,
    running_known: Vec<usize>,
    running_unknown: Vec<usize>,
}

impl Sweep<'_> {
    fn run(&mut self, events: &[(bool, usize)], checkpoints: &[u64]) -> Outcome {
        let mut values_at = Vec::with_capacity(checkpoints.len());
        let mut configurations = vec![Configuration { state: States::ABSENT, placed: Vec::new(), spent: Vec::new() }];
        for &(is_return, operation) in events {
            let time = if is_return {
                self.operations[operation].completed_ns
            } else {
                Some(self.operations[operation].invoked_ns)
            };
            while checkpoints.get(values_at.len()).is_some_and(|&checkpoint| Some(checkpoint) <= time) {
                values_at.push(self.all_values(&configurations));
            }
            if !is_return {
                let running = if self.operations[operation].reply.is_some() {
                    &mut self.running_known
                } else {
                    &mut self.running_unknown
                };
                running.push(operation);
                continue;
            }
            let values_before = self.values(&configurations);
            configurations = match self.on_return(configurations, operation) {
                Ok(next) => next,
                Err(Exhausted) => {
                    return Outcome { verdict: Verdict::BudgetExceeded, steps: self.steps, blocked: None, values_at }
                }
            };
            if configurations.is_empty() {
                let blocked = Some((operation, values_before));
                return Outcome { verdict: Verdict::NotLinearizable, steps: self.steps, blocked, values_at };
            }
            self.running_known.retain(|&running| running != operation);
        }
        while values_at.len() < checkpoints.len() {
            values_at.push(self.all_values(&configurations));
        }
        Outcome { verdict: Verdict::Linearizable, steps: self.steps, blocked: None, values_at }
    }

    /// The distinct values of `configurations`, or `None` if there are more than
    /// [`VALUES_MAX`].
    fn all_values(&self, configurations: &[Configuration]) -> Option<Vec<Option<Bytes>>> {
        let values = self.values(configurations);
        (values.len() < VALUES_MAX || self.values_count(configurations) <= VALUES_MAX).then_some(values)
    }

    fn values_count(&self, configurations: &[Configuration]) -> usize {
        let mut states: Vec<StateId> = configurations.iter().map(|configuration| configuration.state).collect();
        states.sort_unstable();
        states.dedup();
        states.len()
    }

    /// The distinct values of `configurations`, in order, at most [`VALUES_MAX`].
    fn values(&self, configurations: &[Configuration]) -> Vec<Option<Bytes>> {
        let mut values: Vec<Option<Bytes>> = Vec::new();
        for configuration in configurations {
            let value = self.states.value(configuration.state);
            if values.len() < VALUES_MAX && !values.contains(value) {
                values.push(value.clone());
            }
        }
        values
    }

    /// The configurations in which `returned` has been linearized.
    fn on_return(
        &mut self,
        configurations: Vec<Configuration>,
        returned: usize,
    ) -> Result<Vec<Configuration>, Exhausted> {
        let mut next = Configurations::default();
        for configuration in configurations {
            if let Ok(position) = configuration.placed.binary_search(&returned) {
                let mut placed = configuration.placed;
                placed.remove(position);
                next.insert(configuration.state, placed, configuration.spent);
                continue;
            }
            let partial = Partial {
                state: configuration.state,
                placed: configuration.placed,
                spent: configuration.spent,
                restriction: None,
                length: 0,
            };
            self.extend(partial, returned, &mut next, &mut Seen::default())?;
        }
        Ok(next.into_vec())
    }

    /// Extends `partial` by every canonical sequence of running operations ending with
    /// `returned`, recording the configurations reached in `next`.
    fn extend(
        &mut self,
        partial: Partial,
        returned: usize,
        next: &mut Configurations,
        seen: &mut Seen,
    ) -> Result<(), Exhausted> {
        let key = (partial.state, partial.placed.clone(), partial.spent.clone(), partial.restriction);
        if partial.length >= SEQUENCE_LENGTH_MAX || !seen.insert(key) {
            return Ok(());
        }
        for index in 0..self.running_known.len() {
            let operation = self.running_known[index];
            if partial.placed.binary_search(&operation).is_ok() {
                continue;
            }
            let Some(state) = self.place(&partial, operation)? else { continue };
            if operation == returned {
                next.insert(state, partial.placed.clone(), partial.spent.clone());
                continue;
            }
            let placed = inserted(&partial.placed, operation);
            let extended =
                Partial { state, placed, spent: partial.spent.clone(), restriction: None, length: partial.length + 1 };
            self.extend(extended, returned, next, seen)?;
        }
        for index in 0..self.running_unknown.len() {
            let operation = self.running_unknown[index];
            let earlier_unspent = self.previous_interchangeable[operation]
                .is_some_and(|previous| partial.spent.binary_search(&previous).is_err());
            if earlier_unspent || partial.spent.binary_search(&operation).is_ok() {
                continue;
            }
            let Some(state) = self.place(&partial, operation)? else { continue };
            if state == partial.state {
                continue;
            }
            let spent = inserted(&partial.spent, operation);
            let restriction = Some((operation, partial.state));
            let extended =
                Partial { state, placed: partial.placed.clone(), spent, restriction, length: partial.length + 1 };
            self.extend(extended, returned, next, seen)?;
        }
        Ok(())
    }

    /// The value after placing `operation` next, if the model accepts its reply and it
    /// notices the unknown operation placed just before (if any).
    fn place(&mut self, partial: &Partial, operation: usize) -> Result<Option<StateId>, Exhausted> {
        self.steps += 1;
        if self.steps > self.steps_max {
            return Err(Exhausted);
        }
        let candidate = &self.operations[operation];
        let effect = model::step(&candidate.call, self.states.value(partial.state));
        if candidate.reply.as_ref().is_some_and(|reply| *reply != effect.reply) {
            return Ok(None);
        }
        if let Some((unknown, state_before)) = partial.restriction {
            let follows = model::follows(
                &candidate.call,
                candidate.reply.as_ref(),
                &effect,
                self.states.value(state_before),
                self.states.value(partial.state),
                &self.operations[unknown].call,
            );
            let allowed = match follows {
                Follows::Notices => true,
                Follows::Commutes => candidate.reply.is_none() && self.call_rank[unknown] < self.call_rank[operation],
                Follows::Droppable => false,
            };
            if !allowed {
                return Ok(None);
            }
        }
        Ok(Some(match effect.next {
            Next::Unchanged => partial.state,
            Next::Becomes(value) => self.states.intern(value),
        }))
    }
}

/// A copy of sorted `set` with `member` added.
fn inserted(set: &[usize], member: usize) -> Vec<usize> {
    let mut copy = Vec::with_capacity(set.len() + 1);
    let position = set.partition_point(|&existing| existing < member);
    copy.extend_from_slice(&set[..position]);
    copy.push(member);
    copy.extend_from_slice(&set[position..]);
    copy
}

/// Call and return events in time order, calls before returns at equal times (as in
/// [`super::search`]); operations of unknown outcome have only a call.
fn events(operations: &[KeyOp]) -> Vec<(bool, usize)> {
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(operations.len() * 2);
    for (index, operation) in operations.iter().enumerate() {
        events.push((operation.invoked_ns, false, index));
        if let (Some(_), Some(completed_ns)) = (&operation.reply, operation.completed_ns) {
            events.push((completed_ns, true, index));
        }
    }
    events.sort_unstable();
    events.into_iter().map(|(_, is_return, index)| (is_return, index)).collect()
}
