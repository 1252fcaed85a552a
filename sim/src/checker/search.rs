//! The Wing–Gong–Lowe search over one key's sub-history, in the form Lowe and porcupine use.
//!
//! The history is a doubly linked list of call and return events in time order. At each step
//! the search may linearize any operation whose call comes before the first return still in
//! the list (no operation still pending completed before it was invoked). Linearizing one
//! applies it to the model, checks its reply, and lifts its two events out of the list;
//! reaching a return event means every way forward failed, so the search backtracks, putting
//! the last operation back and trying the next candidate after it. A cache of explored
//! configurations (see [`super::cache`]) keeps it from exploring the same one twice.
//!
//! Operations of unknown outcome have no return event: they sit in a list of their own and
//! are candidates whenever they were invoked before the first remaining return. They never
//! block the search, and are simply left out when every known operation is placed.
//!
//! Left alone, they would also make refuting a history exponential: one that never took
//! effect stays a candidate at every later step. So the search only builds linearizations in
//! a canonical form, where an unknown operation `u` (placed at value `s`) is immediately
//! followed by an operation `c` that *notices* it:
//! - `u` is not droppable: without `u`, `c` would give a different reply or leave a different
//!   value (this also rules out a `u` overwritten unseen, or one that changes nothing);
//! - `u` does not commute with `c`: placing `u` after `c` would change `c`'s reply or the
//!   value after both; when `c` is itself unknown and they commute, the one invoked first
//!   comes first.
//!
//! Every linearization can be rewritten into this form (drop droppable unknown operations and
//! trailing ones, move unknown ones later past operations they commute with; each rewrite
//! shortens the order or moves a known operation earlier, so rewriting ends), and the reply of
//! every operation stays the same, so the search loses nothing. Interchangeable unknown
//! operations are also spent in invocation order (see [`super::symmetry`]), which rewrites
//! into too. The restriction on the next step is part of the cached configuration. Operations of known outcome are tried before
//! unknown ones, so a history that needs none of the unknown operations is accepted without
//! placing any.

use bytes::Bytes;

use super::cache::{Cache, LinearizedSet, Restriction};
use super::model::{self, Effect, Follows, Next, StateId, States};
use super::partition::KeyOp;
use super::symmetry::previous_interchangeable;
use crate::history::Return;

/// The end of a list.
const NIL: u32 = u32::MAX;

/// How a search ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Linearizable,
    NotLinearizable,
    /// The step budget ran out first: nothing is known.
    BudgetExceeded,
}

/// What a search found, and what it cost.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub verdict: Verdict,
    /// Candidate operations tried, including those the model or the cache refused.
    pub steps: u64,
    pub cache_entries: usize,
    /// With `explain`, when not linearizable: the deepest point the search reached.
    pub dead_end: Option<DeadEnd>,
}

/// The deepest point of a failed search: the longest consistent order found, and why no
/// operation could follow it.
#[derive(Debug)]
pub(crate) struct DeadEnd {
    /// Indices into the searched operations, in the order they took effect.
    pub order: Vec<usize>,
    /// The key's value after `order`.
    pub value: Option<Bytes>,
    /// Every known operation that could have come next, with the reply it would have had
    /// (`None` when its reply fits but every continuation failed).
    pub refused: Vec<(usize, Option<Return>)>,
    /// The operation that completed first among those not yet placed: it had to come before
    /// every operation invoked after it completed.
    pub due: Option<usize>,
    /// How many known operations `order` holds: dead ends are compared by it.
    depth: usize,
}

/// The first round of [`decide`] gives each search this many steps per operation (a
/// linearizable history usually takes one or two)...
const FIRST_ROUND_STEPS_PER_OPERATION: u64 = 10;

/// ...plus this many; each later round four times as many.
const FIRST_ROUND_STEPS_MIN: u64 = 10_000;

/// Decides whether `operations` are linearizable within `steps_max` steps, by the depth-first
/// search and the breadth-first sweep of [`super::frontier`] in turn, in rounds of growing
/// budget. The depth-first search is fastest at finding a linearization; the sweep at
/// refuting long histories full of unknown outcomes. Alternating, whichever suits the history
/// settles it at no more than a small constant factor of its own cost.
pub(crate) fn decide(operations: &[KeyOp], steps_max: u64) -> Outcome {
    let operation_count = u64::try_from(operations.len()).unwrap_or(u64::MAX);
    let mut round_steps =
        operation_count.saturating_mul(FIRST_ROUND_STEPS_PER_OPERATION).saturating_add(FIRST_ROUND_STEPS_MIN);
    let mut steps = 0;
    let mut cache_entries = 0;
    loop {
        let depth_first = search(operations, round_steps.min(steps_max - steps), false);
        steps += depth_first.steps.min(steps_max - steps);
        cache_entries = cache_entries.max(depth_first.cache_entries);
        if depth_first.verdict != Verdict::BudgetExceeded {
            return Outcome { steps, cache_entries, ..depth_first };
        }
        if steps >= steps_max {
            return Outcome { verdict: Verdict::BudgetExceeded, steps, cache_entries, dead_end: None };
        }
        let swept = super::frontier::search(operations, round_steps.min(steps_max - steps));
        steps += swept.steps.min(steps_max - steps);
        if swept.verdict != Verdict::BudgetExceeded || steps >= steps_max {
            return Outcome { verdict: swept.verdict, steps, cache_entries, dead_end: None };
        }
        round_steps = round_steps.saturating_mul(4);
    }
}

/// Searches for a linearization of `operations` within `steps_max` steps; with `explain`,
/// remembers the deepest dead end (meant for small windows).
pub(crate) fn search(operations: &[KeyOp], steps_max: u64, explain: bool) -> Outcome {
    let mut search = Search::new(operations, steps_max, explain);
    let verdict = search.run();
    let dead_end = if verdict == Verdict::NotLinearizable { search.dead_end.take() } else { None };
    Outcome { verdict, steps: search.steps, cache_entries: search.cache.len(), dead_end }
}

/// A doubly linked list over nodes `0..len`, with a head sentinel at index `len`.
#[derive(Debug)]
struct Links {
    next: Vec<u32>,
    previous: Vec<u32>,
}

impl Links {
    fn chain(len: usize) -> Links {
        let head = len as u32;
        let next = (0..=head)
            .map(|node| {
                if node + 1 < head {
                    node + 1
                } else if node == head && len > 0 {
                    0
                } else {
                    NIL
                }
            })
            .collect();
        let previous = (0..=head)
            .map(|node| {
                if node == head {
                    NIL
                } else if node == 0 {
                    head
                } else {
                    node - 1
                }
            })
            .collect();
        Links { next, previous }
    }

    fn head(&self) -> u32 {
        (self.next.len() - 1) as u32
    }

    fn first(&self) -> u32 {
        self.next[self.head() as usize]
    }

    fn next(&self, node: u32) -> u32 {
        self.next[node as usize]
    }

    fn unlink(&mut self, node: u32) {
        let (previous, next) = (self.previous[node as usize], self.next[node as usize]);
        self.next[previous as usize] = next;
        if next != NIL {
            self.previous[next as usize] = previous;
        }
    }

    /// Puts back a node unlinked last (links are restored in the reverse order of removal).
    fn relink(&mut self, node: u32) {
        let (previous, next) = (self.previous[node as usize], self.next[node as usize]);
        self.next[previous as usize] = node;
        if next != NIL {
            self.previous[next as usize] = node;
        }
    }
}

/// A node of the event list: the call or the return of a known operation.
#[derive(Debug)]
struct Event {
    /// Position of the event in time order among all events, unknown calls included.
    sequence: u32,
    /// The known operation, by its number in invocation order.
    known: u32,
    is_return: bool,
}

/// An operation of known outcome: its index in the input and its two events.
#[derive(Debug)]
struct Known {
    operation: usize,
    call_node: u32,
    return_node: u32,
}

/// An operation of unknown outcome: its index in the input and its call's position in time.
#[derive(Debug)]
struct Unknown {
    operation: usize,
    sequence: u32,
}

#[derive(Clone, Copy, Debug)]
enum Candidate {
    Known(u32),
    Unknown(u32),
}

/// Where the enumeration of candidates at the current depth stands.
#[derive(Clone, Copy, Debug)]
enum Cursor {
    /// At this node of the event list (calls are candidates until the first return).
    Events(u32),
    /// At this node of the unknown list; candidates must be invoked before `before`.
    Unknown { node: u32, before: u32 },
}

/// One linearized operation, with what is needed to undo it.
#[derive(Debug)]
struct Frame {
    candidate: Candidate,
    state_before: StateId,
    ceiling_before: u32,
}

#[derive(Debug)]
struct Search<'a> {
    operations: &'a [KeyOp],
    events: Vec<Event>,
    event_links: Links,
    known: Vec<Known>,
    unknown: Vec<Unknown>,
    unknown_links: Links,
    set: LinearizedSet,
    states: States,
    state: StateId,
    stack: Vec<Frame>,
    known_linearized: usize,
    cache: Cache,
    steps: u64,
    steps_max: u64,
    explain: bool,
    dead_end: Option<DeadEnd>,
    /// See [`super::symmetry`]; indices into `operations`.
    previous_interchangeable: Vec<Option<usize>>,
    /// Whether each operation of unknown outcome is currently spent, by index into `operations`.
    spent: Vec<bool>,
}

impl<'a> Search<'a> {
    fn new(operations: &'a [KeyOp], steps_max: u64, explain: bool) -> Search<'a> {
        let (events, known, unknown) = build_events(operations);
        let (event_count, known_count, unknown_count) = (events.len(), known.len(), unknown.len());
        Search {
            operations,
            events,
            event_links: Links::chain(event_count),
            known,
            unknown,
            unknown_links: Links::chain(unknown_count),
            set: LinearizedSet::new(known_count),
            states: States::new(),
            state: States::ABSENT,
            stack: Vec::new(),
            known_linearized: 0,
            cache: Cache::default(),
            steps: 0,
            steps_max,
            explain,
            dead_end: None,
            previous_interchangeable: previous_interchangeable(operations),
            spent: vec![false; operations.len()],
        }
    }

    fn run(&mut self) -> Verdict {
        let mut cursor = Cursor::Events(self.event_links.first());
        loop {
            if self.event_links.first() == NIL {
                return Verdict::Linearizable;
            }
            match self.next_candidate(cursor) {
                Some((candidate, after)) => {
                    self.steps += 1;
                    if self.steps > self.steps_max {
                        return Verdict::BudgetExceeded;
                    }
                    cursor =
                        if self.try_linearize(candidate) { Cursor::Events(self.event_links.first()) } else { after };
                }
                None => {
                    if self.explain && self.restriction().is_none() {
                        self.note_dead_end();
                    }
                    let Some(frame) = self.stack.pop() else { return Verdict::NotLinearizable };
                    cursor = self.undo(frame);
                }
            }
        }
    }

    /// The candidate at `cursor` or after it, and where to continue if it is refused.
    fn next_candidate(&self, cursor: Cursor) -> Option<(Candidate, Cursor)> {
        let (node, before) = match cursor {
            Cursor::Events(node) if node != NIL && !self.events[node as usize].is_return => {
                let candidate = Candidate::Known(self.events[node as usize].known);
                return Some((candidate, Cursor::Events(self.event_links.next(node))));
            }
            Cursor::Events(node) => {
                let before = if node == NIL { u32::MAX } else { self.events[node as usize].sequence };
                (self.unknown_links.first(), before)
            }
            Cursor::Unknown { node, before } => (node, before),
        };
        if node == NIL || self.unknown[node as usize].sequence >= before {
            return None;
        }
        Some((Candidate::Unknown(node), Cursor::Unknown { node: self.unknown_links.next(node), before }))
    }

    fn operation_of(&self, candidate: Candidate) -> &'a KeyOp {
        &self.operations[self.operation_index(candidate)]
    }

    /// The restriction the last linearized operation puts on the next one.
    fn restriction(&self) -> Restriction {
        match self.stack.last() {
            Some(Frame { candidate: Candidate::Unknown(unknown), state_before, .. }) => Some((*unknown, *state_before)),
            _ => None,
        }
    }

    /// Linearizes `candidate` next if the model accepts its reply, it notices the unknown
    /// operation placed just before (if any), and the configuration it leads to is new.
    fn try_linearize(&mut self, candidate: Candidate) -> bool {
        let operation_index = self.operation_index(candidate);
        if self.previous_interchangeable[operation_index].is_some_and(|previous| !self.spent[previous]) {
            return false;
        }
        let operation = self.operation_of(candidate);
        let effect = model::step(&operation.call, self.states.value(self.state));
        if operation.reply.as_ref().is_some_and(|reply| *reply != effect.reply) {
            return false;
        }
        if let Some((unknown, state_before)) = self.restriction() {
            if !self.notices(candidate, &effect, unknown, state_before) {
                return false;
            }
        }
        let next_state = match effect.next {
            Next::Unchanged => self.state,
            Next::Becomes(value) => self.states.intern(value),
        };
        let restriction = match candidate {
            // An unknown operation that changes nothing is droppable whatever follows.
            Candidate::Unknown(_) if next_state == self.state => return false,
            Candidate::Unknown(unknown) => Some((unknown, self.state)),
            Candidate::Known(_) => None,
        };
        let frame = Frame { candidate, state_before: self.state, ceiling_before: self.set.ceiling() };
        self.lift(candidate);
        if !self.cache.visit(&self.set, next_state, restriction) {
            self.unlift(&frame);
            return false;
        }
        self.stack.push(frame);
        self.state = next_state;
        true
    }

    /// Whether `candidate`, whose effect at the current value is `effect`, notices the unknown
    /// operation `unknown` placed just before it at value `state_before` (see the module
    /// notes): it is neither droppable nor movable past `candidate`.
    fn notices(&self, candidate: Candidate, effect: &Effect, unknown: u32, state_before: StateId) -> bool {
        let operation = self.operation_of(candidate);
        let unknown_call = &self.operations[self.unknown[unknown as usize].operation].call;
        let follows = model::follows(
            &operation.call,
            operation.reply.as_ref(),
            effect,
            self.states.value(state_before),
            self.states.value(self.state),
            unknown_call,
        );
        match (follows, candidate) {
            (Follows::Notices, _) => true,
            (Follows::Commutes, Candidate::Unknown(next)) => unknown < next,
            (Follows::Commutes, Candidate::Known(_)) | (Follows::Droppable, _) => false,
        }
    }

    /// Takes back the last linearized operation; returns where to resume the enumeration.
    fn undo(&mut self, frame: Frame) -> Cursor {
        self.unlift(&frame);
        self.state = frame.state_before;
        match frame.candidate {
            Candidate::Known(known) => Cursor::Events(self.event_links.next(self.known[known as usize].call_node)),
            Candidate::Unknown(unknown) => {
                Cursor::Unknown { node: self.unknown_links.next(unknown), before: self.first_return_sequence() }
            }
        }
    }

    fn lift(&mut self, candidate: Candidate) {
        match candidate {
            Candidate::Known(known) => {
                let Known { call_node, return_node, .. } = self.known[known as usize];
                self.event_links.unlink(call_node);
                self.event_links.unlink(return_node);
                self.set.insert_known(known);
                self.known_linearized += 1;
            }
            Candidate::Unknown(unknown) => {
                self.unknown_links.unlink(unknown);
                self.set.insert_unknown(unknown);
                self.spent[self.unknown[unknown as usize].operation] = true;
            }
        }
    }

    fn unlift(&mut self, frame: &Frame) {
        match frame.candidate {
            Candidate::Known(known) => {
                let Known { call_node, return_node, .. } = self.known[known as usize];
                self.event_links.relink(return_node);
                self.event_links.relink(call_node);
                self.set.remove_known(known, frame.ceiling_before);
                self.known_linearized -= 1;
            }
            Candidate::Unknown(unknown) => {
                self.unknown_links.relink(unknown);
                self.set.remove_unknown(unknown);
                self.spent[self.unknown[unknown as usize].operation] = false;
            }
        }
    }

    /// The time position of the first return event still in the list.
    fn first_return_sequence(&self) -> u32 {
        let mut node = self.event_links.first();
        while node != NIL && !self.events[node as usize].is_return {
            node = self.event_links.next(node);
        }
        if node == NIL {
            u32::MAX
        } else {
            self.events[node as usize].sequence
        }
    }

    /// Remembers this dead end if it is the deepest so far (counting known operations).
    fn note_dead_end(&mut self) {
        if self.dead_end.as_ref().is_some_and(|deepest| deepest.depth >= self.known_linearized) {
            return;
        }
        let mut refused = Vec::new();
        let mut due = None;
        let mut node = self.event_links.first();
        while node != NIL {
            let event = &self.events[node as usize];
            let operation = self.known[event.known as usize].operation;
            if event.is_return {
                due = Some(operation);
                break;
            }
            let effect = model::step(&self.operations[operation].call, self.states.value(self.state));
            let misfit = (self.operations[operation].reply.as_ref() != Some(&effect.reply)).then_some(effect.reply);
            refused.push((operation, misfit));
            node = self.event_links.next(node);
        }
        let order: Vec<usize> = self.stack.iter().map(|frame| self.operation_index(frame.candidate)).collect();
        let value = self.states.value(self.state).clone();
        self.dead_end = Some(DeadEnd { order, value, refused, due, depth: self.known_linearized });
    }

    fn operation_index(&self, candidate: Candidate) -> usize {
        match candidate {
            Candidate::Known(known) => self.known[known as usize].operation,
            Candidate::Unknown(unknown) => self.unknown[unknown as usize].operation,
        }
    }
}

/// The event list in time order, the known operations numbered by invocation, and the
/// unknown ones in invocation order. At equal times calls come before returns, so that two
/// operations touching the same instant count as concurrent (the checker never rules out an
/// order that the clocks cannot).
fn build_events(operations: &[KeyOp]) -> (Vec<Event>, Vec<Known>, Vec<Unknown>) {
    let mut timeline: Vec<(u64, bool, usize)> = Vec::with_capacity(operations.len() * 2);
    for (index, operation) in operations.iter().enumerate() {
        timeline.push((operation.invoked_ns, false, index));
        if let (Some(_), Some(completed_ns)) = (&operation.reply, operation.completed_ns) {
            assert!(completed_ns >= operation.invoked_ns, "an operation completed before it was invoked");
            timeline.push((completed_ns, true, index));
        }
    }
    timeline.sort_unstable();
    let mut events = Vec::with_capacity(timeline.len());
    let mut known: Vec<Known> = Vec::new();
    let mut unknown = Vec::new();
    let mut known_of_operation = vec![NIL; operations.len()];
    for (sequence, &(_, is_return, operation)) in timeline.iter().enumerate() {
        let sequence = u32::try_from(sequence).expect("fewer than 2^32 events per key");
        let node = events.len() as u32;
        if operations[operation].reply.is_none() {
            unknown.push(Unknown { operation, sequence });
        } else if is_return {
            let number = known_of_operation[operation];
            known[number as usize].return_node = node;
            events.push(Event { sequence, known: number, is_return });
        } else {
            let number = known.len() as u32;
            known_of_operation[operation] = number;
            known.push(Known { operation, call_node: node, return_node: NIL });
            events.push(Event { sequence, known: number, is_return });
        }
    }
    (events, known, unknown)
}
