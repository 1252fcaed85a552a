//! Reference histories: a simulated single-copy key-value store, which is linearizable by
//! construction, driven by concurrent clients with random latencies and random failed and
//! unknown outcomes. The checker's tests and benchmark use it; any history it produces must
//! be accepted.
//!
//! Each operation takes effect at one instant between its invocation and its completion, on
//! one store. A failed operation never takes effect. An operation of unknown outcome takes
//! effect or not (even after its client stopped waiting, which is what a lost reply looks
//! like). Deterministic for a given [`Workload`], seed included.
//!
//! The store applies calls through the checker's own model of a key, so these histories
//! cannot reveal a bug in that model: the model has unit tests of its own, and the searches
//! are held to an independent brute-force reference.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::cache::mix64;
use super::model::{self, KeyCall, Next};
use crate::history::{Call, Operation, Outcome, Return};

/// The shape of a generated history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    pub seed: u64,
    pub clients: u64,
    /// Keys `key0000`, `key0001`, ...
    pub keys: u64,
    pub operations: usize,
    /// Each operation waits up to this long before taking effect, and as long again before
    /// its reply arrives; clients think up to this long between operations.
    pub latency_ns_max: u64,
    /// Per thousand operations: how many fail, how many end with an unknown outcome, how
    /// many are RANGE.
    pub failed_per_mille: u64,
    pub unknown_per_mille: u64,
    pub range_per_mille: u64,
    /// Values drawn from this many (`v0`, `v1`, ...) so that writes repeat values, or `None`
    /// for a value unique to each write.
    pub values_distinct: Option<u64>,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            seed: 0,
            clients: 5,
            keys: 3,
            operations: 200,
            latency_ns_max: 1_000,
            failed_per_mille: 30,
            unknown_per_mille: 30,
            range_per_mille: 30,
            values_distinct: None,
        }
    }
}

/// Runs the workload against the simulated store and returns the history, ids in
/// invocation order.
pub fn generate(workload: &Workload) -> Vec<Operation> {
    assert!(workload.clients > 0 && workload.keys > 0 && workload.latency_ns_max > 0, "an empty workload");
    let mut simulation = Simulation {
        workload,
        random: Random(workload.seed),
        store: BTreeMap::new(),
        queue: BTreeMap::new(),
        next_event: 0,
        history: Vec::new(),
        pending: Vec::new(),
        writes: 0,
    };
    for client in 0..workload.clients {
        let at = simulation.random.below(workload.latency_ns_max);
        simulation.schedule(at, Event::Invoke { client });
    }
    while let Some(((now, _), event)) = simulation.queue.pop_first() {
        simulation.handle(now, event);
    }
    simulation.history
}

/// How an operation ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Completes,
    Fails,
    Unknown { applies: bool },
}

#[derive(Debug)]
enum Event {
    Invoke { client: u64 },
    Apply { operation: usize },
    Complete { operation: usize },
}

#[derive(Debug)]
struct Simulation<'a> {
    workload: &'a Workload,
    random: Random,
    store: BTreeMap<Bytes, Bytes>,
    /// Events by (time, order of scheduling): the earliest first, ties in scheduling order.
    queue: BTreeMap<(u64, u64), Event>,
    next_event: u64,
    history: Vec<Operation>,
    /// Per operation: its fate, and its reply once it took effect.
    pending: Vec<(Fate, Option<Return>)>,
    writes: u64,
}

impl Simulation<'_> {
    fn schedule(&mut self, at: u64, event: Event) {
        self.queue.insert((at, self.next_event), event);
        self.next_event += 1;
    }

    fn handle(&mut self, now: u64, event: Event) {
        match event {
            Event::Invoke { client } => self.invoke(now, client),
            Event::Apply { operation } => {
                let reply = self.apply(&self.history[operation].call.clone());
                self.pending[operation].1 = Some(reply);
            }
            Event::Complete { operation } => self.complete(now, operation),
        }
    }

    fn invoke(&mut self, now: u64, client: u64) {
        if self.history.len() >= self.workload.operations {
            return;
        }
        let call = self.random_call(client);
        let operation = self.history.len();
        self.history.push(Operation {
            id: operation as u64,
            client,
            invoked_ns: now,
            completed_ns: None,
            call,
            outcome: Outcome::Unknown,
        });
        let fate = self.random_fate();
        self.pending.push((fate, None));
        let latency = self.workload.latency_ns_max;
        let applied_at = now + 1 + self.random.below(latency);
        match fate {
            Fate::Completes => {
                self.schedule(applied_at, Event::Apply { operation });
                let completed_at = applied_at + self.random.below(latency);
                self.schedule(completed_at, Event::Complete { operation });
            }
            Fate::Fails => {
                let completed_at = now + 1 + self.random.below(latency);
                self.schedule(completed_at, Event::Complete { operation });
            }
            Fate::Unknown { applies } => {
                // The effect may land after the client gave up waiting.
                if applies {
                    let late_applied_at = now + 1 + self.random.below(3 * latency);
                    self.schedule(late_applied_at, Event::Apply { operation });
                }
                let gave_up_at = now + 1 + self.random.below(2 * latency);
                self.schedule(gave_up_at, Event::Complete { operation });
            }
        }
    }

    fn complete(&mut self, now: u64, operation: usize) {
        let (fate, reply) = self.pending[operation].clone();
        let record = &mut self.history[operation];
        record.completed_ns = Some(now);
        record.outcome = match fate {
            Fate::Completes => Outcome::Ok(reply.expect("a completing operation took effect first")),
            Fate::Fails => Outcome::Failed,
            Fate::Unknown { .. } => Outcome::Unknown,
        };
        let client = record.client;
        let think = self.random.below(self.workload.latency_ns_max);
        self.schedule(now + think, Event::Invoke { client });
    }

    fn random_fate(&mut self) -> Fate {
        let roll = self.random.below(1000);
        if roll < self.workload.failed_per_mille {
            Fate::Fails
        } else if roll < self.workload.failed_per_mille + self.workload.unknown_per_mille {
            Fate::Unknown { applies: self.random.below(2) == 0 }
        } else {
            Fate::Completes
        }
    }

    fn random_call(&mut self, client: u64) -> Call {
        let key = key_named(self.random.below(self.workload.keys));
        if self.random.below(1000) < self.workload.range_per_mille {
            let first = self.random.below(self.workload.keys);
            let span = 1 + self.random.below(4);
            return Call::Range { start: key_named(first), end: key_named(first + span) };
        }
        match self.random.below(100) {
            0..=39 => Call::Get(key),
            40..=64 => Call::Set(key, self.value(client)),
            65..=71 => Call::Del(key),
            72..=83 => {
                // Half the time the value the key holds now, which may change before it applies.
                let expected = match self.store.get(&key) {
                    Some(current) if self.random.below(2) == 0 => current.clone(),
                    _ => self.value(client),
                };
                Call::Cas { key, expected, new: self.value(client) }
            }
            84..=91 => Call::Append(key, self.value(client)),
            _ => Call::Incr(key),
        }
    }

    fn value(&mut self, client: u64) -> Bytes {
        self.writes += 1;
        match self.workload.values_distinct {
            Some(distinct) => Bytes::from(format!("v{}", self.random.below(distinct.max(1)))),
            None => Bytes::from(format!("c{client}w{}", self.writes)),
        }
    }

    /// Applies a call to the store through the checker's own model of one key.
    fn apply(&mut self, call: &Call) -> Return {
        let (key, key_call) = match call {
            Call::Range { start, end } => {
                let pairs = self.store.range(start.clone()..end.clone()).map(|(k, v)| (k.clone(), v.clone())).collect();
                return Return::Pairs(pairs);
            }
            Call::Get(key) => (key, KeyCall::Get),
            Call::Set(key, value) => (key, KeyCall::Set(value.clone())),
            Call::Del(key) => (key, KeyCall::Del),
            Call::Cas { key, expected, new } => (key, KeyCall::Cas { expected: expected.clone(), new: new.clone() }),
            Call::Append(key, value) => (key, KeyCall::Append(value.clone())),
            Call::Incr(key) => (key, KeyCall::Incr),
        };
        let effect = model::step(&key_call, &self.store.get(key).cloned());
        match effect.next {
            Next::Unchanged => {}
            Next::Becomes(Some(value)) => {
                self.store.insert(key.clone(), value);
            }
            Next::Becomes(None) => {
                self.store.remove(key);
            }
        }
        effect.reply
    }
}

fn key_named(number: u64) -> Bytes {
    Bytes::from(format!("key{number:04}"))
}

/// A small deterministic generator (SplitMix64).
#[derive(Debug)]
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        // The modulo bias is irrelevant for generating test histories.
        mix64(self.0) % bound.max(1)
    }
}
