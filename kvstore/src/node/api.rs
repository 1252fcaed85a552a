//! What the RESP server may ask of the node, as a trait, so that the server can be tested
//! against a fake backend and the node against a fake server.

use std::future::Future;

use engine::{Index, NodeId, Role, Term};

use crate::state::{Query, Reply, Request, SessionId};

/// How a read is served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum ReadMode {
    /// The read observes every write acknowledged before it began (the default): the leader
    /// confirms with one heartbeat round that it still leads (ReadIndex), and the read is
    /// served once the state machine has applied the leader's commit index.
    #[default]
    Linearizable,
    /// Linearizable as long as the nodes' clocks drift apart by less than the configured bound
    /// over an election timeout: the leader serves the read under its lease, without a round.
    Lease,
    /// Linearizable, served by the node the client is connected to: a follower asks the leader
    /// for a read index and answers once it has applied that far. Spreads read load.
    Follower,
    /// Served from this node's state machine as it is, without asking anyone: fast, possibly
    /// old, and not linearizable. Clients opt in per connection.
    Stale,
}

impl ReadMode {
    pub const ALL: [ReadMode; 4] = [ReadMode::Linearizable, ReadMode::Lease, ReadMode::Follower, ReadMode::Stale];

    /// The name `READMODE`, the configuration and `INFO` use.
    pub fn name(self) -> &'static str {
        match self {
            ReadMode::Linearizable => "linearizable",
            ReadMode::Lease => "lease",
            ReadMode::Follower => "follower",
            ReadMode::Stale => "stale",
        }
    }

    /// Parses a name, in any case.
    pub fn parse(name: &str) -> Option<ReadMode> {
        ReadMode::ALL.into_iter().find(|mode| mode.name().eq_ignore_ascii_case(name))
    }
}

/// Why a write got no reply from the state machine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum WriteError {
    /// The write certainly did not take effect; the client may retry it.
    #[error("{reason}")]
    NotApplied { reason: String },
    /// The write may or may not have taken effect, and never will be known to this client
    /// (for example, the leader changed and a retry under the same session was refused).
    #[error("{reason}")]
    OutcomeUnknown { reason: String },
}

/// Why a read got no reply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ReadError {
    #[error("{reason}")]
    Unavailable { reason: String },
}

/// A snapshot of the node's Raft state, for INFO and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    pub id: NodeId,
    pub role: Role,
    pub term: Term,
    pub leader_id: Option<NodeId>,
    pub commit_index: Index,
    pub applied_index: Index,
    pub last_log_index: Index,
    /// Entries held in the node's log.
    pub log_entries: u64,
    pub voters: Vec<NodeId>,
    /// The last index the latest snapshot covers (0: none yet); the log before it is gone.
    pub snapshot_index: Index,
    /// Snapshots this node took of its own state machine, and installed from a leader, since
    /// it started.
    pub snapshots_saved: u64,
    pub snapshots_installed: u64,
}

/// The node as the server sees it. Cheap to clone: one per connection.
pub trait Backend: Clone + Send + Sync + 'static {
    /// Registers a client session (a replicated write); its id names every later write of
    /// the session, so that a write retried after a leader change applies once.
    fn register_session(&self) -> impl Future<Output = Result<SessionId, WriteError>> + Send;

    /// Replicates a write and returns the state machine's reply once it is applied.
    fn write(&self, request: Request) -> impl Future<Output = Result<Reply, WriteError>> + Send;

    /// Runs a read in the given mode.
    fn read(&self, query: Query, mode: ReadMode) -> impl Future<Output = Result<Reply, ReadError>> + Send;

    /// The node's Raft state now.
    fn status(&self) -> NodeStatus;
}
