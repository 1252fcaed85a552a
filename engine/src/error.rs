//! One small error type per verb of the engine's API.

use thiserror::Error;

use crate::config::ConfigError;
use crate::types::{Index, NodeId};

/// Why [`crate::Raft::propose`] refused a proposal. Nothing was appended.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ProposeError {
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader { leader_hint: Option<NodeId> },
    #[error("entry of {size_bytes} bytes exceeds the limit of {limit_bytes} bytes")]
    EntryTooLarge { size_bytes: usize, limit_bytes: usize },
    #[error("{uncommitted_bytes} bytes are waiting to commit, the limit is {limit_bytes}: retry later")]
    UncommittedLimitReached { uncommitted_bytes: usize, limit_bytes: usize },
    #[error("leadership is being transferred: retry later")]
    TransferInProgress,
}

/// Why [`crate::Raft::propose_conf_change`] refused a change. Nothing was appended.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfChangeError {
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader { leader_hint: Option<NodeId> },
    #[error("another membership change is under way (or the leader has not committed in its term yet): retry once it is done")]
    ChangeInProgress,
    #[error("leadership is being transferred: retry later")]
    TransferInProgress,
    #[error("node id 0 is reserved")]
    ZeroNodeId,
    #[error("node {id} is already a member")]
    AlreadyMember { id: NodeId },
    #[error("node {id} is not a learner: add it as a learner first")]
    NotALearner { id: NodeId },
    #[error("learner {id} has not caught up with the log yet: retry when it has")]
    LearnerBehind { id: NodeId },
    #[error("node {id} is the last voter: a cluster needs one")]
    LastVoter { id: NodeId },
    #[error("node {id} is not a member")]
    UnknownNode { id: NodeId },
}

/// Why [`crate::Raft::transfer_leadership`] did not start a transfer.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TransferError {
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader { leader_hint: Option<NodeId> },
    #[error("this node already leads")]
    AlreadyLeader,
    #[error("node {id} is not a voter")]
    NotAVoter { id: NodeId },
    #[error("a leadership transfer is already under way")]
    TransferInProgress,
}

/// Why [`crate::Raft::step`] dropped a message. The engine's state is unchanged; the driver
/// should log it, since a correct peer never sends such a message.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum StepError {
    #[error("message addressed to node {to} reached node {me}")]
    WrongRecipient { to: NodeId, me: NodeId },
    #[error("message claims to come from this node ({from}) or from no node")]
    ImpossibleSender { from: NodeId },
    #[error("malformed message from node {from}: {reason}")]
    Malformed { from: NodeId, reason: &'static str },
    #[error("node {from} sent entries that conflict with committed entry {index}")]
    ConflictsWithCommitted { from: NodeId, index: Index },
}

/// Why [`crate::Raft::campaign`] did not start an election.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CampaignError {
    #[error("already the leader")]
    AlreadyLeader,
    #[error("this node is not a voter")]
    NotAVoter,
}

/// Why [`crate::Raft::on_applied`] refused an acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ApplyError {
    #[error("index {index} was reported applied, but only entries up to {handed_out} were handed out")]
    NotHandedOut { index: Index, handed_out: Index },
}

/// Why a node could not start from its persisted state.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum InitError {
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("node id 0 is reserved")]
    ZeroNodeId,
    #[error("the log holds no configuration entry: bootstrap the node first")]
    NoMembership,
    #[error("the log starts at {first_index}, after the snapshot's index {snapshot_index} + 1: entries are missing")]
    LogGapAfterSnapshot { first_index: Index, snapshot_index: Index },
    #[error("the log's entry {index} has another term than the snapshot that covers it")]
    SnapshotConflictsWithLog { index: Index },
    #[error("log entry at position {position} has index {index}: the log must be contiguous")]
    LogNotContiguous { position: usize, index: Index },
    #[error("log entry {index} has a term lower than the entry before it")]
    TermsDecrease { index: Index },
    #[error("log entry {index} has a term above the hard state's term")]
    EntryTermAboveHardState { index: Index },
    #[error("hard state commits {commit_index}, but the log ends at {last_index}")]
    CommitBeyondLog { commit_index: Index, last_index: Index },
    #[error("applied index {applied_index} is beyond commit index {commit_index}")]
    AppliedBeyondCommit { applied_index: Index, commit_index: Index },
}

/// Why a read index could not be asked for.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ReadError {
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader { leader_hint: Option<NodeId> },
}

/// Why a snapshot could not be described, saved or installed. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SnapshotError {
    #[error("index {index} is not applied yet (applied: {applied})")]
    NotApplied { index: Index, applied: Index },
    #[error("index {index} is compacted away (the log starts at {first_index})")]
    Compacted { index: Index, first_index: Index },
    #[error("snapshot metadata for {index} does not match the log: {reason}")]
    WrongMeta { index: Index, reason: &'static str },
    #[error("no snapshot at {index} is being installed")]
    NotInstalling { index: Index },
}
