//! [`NodeObserver`]: what a node reports about its Raft state as it runs, for the simulator's
//! cluster-wide oracles (one leader per term, log matching, state machine safety, durable
//! state that only moves forward).
//!
//! The observer is handed in through [`crate::node::NodeParts`] (and the process hooks), never
//! reached through a static, so every simulated node reports to the observer of its own world
//! and a production node, which has none, pays one `Option` check per event.

use engine::{Entry, HardState, Index, Message, PersistedState, Raft, ReadId, ReadState, Snapshot};

/// Receives a node's events, in the order they happen. Every method is called from the node
/// loop with the loop's state as it is at that point; implementations must be quick and must
/// not call back into the node.
pub trait NodeObserver: std::fmt::Debug + Send + Sync + 'static {
    /// The node started (or restarted) from `recovered`, its durable state.
    fn started(&self, raft: &Raft, recovered: &PersistedState);

    /// A Ready's hard state and entries are durable (the fsync returned).
    fn persisted(&self, raft: &Raft, hard_state: Option<HardState>, entries: &[Entry]);

    /// A Raft message is leaving, whichever `Ready` field carried it (every message goes
    /// through this call, at the moment it leaves): whatever it promises must be durable by now.
    fn sending(&self, raft: &Raft, message: &Message);

    /// A Raft message from a peer is about to be stepped.
    fn receiving(&self, raft: &Raft, message: &Message);

    /// The engine accepted a read (`lease`: as a lease read) named `read_id`.
    fn read_requested(&self, raft: &Raft, read_id: ReadId, lease: bool);

    /// The engine handed out these reads as safe to answer.
    fn reads_released(&self, raft: &Raft, reads: &[ReadState]);

    /// Committed entries are applied to the state machine, in this order.
    fn applied(&self, raft: &Raft, entries: &[Entry]);

    /// The node's own snapshot is durable; durable entries up to `compacted_to` may be gone.
    fn snapshot_saved(&self, raft: &Raft, snapshot: &Snapshot, compacted_to: Index);

    /// A snapshot from the leader is durable and the state machine was restored from it.
    fn snapshot_installed(&self, raft: &Raft, snapshot: &Snapshot);

    /// The loop finished a turn: the role, term, commit and log are settled for now.
    fn turn_ended(&self, raft: &Raft);
}
