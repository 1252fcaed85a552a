//! The vocabulary of the engine: node ids, terms, indexes, entries and hard state.

use std::collections::BTreeSet;

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
    /// The voting membership from this entry on. The latest one in a node's log is in force,
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
            EntryKind::Configuration(membership) => 8 * membership.voters.len(),
        };
        OVERHEAD_BYTES + payload
    }
}

/// The set of nodes whose votes count.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub voters: BTreeSet<NodeId>,
}

impl Membership {
    pub fn new(voters: impl IntoIterator<Item = NodeId>) -> Self {
        Membership { voters: voters.into_iter().collect() }
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
    }

    /// How many votes (or acknowledgements) make a majority.
    pub fn quorum_size(&self) -> usize {
        self.voters.len() / 2 + 1
    }
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
