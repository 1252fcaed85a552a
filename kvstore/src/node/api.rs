//! What the RESP server may ask of the node, as a trait, so that the server can be tested
//! against a fake backend and the node against a fake server.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;

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

/// A membership change or leadership transfer an operator asks for (`RAFT.*` commands).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AdminRequest {
    /// Adds a node as a learner; its addresses are replicated with the membership.
    AddLearner { id: NodeId, raft_address: SocketAddr, client_address: SocketAddr },
    /// Makes a caught-up learner a voter (through a joint configuration).
    Promote(NodeId),
    /// Removes a voter (through a joint configuration) or a learner.
    Remove(NodeId),
    /// Hands leadership to a voter.
    Transfer(NodeId),
}

/// What a finished admin request answers.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AdminReply {
    /// The change is done (committed and applied, or the transfer happened).
    Done,
    /// The learner was added (or already was a member): every member's peer address, for a
    /// joining node to reach the cluster.
    Peers(BTreeMap<NodeId, SocketAddr>),
}

/// Why an admin request did not complete.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum AdminError {
    /// The request is invalid or cannot be done now; nothing changed.
    #[error("{reason}")]
    Refused { reason: String },
    /// No leader could be reached; nothing changed.
    #[error("{reason}")]
    Unavailable { reason: String },
    /// The change was proposed but not seen to complete in time: it may still complete.
    #[error("{reason}")]
    OutcomeUnknown { reason: String },
}

/// The membership as this node sees it, for `RAFT.STATUS` and `INFO`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MembershipStatus {
    /// The voters, and during a joint change the previous voters (empty otherwise).
    pub voters: Vec<NodeId>,
    pub outgoing_voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    /// Every member's peer and client addresses, where known.
    pub addresses: BTreeMap<NodeId, MemberAddresses>,
    /// As leader: how far each other member's log is known to match this node's.
    pub match_indexes: BTreeMap<NodeId, Index>,
    /// As leader: the voter leadership is being handed to.
    pub transfer_target: Option<NodeId>,
}

/// Where a member listens: its peer address and, if known, its client address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberAddresses {
    pub raft: SocketAddr,
    pub client: Option<SocketAddr>,
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
    pub membership: MembershipStatus,
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

    /// Changes the membership or moves leadership; answered once done (or failed).
    fn admin(&self, request: AdminRequest) -> impl Future<Output = Result<AdminReply, AdminError>> + Send;

    /// The node's Raft state now.
    fn status(&self) -> NodeStatus;
}
