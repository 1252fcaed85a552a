//! The safety properties of Raft, checked from outside the nodes after every operation.
//! Each check returns the violation it found, in words: the in-memory [`crate::testkit::Cluster`]
//! panics with it (so a property test can shrink the schedule), the simulator records it
//! against the seed.

use std::collections::BTreeMap;

use crate::message::{AppendOutcome, Message, MessageBody};
use crate::testkit::MemoryLog;
use crate::{Entry, Index, NodeId, Raft, ReadId, ReadState, Role, Term};

/// A broken safety property, described with what was seen.
pub type Violation = String;

/// Returns the violation `$($message)+` unless `$condition` holds.
macro_rules! ensure {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err(format!($($message)+));
        }
    };
}

/// What the cluster has ever shown, to compare each new observation against.
#[derive(Debug, Default)]
pub struct Oracles {
    leaders_by_term: BTreeMap<Term, NodeId>,
    /// Every entry any node ever considered committed, with the term in which it was first seen
    /// committed.
    committed: BTreeMap<Index, (Entry, Term)>,
    /// Every entry any node ever applied.
    applied: BTreeMap<Index, Entry>,
    votes: BTreeMap<(NodeId, Term), NodeId>,
    durable: BTreeMap<NodeId, crate::HardState>,
    commit_seen: BTreeMap<NodeId, Index>,
    applied_this_life: BTreeMap<NodeId, Index>,
    /// The leader whose completeness was last checked, and its term: a leader's log only
    /// grows within its term, so one check per term is enough.
    completeness_checked: BTreeMap<NodeId, Term>,
    /// Reads asked for and not yet released, with the highest index committed anywhere when
    /// they were asked for.
    reads_requested: BTreeMap<ReadId, Index>,
}

impl Oracles {
    /// Checks one live node: election safety, commit safety, commit on quorum and leader
    /// completeness. `durable_logs` are every node's durable storage.
    pub fn observe_node(&mut self, raft: &Raft, durable_logs: &BTreeMap<NodeId, &MemoryLog>) -> Result<(), Violation> {
        let id = raft.id();
        if raft.role() == Role::Leader {
            let leader = *self.leaders_by_term.entry(raft.term()).or_insert(id);
            ensure!(leader == id, "election safety: nodes {leader} and {id} both led term {}", raft.term());
            if self.completeness_checked.get(&id) != Some(&raft.term()) {
                self.check_leader_completeness(raft)?;
                self.completeness_checked.insert(id, raft.term());
            }
        }
        let seen = self.commit_seen.get(&id).copied().unwrap_or(0);
        ensure!(
            raft.commit_index() >= seen,
            "node {id}: commit index went back from {seen} to {}",
            raft.commit_index()
        );
        if raft.commit_index() > seen {
            self.commit_seen.insert(id, raft.commit_index());
            self.record_commits(raft, seen + 1)?;
            if raft.role() == Role::Leader {
                check_commit_on_quorum(raft, durable_logs)?;
            }
        }
        Ok(())
    }

    fn record_commits(&mut self, raft: &Raft, from: Index) -> Result<(), Violation> {
        // Entries a snapshot covers are checked when the snapshot is restored.
        let from = from.max(raft.log().first_index()).max(raft.log().snapshot_index() + 1);
        for index in from..=raft.commit_index() {
            let Some(entry) = raft.log().entry(index) else {
                return Err(format!("node {} committed index {index}, which is not in its log", raft.id()));
            };
            let (first, _) = self.committed.entry(index).or_insert_with(|| (entry.clone(), raft.term()));
            ensure!(first == entry, "commit safety: node {} committed a different entry at index {index}", raft.id());
        }
        Ok(())
    }

    /// Every entry committed before a leader's term is in that leader's log (Raft §5.4).
    fn check_leader_completeness(&self, raft: &Raft) -> Result<(), Violation> {
        for (index, (entry, commit_term)) in &self.committed {
            // What a snapshot covers is committed by definition; the rest must be held.
            if *commit_term < raft.term() && *index > raft.log().snapshot_index() {
                ensure!(
                    raft.log().entry(*index) == Some(entry),
                    "leader completeness: leader {} of term {} lacks committed entry {index}",
                    raft.id(),
                    raft.term()
                );
            }
        }
        Ok(())
    }

    /// A read was asked for: remember how far the cluster had committed.
    pub fn observe_read_requested(&mut self, read_id: ReadId) {
        let committed = self.committed.keys().next_back().copied().unwrap_or(0);
        self.reads_requested.insert(read_id, committed);
    }

    /// Read safety: a released read's index covers every entry committed anywhere before the
    /// read was asked for (so it sees every write acknowledged by then), and names an entry
    /// the releasing node has committed (so it sees nothing uncommitted).
    pub fn observe_read_released(&mut self, id: NodeId, read: ReadState, commit_index: Index) -> Result<(), Violation> {
        let Some(committed_when_asked) = self.reads_requested.remove(&read.id) else {
            return Err(format!("node {id} released read {} that nobody asked for (or twice)", read.id));
        };
        ensure!(
            read.index >= committed_when_asked,
            "read safety: node {id} released read {} at index {}, but {committed_when_asked} was committed when it was asked",
            read.id,
            read.index
        );
        ensure!(
            read.index <= commit_index,
            "read safety: node {id} released read {} at index {} beyond its commit index {commit_index}",
            read.id,
            read.index
        );
        Ok(())
    }

    /// No two nodes apply different entries at one index; each node applies in order.
    pub fn observe_apply(&mut self, id: NodeId, entries: &[Entry]) -> Result<(), Violation> {
        for entry in entries {
            let previous = self.applied_this_life.entry(id).or_insert(0);
            ensure!(entry.index == *previous + 1, "node {id} applied {} right after {previous}", entry.index);
            *previous = entry.index;
            let first = self.applied.entry(entry.index).or_insert_with(|| entry.clone());
            ensure!(first == entry, "state machine safety: node {id} applied a different entry at {}", entry.index);
        }
        Ok(())
    }

    /// A node's state machine was restored from a snapshot holding `entries` (the test state
    /// machine's image: every entry applied, from index 1). Each must be the one applied
    /// everywhere else at its index; the node goes on applying after the last.
    pub fn observe_snapshot_restored(&mut self, id: NodeId, entries: &[Entry]) -> Result<(), Violation> {
        for (position, entry) in entries.iter().enumerate() {
            ensure!(entry.index == position as Index + 1, "node {id}: snapshot image has a gap at {}", entry.index);
            let first = self.applied.entry(entry.index).or_insert_with(|| entry.clone());
            ensure!(first == entry, "state machine safety: node {id}'s snapshot differs at {}", entry.index);
        }
        self.applied_this_life.insert(id, entries.len() as Index);
        Ok(())
    }

    /// A node's state machine was replaced by a snapshot at `index` whose image the oracles
    /// cannot read (a real state machine's): it goes on applying after it.
    pub fn observe_state_machine_at(&mut self, id: NodeId, index: Index) {
        self.applied_this_life.insert(id, index);
    }

    /// A node restarted: its in-memory state machine starts over, its commit is the durable one.
    pub fn observe_restart(&mut self, id: NodeId, commit_index: Index) {
        self.applied_this_life.insert(id, 0);
        self.commit_seen.insert(id, commit_index);
    }

    /// The durable hard state moves forward only: term, then vote within a term, then commit.
    pub fn observe_durable(&mut self, id: NodeId, now: crate::HardState) -> Result<(), Violation> {
        if let Some(before) = self.durable.insert(id, now) {
            ensure!(now.term >= before.term, "node {id}: durable term went back from {} to {}", before.term, now.term);
            if now.term == before.term && before.voted_for.is_some() {
                ensure!(now.voted_for == before.voted_for, "node {id} changed its durable vote in term {}", now.term);
            }
            ensure!(now.commit_index >= before.commit_index, "node {id}: durable commit went back");
        }
        Ok(())
    }

    /// A message leaving after persistence must promise only what is durable: a granted vote
    /// is on disk (and is the only one in its term), an accepted append's entries are on disk.
    pub fn observe_sent_after_persist(&mut self, message: &Message, sender_log: &MemoryLog) -> Result<(), Violation> {
        match &message.body {
            MessageBody::VoteResponse { granted: true } => {
                let key = (message.from, message.term);
                let first = *self.votes.entry(key).or_insert(message.to);
                ensure!(first == message.to, "node {} voted twice in term {}", message.from, message.term);
                // Durable means: this vote is on disk, or a later term is (which rules out any
                // other vote in this term just as well).
                let durable = sender_log.hard_state;
                let vote_on_disk = (durable.term, durable.voted_for) == (message.term, Some(message.to));
                ensure!(
                    vote_on_disk || durable.term > message.term,
                    "node {} granted a vote in term {} that is not durable (disk: {durable:?})",
                    message.from,
                    message.term
                );
            }
            MessageBody::AppendResponse(AppendOutcome::Accepted { match_index }) => {
                ensure!(
                    sender_log.last_index() >= *match_index,
                    "node {} acknowledged entries up to {match_index} that are not durable",
                    message.from
                );
            }
            _ => {}
        }
        Ok(())
    }
}

/// A leader's commit index names an entry a quorum holds on disk.
fn check_commit_on_quorum(raft: &Raft, durable_logs: &BTreeMap<NodeId, &MemoryLog>) -> Result<(), Violation> {
    let index = raft.commit_index();
    let Some(term) = raft.log().term(index) else {
        return Err(format!("leader {} committed index {index}, which is not in its log", raft.id()));
    };
    let holds = |voter: NodeId| durable_logs.get(&voter).is_some_and(|log| log.holds(index, term));
    // The check runs after a whole turn of the node, in which the leader may have committed
    // under one configuration and then appended the next: either may be the one it used.
    let under_either = raft.membership().has_quorum(holds) || raft.membership_at(index).has_quorum(holds);
    ensure!(
        under_either,
        "commit on quorum: leader {} committed {index}, which no quorum of {:?} holds durably",
        raft.id(),
        raft.membership()
    );
    Ok(())
}

/// Log matching: if two logs hold an entry with the same index and term, they agree on every
/// entry up to it. Each log is contiguous but may start after index 1 (compaction); only the indexes both
/// hold are compared.
pub fn check_log_matching(logs: &[(NodeId, &[Entry])]) -> Result<(), Violation> {
    for (position, (first_id, first)) in logs.iter().enumerate() {
        for (second_id, second) in &logs[position + 1..] {
            let (Some(a), Some(b)) = (first.first(), second.first()) else { continue };
            let start = a.index.max(b.index);
            let first = first.get((start - a.index) as usize..).unwrap_or(&[]);
            let second = second.get((start - b.index) as usize..).unwrap_or(&[]);
            let common = first.len().min(second.len());
            let Some(last_same) = (0..common).rev().find(|&i| first[i].term == second[i].term) else {
                continue;
            };
            ensure!(
                first[..=last_same] == second[..=last_same],
                "log matching: nodes {first_id} and {second_id} share entry {} but differ before it",
                start + last_same as Index
            );
        }
    }
    Ok(())
}
