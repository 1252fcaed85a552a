//! The safety properties of Raft, checked from outside the nodes after every operation.
//! Each check returns the violation it found, in words: the in-memory [`crate::testkit::Cluster`]
//! panics with it (so a property test can shrink the schedule), the simulator records it
//! against the seed.

use std::collections::BTreeMap;

use crate::message::{AppendOutcome, Message, MessageBody};
use crate::testkit::leadership::{LeaderWatch, ReadAsked};
use crate::testkit::MemoryLog;
use crate::{Entry, Index, Membership, NodeId, Raft, ReadId, ReadState, Role, Term};

/// A broken safety property, described with what was seen.
pub type Violation = String;

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
    /// Reads asked for and not yet released, by node and read id, with the highest index
    /// committed anywhere when they were asked for and how the leader was asked.
    reads_requested: BTreeMap<(NodeId, ReadId), (Index, ReadAsked)>,
    /// Each leader's term as seen on the wire: rounds sent and echoed, members heard from.
    leaders: BTreeMap<NodeId, LeaderWatch>,
    /// Vote requests received, by (voter, candidate, term): whether the candidate's log was at
    /// least as up to date as the voter's when the request arrived.
    vote_requests: BTreeMap<(NodeId, NodeId, Term), bool>,
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
            let committed_before = self.committed.keys().next_back().copied().unwrap_or(0);
            self.commit_seen.insert(id, raft.commit_index());
            self.record_commits(raft, seen + 1)?;
            if raft.role() == Role::Leader {
                check_own_term_commit(raft, committed_before)?;
                check_commit_on_quorum(raft, durable_logs)?;
            }
        }
        if let Some(watch) = LeaderWatch::refresh(&mut self.leaders, raft) {
            watch.check_quorum_contact(raft)?;
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

    /// Leader `raft` accepted read `read_id` (with `lease`, as a lease read): remember how far
    /// the cluster had committed and which heartbeat rounds the leader had sent.
    pub fn observe_read_requested(&mut self, raft: &Raft, read_id: ReadId, lease: bool) {
        let committed = self.committed.keys().next_back().copied().unwrap_or(0);
        let asked = match LeaderWatch::refresh(&mut self.leaders, raft) {
            Some(watch) => watch.read_asked(raft, lease),
            None => ReadAsked::of_a_non_leader(raft.term()),
        };
        self.reads_requested.insert((raft.id(), read_id), (committed, asked));
    }

    /// Read safety: a released read's index covers every entry committed anywhere before the
    /// read was asked for (so it sees every write acknowledged by then), and names an entry
    /// the releasing node has committed (so it sees nothing uncommitted); and the leader
    /// proved it still led after the read arrived, by a quorum's echo of a later heartbeat
    /// round, or (a lease read) by a lease that a quorum's echoes still cover.
    pub fn observe_read_released(&mut self, raft: &Raft, read: ReadState) -> Result<(), Violation> {
        let (id, commit_index) = (raft.id(), raft.commit_index());
        let Some((committed_when_asked, asked)) = self.reads_requested.remove(&(id, read.id)) else {
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
        LeaderWatch::refresh(&mut self.leaders, raft);
        match self.leaders.get(&id) {
            Some(watch) => watch.check_read_release(raft, read.id, asked),
            None => Err(format!("read safety: node {id} released read {} without ever leading", read.id)),
        }
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

    /// A node restarted: its in-memory state machine starts over, its commit is the durable one,
    /// and it leads nothing and waits for no read.
    pub fn observe_restart(&mut self, id: NodeId, commit_index: Index) {
        self.applied_this_life.insert(id, 0);
        self.commit_seen.insert(id, commit_index);
        self.leaders.remove(&id);
        self.reads_requested.retain(|&(node, _), _| node != id);
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

    /// A message arrived at `receiver` and is about to be stepped: remember what later checks
    /// of its answer need.
    pub fn observe_received(&mut self, receiver: &Raft, message: &Message) {
        if let MessageBody::VoteRequest { last_log_index, last_log_term, .. } = message.body {
            let log = receiver.log();
            let up_to_date = (last_log_term, last_log_index) >= (log.last_term(), log.last_index());
            self.vote_requests.insert((receiver.id(), message.from, message.term), up_to_date);
        }
        if let Some(watch) = LeaderWatch::refresh(&mut self.leaders, receiver) {
            watch.on_received(receiver.now_ms(), message);
        }
    }

    /// A message leaves `sender`, whichever `Ready` field carried it: whatever it promises must
    /// already be on the sender's disk (`sender_disk`). A granted vote is durable, the only one
    /// in its term, and for a candidate at least as up to date as the voter; an accepted append
    /// names entries that are durable, accepted in a term that is durable too (a restart into an older term could let a stale leader
    /// overwrite them); a vote request follows the candidate's own durable vote.
    pub fn observe_sent(&mut self, sender: &Raft, message: &Message, sender_disk: &MemoryLog) -> Result<(), Violation> {
        if let Some(watch) = LeaderWatch::refresh(&mut self.leaders, sender) {
            watch.on_sent(sender.now_ms(), message);
        }
        let durable = sender_disk.hard_state;
        let (from, term) = (message.from, message.term);
        match &message.body {
            MessageBody::VoteResponse { granted: true } => {
                let first = *self.votes.entry((from, term)).or_insert(message.to);
                ensure!(first == message.to, "node {from} voted twice in term {term}");
                // Durable means: this vote is on disk, or a later term is (which rules out any
                // other vote in this term just as well).
                let vote_on_disk = (durable.term, durable.voted_for) == (term, Some(message.to));
                ensure!(
                    vote_on_disk || durable.term > term,
                    "node {from} granted a vote in term {term} that is not durable (disk: {durable:?})"
                );
                let up_to_date = self.vote_requests.get(&(from, message.to, term));
                ensure!(
                    up_to_date != Some(&false),
                    "election restriction: node {from} granted its vote in term {term} to node {}, whose log is behind its own",
                    message.to
                );
            }
            MessageBody::VoteRequest { .. } => {
                let own_vote_on_disk = (durable.term, durable.voted_for) == (term, Some(from));
                ensure!(
                    own_vote_on_disk || durable.term > term,
                    "node {from} asked for votes in term {term} before its own vote was durable (disk: {durable:?})"
                );
            }
            MessageBody::AppendResponse(AppendOutcome::Accepted { match_index }) => {
                ensure!(
                    sender_disk.last_index() >= *match_index,
                    "node {from} acknowledged entries up to {match_index} that are not durable"
                );
                ensure!(
                    durable.term >= term,
                    "node {from} accepted entries in term {term} before that term was durable (disk: {durable:?})"
                );
            }
            _ => {}
        }
        Ok(())
    }
}

/// Figure 8 (Raft §5.4.2): a leader commits by counting replicas only entries of its own term;
/// earlier entries commit with them. So a leader's commit index never newly lands on an entry
/// of an earlier term (one no node had seen committed before).
fn check_own_term_commit(raft: &Raft, committed_before: Index) -> Result<(), Violation> {
    let index = raft.commit_index();
    let term = raft.log().term(index);
    ensure!(
        term == Some(raft.term()) || index <= committed_before,
        "figure 8: leader {} of term {} committed index {index} of term {term:?} by counting replicas",
        raft.id(),
        raft.term()
    );
    Ok(())
}

/// After installing a snapshot, the membership in force is the snapshot's, unless the log
/// holds a later configuration entry (then that one's).
pub fn check_membership_after_install(raft: &Raft, snapshot_membership: &Membership) -> Result<(), Violation> {
    let later_configuration =
        raft.log().entries().iter().rev().filter(|entry| entry.index > raft.log().snapshot_index()).find_map(|entry| {
            match &entry.kind {
                crate::EntryKind::Configuration(membership) => Some(membership),
                _ => None,
            }
        });
    let expected = later_configuration.unwrap_or(snapshot_membership);
    ensure!(
        raft.membership() == expected,
        "membership: node {} installed a snapshot at {} and has membership {:?}, but the configuration in force is {:?}",
        raft.id(),
        raft.log().snapshot_index(),
        raft.membership(),
        expected
    );
    Ok(())
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
