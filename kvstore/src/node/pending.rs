//! Client requests the node has accepted and not yet answered, and where each one stands.
//!
//! A write moves between three places until it is answered or its deadline passes:
//! waiting (no leader known, or about to be retried), proposed here at some `(index, term)`, or
//! forwarded to the leader. Because every write carries its client session's `(session,
//! sequence)`, submitting it again after a leader change is safe: the state machine applies it
//! at most once and returns the cached reply to the repeat.
//!
//! A read waits, then (as leader) asks the engine for a read index, or (as a follower in
//! `follower` mode) asks the leader for one, or is forwarded; once it has an index it waits
//! for the state machine to apply that far. Reads change nothing, so retrying them is free.

use std::collections::{BTreeMap, VecDeque};

use engine::{Index, NodeId, ReadId, Term};
use tokio::sync::oneshot;

use crate::node::api::{ReadError, ReadMode, WriteError};
use crate::node::driver::PeerSender;
use crate::node::peer::{ForwardedOutcome, PeerMessage};
use crate::state::{Query, Reply, Request};

/// Where an answer goes: a local connection, or the follower that forwarded the request.
#[derive(Debug)]
pub enum Responder<T> {
    Local(oneshot::Sender<T>),
    Peer { node: NodeId, forward_id: u64 },
}

impl<T> Responder<T> {
    /// Hands `outcome` to whoever waits for it; a follower gets it through `peers`, wrapped by
    /// `forwarded` into its kind of [`ForwardedOutcome`]. A local client that went away is
    /// no error.
    pub fn answer(self, outcome: T, peers: &impl PeerSender, forwarded: fn(T) -> ForwardedOutcome) {
        match self {
            Responder::Local(reply) => {
                let _ = reply.send(outcome);
            }
            Responder::Peer { node, forward_id } => {
                peers.send(node, PeerMessage::ForwardReply { id: forward_id, outcome: forwarded(outcome) });
            }
        }
    }
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
    pub mode: ReadMode,
    pub responder: Responder<Result<Reply, ReadError>>,
    pub deadline_ms: u64,
}

/// Who waits for a read index this node (as leader) asked the engine for.
#[derive(Debug)]
pub enum ReadIndexWaiter {
    /// Reads answered here, from local clients or forwarded by followers.
    Reads(Vec<PendingRead>),
    /// A follower serving `follower`-mode reads, answered with the index itself.
    Follower { node: NodeId, request_id: u64 },
}

/// `follower`-mode reads for which this node asked the leader for a read index.
#[derive(Debug)]
pub struct FollowerReads {
    pub leader: NodeId,
    pub sent_ms: u64,
    pub reads: Vec<PendingRead>,
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
    /// Read indexes asked of the engine (as leader, in the term given), by read id.
    pub read_indexes: BTreeMap<ReadId, (Term, ReadIndexWaiter)>,
    /// Read indexes asked of the leader for `follower`-mode reads, by request id.
    pub follower_reads: BTreeMap<u64, FollowerReads>,
    /// Reads with a safe index, waiting for the state machine to apply that far.
    pub reads_awaiting_apply: BTreeMap<Index, Vec<PendingRead>>,
    /// Requests forwarded to a leader, by forward id.
    pub forwarded: BTreeMap<u64, Forwarded>,
    /// The last id handed out. It starts from the wall clock in nanoseconds, so that the ids
    /// of one run of the process never meet those of an earlier run: a leader may still answer
    /// a forward the node sent before it restarted, and that answer must not match a new
    /// request that happens to reuse the id (it would hand a client another command's reply).
    pub next_forward_id: u64,
}

impl Pending {
    /// A fresh id for a forward, a read index or a read-index request (one counter for all).
    pub fn allocate_forward_id(&mut self) -> u64 {
        self.next_forward_id += 1;
        self.next_forward_id
    }

    /// Read indexes asked for in another term, or while this node no longer leads, will never
    /// be handed out: their reads go back to waiting, and the followers that asked are
    /// returned, to be told to ask again.
    pub fn abandon_read_indexes(&mut self, term: Term, leading: bool) -> Vec<(NodeId, u64)> {
        let abandoned: Vec<ReadId> = self
            .read_indexes
            .iter()
            .filter(|(_, (asked_term, _))| !leading || *asked_term != term)
            .map(|(&id, _)| id)
            .collect();
        let mut followers = Vec::new();
        for id in abandoned {
            match self.read_indexes.remove(&id).expect("listed above").1 {
                ReadIndexWaiter::Reads(reads) => self.waiting_reads.extend(reads),
                ReadIndexWaiter::Follower { node, request_id } => followers.push((node, request_id)),
            }
        }
        followers
    }

    /// The reads whose index the state machine has now applied.
    pub fn take_reads_applied_by(&mut self, applied_index: Index) -> Vec<PendingRead> {
        let later = self.reads_awaiting_apply.split_off(&(applied_index + 1));
        let ready = std::mem::replace(&mut self.reads_awaiting_apply, later);
        ready.into_values().flatten().collect()
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
        let stale_reads: Vec<u64> = self
            .follower_reads
            .iter()
            .filter(|(_, asked)| Some(asked.leader) != leader || now_ms >= asked.sent_ms + patience_ms)
            .map(|(&id, _)| id)
            .collect();
        for id in stale_reads {
            let asked = self.follower_reads.remove(&id).expect("listed above");
            self.waiting_reads.extend(asked.reads);
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
        for (_, waiter) in self.read_indexes.values_mut() {
            if let ReadIndexWaiter::Reads(batch) = waiter {
                take_expired_reads(batch, now_ms, &mut reads);
            }
        }
        self.read_indexes.retain(|_, (_, waiter)| !matches!(waiter, ReadIndexWaiter::Reads(batch) if batch.is_empty()));
        for asked in self.follower_reads.values_mut() {
            take_expired_reads(&mut asked.reads, now_ms, &mut reads);
        }
        self.follower_reads.retain(|_, asked| !asked.reads.is_empty());
        for batch in self.reads_awaiting_apply.values_mut() {
            take_expired_reads(batch, now_ms, &mut reads);
        }
        self.reads_awaiting_apply.retain(|_, batch| !batch.is_empty());
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

/// Moves the reads of `batch` whose deadline has passed into `into`.
fn take_expired_reads(batch: &mut Vec<PendingRead>, now_ms: u64, into: &mut Vec<PendingRead>) {
    let (expired, kept): (Vec<PendingRead>, Vec<PendingRead>) =
        batch.drain(..).partition(|read| now_ms >= read.deadline_ms);
    into.extend(expired);
    *batch = kept;
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
