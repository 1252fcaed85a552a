//! The vocabulary of the engine: node ids, terms, indexes, entries and hard state.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Identifies a node of the cluster. Zero is reserved for "no node".
pub type NodeId = u64;

/// A Raft term. Terms start at zero on a fresh node and only grow.
pub type Term = u64;

/// A position in the replicated log. The first entry has index 1; index 0 means "before the log".
pub type Index = u64;

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub term: Term,
    pub index: Index,
    pub kind: EntryKind,
}

/// What an entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// A command for the state machine, opaque to the engine.
    Normal(Bytes),
    /// Appended by every new leader: committing it commits everything before it (Raft §5.4.2),
    /// and it lets the leader learn its commit index without waiting for a client write.
    Noop,
    /// The membership from this entry on. The latest one in a node's log is in force,
    /// committed or not, as the Raft dissertation (§4.1) prescribes.
    Configuration(Membership),
}

impl Entry {
    /// The size the engine charges an entry against its byte limits. It counts the payload
    /// plus a fixed overhead, so that empty entries still cost something.
    pub fn size_bytes(&self) -> usize {
        const OVERHEAD_BYTES: usize = 24;
        let payload = match &self.kind {
            EntryKind::Normal(data) => data.len(),
            EntryKind::Noop => 0,
            EntryKind::Configuration(membership) => {
                8 * membership.members().len() + membership.metadata.values().map(Bytes::len).sum::<usize>()
            }
        };
        OVERHEAD_BYTES + payload
    }
}

/// Who takes part in the cluster. `voters` decide (elect, commit); during a joint change
/// (Raft dissertation §4.3) `outgoing_voters` hold the previous voters and every decision
/// needs a majority of both sets. `learners` receive the log but never vote or count.
/// `metadata` is opaque to the engine: what the driver attached to a member when it was
/// added (Tally: its addresses), replicated with the membership and dropped with the member.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub voters: BTreeSet<NodeId>,
    pub outgoing_voters: BTreeSet<NodeId>,
    pub learners: BTreeSet<NodeId>,
    pub metadata: BTreeMap<NodeId, Bytes>,
}

impl Membership {
    /// A plain membership of `voters`, no learners, not joint.
    pub fn new(voters: impl IntoIterator<Item = NodeId>) -> Self {
        Membership { voters: voters.into_iter().collect(), ..Membership::default() }
    }

    /// Whether `id` votes, in either half of a joint change.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.outgoing_voters.contains(&id)
    }

    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.contains(&id)
    }

    /// Whether `id` is a voter or a learner.
    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.is_learner(id)
    }

    /// Whether a joint change is in progress.
    pub fn is_joint(&self) -> bool {
        !self.outgoing_voters.is_empty()
    }

    /// Every voter of either half, in order.
    pub fn all_voters(&self) -> BTreeSet<NodeId> {
        self.voters.union(&self.outgoing_voters).copied().collect()
    }

    /// Every voter and learner, in order.
    pub fn members(&self) -> BTreeSet<NodeId> {
        self.all_voters().union(&self.learners).copied().collect()
    }

    /// Whether the nodes for which `agrees` holds are a majority of the voters, and, during a
    /// joint change, also of the outgoing voters.
    pub fn has_quorum(&self, agrees: impl Fn(NodeId) -> bool) -> bool {
        let majority_of =
            |set: &BTreeSet<NodeId>| set.is_empty() || set.iter().filter(|&&id| agrees(id)).count() > set.len() / 2;
        !self.voters.is_empty() && majority_of(&self.voters) && majority_of(&self.outgoing_voters)
    }

    /// The highest value a quorum has reached, each voter having reached `value_of(voter)`:
    /// during a joint change, the lower of the two halves' answers.
    pub fn quorum_value(&self, value_of: impl Fn(NodeId) -> u64) -> u64 {
        let of_set = |set: &BTreeSet<NodeId>| {
            let mut values: Vec<u64> = set.iter().map(|&id| value_of(id)).collect();
            values.sort_unstable_by(|a, b| b.cmp(a));
            values.get(set.len() / 2).copied().unwrap_or(u64::MAX)
        };
        let value = of_set(&self.voters).min(of_set(&self.outgoing_voters));
        if value == u64::MAX {
            0
        } else {
            value
        }
    }
}

/// A change of membership a leader can be asked for; see [`crate::Raft::propose_conf_change`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfChange {
    /// A new node receives the log without voting; `metadata` goes into the membership.
    AddLearner { id: NodeId, metadata: Bytes },
    /// A learner that caught up becomes a voter (through a joint change).
    Promote(NodeId),
    /// A voter (through a joint change) or a learner leaves.
    Remove(NodeId),
}

/// The state that must be durable before a node acts on it: the current term, the vote cast in
/// it, and the commit index (kept so that a restart need not re-learn it before applying).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub term: Term,
    pub voted_for: Option<NodeId>,
    pub commit_index: Index,
}

/// What a snapshot covers: the state after applying every entry up to `(index, term)`, and
/// the voting membership in force at that index (the latest configuration entry at or before
/// it). Installing a snapshot must bring its membership along, or a node would go on with
/// the membership its log held before (a known openraft bug).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub index: Index,
    pub term: Term,
    pub membership: Membership,
}

/// A snapshot: its position, and the state machine's image, opaque to the engine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    pub data: Bytes,
}

/// What a node restarts from: everything its driver had made durable.
#[derive(Clone, Debug, Default)]
pub struct PersistedState {
    pub hard_state: HardState,
    /// The latest durable snapshot, if any. The state machine restarts from its data.
    pub snapshot: Option<Snapshot>,
    /// The durable log, contiguous: from index 1 without a snapshot, otherwise starting at or
    /// before the snapshot's index + 1 (entries the snapshot covers may still be there).
    pub entries: Vec<Entry>,
    /// How far the driver's state machine has already applied: at least the snapshot's index
    /// (a state machine kept only in memory restarts from the snapshot).
    pub applied_index: Index,
}

/// The role a node plays in its current term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Follower,
    /// PreVote's probe (Raft dissertation §9.6): asks whether it could win before raising its term.
    PreCandidate,
    Candidate,
    Leader,
}
