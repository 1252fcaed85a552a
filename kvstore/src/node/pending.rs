//! Client requests the node has accepted and not yet answered, and where each one stands.
//!
//! A write moves between three places until it is answered or its deadline passes:
//! waiting (no leader known, or about to be retried), proposed here at some `(index, term)`, or
//! forwarded to the leader. Because every write carries its client session's `(session,
//! sequence)`, submitting it again after a leader change is safe: the state machine applies it
//! at most once and returns the cached reply to the repeat.

use std::collections::{BTreeMap, VecDeque};

use engine::{Index, NodeId, Term};
use tokio::sync::oneshot;

use crate::node::api::{ReadError, WriteError};
use crate::state::{Query, Reply, Request};

/// Where an answer goes: a local connection, or the follower that forwarded the request.
#[derive(Debug)]
pub enum Responder<T> {
    Local(oneshot::Sender<T>),
    Peer { node: NodeId, forward_id: u64 },
}

/// A write and everything needed to finish it.
#[derive(Debug)]
pub struct PendingWrite {
    pub request: Request,
    pub responder: Responder<Result<Reply, WriteError>>,
    pub deadline_ms: u64,
    /// Whether any attempt may have reached a log: past that point, a timeout means the
    /// outcome is unknown rather than "not applied".
    pub maybe_applied: bool,
}

/// A read and everything needed to finish it.
#[derive(Debug)]
pub struct PendingRead {
    pub query: Query,
    pub responder: Responder<Result<Reply, ReadError>>,
    pub deadline_ms: u64,
}

/// A request this node forwarded to a leader, waiting for the answer.
#[derive(Debug)]
pub enum Forwarded {
    Write { write: PendingWrite, leader: NodeId, sent_ms: u64 },
    Read { read: PendingRead, leader: NodeId, sent_ms: u64 },
}

/// Everything in flight on this node.
#[derive(Debug, Default)]
pub struct Pending {
    /// Writes and reads with no attempt under way: they go out at the next opportunity.
    pub waiting_writes: VecDeque<PendingWrite>,
    pub waiting_reads: VecDeque<PendingRead>,
    /// Writes proposed on this node (as leader), by log index.
    pub proposed_writes: BTreeMap<Index, (Term, PendingWrite)>,
    /// Reads waiting for the barrier entry at this index (proposed in this term) to apply.
    pub barrier_reads: BTreeMap<Index, (Term, Vec<PendingRead>)>,
    /// Requests forwarded to a leader, by forward id.
    pub forwarded: BTreeMap<u64, Forwarded>,
    pub next_forward_id: u64,
}

impl Pending {
    pub fn allocate_forward_id(&mut self) -> u64 {
        self.next_forward_id += 1;
        self.next_forward_id
    }

    /// Forwarded requests whose leader is no longer the one we know, or that went unanswered
    /// for `patience_ms`: they go back to waiting, to be sent again.
    pub fn take_stale_forwards(&mut self, leader: Option<NodeId>, now_ms: u64, patience_ms: u64) {
        let stale: Vec<u64> = self
            .forwarded
            .iter()
            .filter(|(_, forwarded)| {
                let (sent_to, sent_ms) = match forwarded {
                    Forwarded::Write { leader, sent_ms, .. } | Forwarded::Read { leader, sent_ms, .. } => {
                        (*leader, *sent_ms)
                    }
                };
                Some(sent_to) != leader || now_ms >= sent_ms + patience_ms
            })
            .map(|(&id, _)| id)
            .collect();
        for id in stale {
            match self.forwarded.remove(&id).expect("listed above") {
                Forwarded::Write { write, .. } => self.waiting_writes.push_back(write),
                Forwarded::Read { read, .. } => self.waiting_reads.push_back(read),
            }
        }
    }

    /// Removes every request whose deadline passed, for the caller to answer with an error.
    pub fn take_expired(&mut self, now_ms: u64) -> (Vec<PendingWrite>, Vec<PendingRead>) {
        let mut writes = Vec::new();
        let mut reads = Vec::new();
        let expired = |deadline_ms: u64| now_ms >= deadline_ms;
        drain_where(&mut self.waiting_writes, |write| expired(write.deadline_ms), &mut writes);
        drain_where(&mut self.waiting_reads, |read| expired(read.deadline_ms), &mut reads);
        let proposed: Vec<Index> =
            self.proposed_writes.iter().filter(|(_, (_, write))| expired(write.deadline_ms)).map(|(&i, _)| i).collect();
        for index in proposed {
            writes.push(self.proposed_writes.remove(&index).expect("listed above").1);
        }
        for (_, read_batch) in self.barrier_reads.values_mut() {
            let mut kept = Vec::new();
            for read in read_batch.drain(..) {
                if expired(read.deadline_ms) {
                    reads.push(read);
                } else {
                    kept.push(read);
                }
            }
            *read_batch = kept;
        }
        self.barrier_reads.retain(|_, (_, read_batch)| !read_batch.is_empty());
        let forwarded: Vec<u64> = self
            .forwarded
            .iter()
            .filter(|(_, forwarded)| match forwarded {
                Forwarded::Write { write, .. } => expired(write.deadline_ms),
                Forwarded::Read { read, .. } => expired(read.deadline_ms),
            })
            .map(|(&id, _)| id)
            .collect();
        for id in forwarded {
            match self.forwarded.remove(&id).expect("listed above") {
                Forwarded::Write { write, .. } => writes.push(write),
                Forwarded::Read { read, .. } => reads.push(read),
            }
        }
        (writes, reads)
    }
}

fn drain_where<T>(queue: &mut VecDeque<T>, predicate: impl Fn(&T) -> bool, into: &mut Vec<T>) {
    let mut kept = VecDeque::with_capacity(queue.len());
    for item in queue.drain(..) {
        if predicate(&item) {
            into.push(item);
        } else {
            kept.push_back(item);
        }
    }
    *queue = kept;
}
