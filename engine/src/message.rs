//! Messages between peers. They are plain serde data so a transport can carry them with postcard.

use serde::{Deserialize, Serialize};

use bytes::Bytes;

use crate::types::{Entry, Index, NodeId, SnapshotMeta, Term};

/// A message from one node to another. `term` is the sender's term, except in pre-vote
/// traffic, where it is the term the pre-candidate would campaign in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    pub term: Term,
    pub body: MessageBody,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageBody {
    /// "Would you vote for me in `term`?" Answering changes nothing on the voter.
    PreVoteRequest {
        last_log_index: Index,
        last_log_term: Term,
    },
    PreVoteResponse {
        granted: bool,
    },
    /// A real vote. With `leadership_transfer`, the leader asked the candidate to take over
    /// (see [`MessageBody::TimeoutNow`]): voters grant it even while they hear from that leader.
    VoteRequest {
        last_log_index: Index,
        last_log_term: Term,
        leadership_transfer: bool,
    },
    VoteResponse {
        granted: bool,
    },
    /// Entries following `(prev_log_index, prev_log_term)`; empty entries only carry the commit index.
    AppendRequest {
        prev_log_index: Index,
        prev_log_term: Term,
        entries: Vec<Entry>,
        leader_commit: Index,
    },
    AppendResponse(AppendOutcome),
    /// Keeps followers from campaigning. `commit_index` is capped at what the follower is known
    /// to hold, so a heartbeat never makes a follower commit entries it may not have. `round`
    /// numbers the leader's heartbeat rounds; the answer echoes it, which confirms reads and
    /// the lease (see `read.rs`).
    HeartbeatRequest {
        commit_index: Index,
        round: u64,
    },
    HeartbeatResponse {
        round: u64,
    },
    /// Bytes `offset..offset + data.len()` of the snapshot `meta` describes, `total_bytes`
    /// long, for a follower whose next entry the leader no longer holds. An empty chunk at
    /// `total_bytes` asks whether the follower has installed it.
    SnapshotChunk {
        meta: SnapshotMeta,
        offset: u64,
        total_bytes: u64,
        data: Bytes,
    },
    /// How many leading bytes of the snapshot at `snapshot_index` the follower holds: the
    /// leader goes on from there (after a lost chunk, or from 0 after the follower restarted).
    /// Once installed, the follower answers with an accepted append instead.
    SnapshotChunkResponse {
        snapshot_index: Index,
        next_offset: u64,
    },
    /// The leader hands over leadership: the follower, whose log is as long as the leader's,
    /// starts an election at once (without PreVote).
    TimeoutNow,
}

/// A follower's answer to an append.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendOutcome {
    /// The follower's log matches the leader's up to `match_index`.
    Accepted { match_index: Index },
    /// The follower has no entry `(rejected_prev_log_index, prev term)`. The hint names the last
    /// entry at or before it whose term is not above the leader's `prev_log_term`; the leader
    /// skips straight past every index the hint rules out (fast backtracking), so a long
    /// divergent suffix costs one round trip per term, not per entry.
    Rejected { rejected_prev_log_index: Index, hint_index: Index, hint_term: Term },
}

impl MessageBody {
    /// A short name for traces and filters.
    pub fn kind_name(&self) -> &'static str {
        match self {
            MessageBody::PreVoteRequest { .. } => "PreVoteRequest",
            MessageBody::PreVoteResponse { .. } => "PreVoteResponse",
            MessageBody::VoteRequest { .. } => "VoteRequest",
            MessageBody::VoteResponse { .. } => "VoteResponse",
            MessageBody::AppendRequest { .. } => "AppendRequest",
            MessageBody::AppendResponse(_) => "AppendResponse",
            MessageBody::HeartbeatRequest { .. } => "HeartbeatRequest",
            MessageBody::HeartbeatResponse { .. } => "HeartbeatResponse",
            MessageBody::SnapshotChunk { .. } => "SnapshotChunk",
            MessageBody::SnapshotChunkResponse { .. } => "SnapshotChunkResponse",
            MessageBody::TimeoutNow => "TimeoutNow",
        }
    }
}

impl std::fmt::Display for Message {
    /// One line per message, as scenario scripts print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}->{} {} term={}", self.from, self.to, self.body.kind_name(), self.term)?;
        match &self.body {
            MessageBody::PreVoteRequest { last_log_index, last_log_term } => {
                write!(f, " last={last_log_index}/{last_log_term}")
            }
            MessageBody::VoteRequest { last_log_index, last_log_term, leadership_transfer } => {
                write!(f, " last={last_log_index}/{last_log_term}")?;
                if *leadership_transfer {
                    write!(f, " transfer")?;
                }
                Ok(())
            }
            MessageBody::PreVoteResponse { granted } | MessageBody::VoteResponse { granted } => {
                write!(f, " {}", if *granted { "granted" } else { "rejected" })
            }
            MessageBody::AppendRequest { prev_log_index, prev_log_term, entries, leader_commit } => {
                write!(f, " prev={prev_log_index}/{prev_log_term} commit={leader_commit} entries=")?;
                match (entries.first(), entries.last()) {
                    (Some(first), Some(last)) => write!(f, "{}..{} ({})", first.index, last.index, entries.len()),
                    _ => write!(f, "none"),
                }
            }
            MessageBody::AppendResponse(AppendOutcome::Accepted { match_index }) => {
                write!(f, " accepted match={match_index}")
            }
            MessageBody::AppendResponse(AppendOutcome::Rejected { rejected_prev_log_index, hint_index, hint_term }) => {
                write!(f, " rejected prev={rejected_prev_log_index} hint={hint_index}/{hint_term}")
            }
            // Rounds are left out: they change on every heartbeat, and scripts stay readable.
            MessageBody::HeartbeatRequest { commit_index, .. } => write!(f, " commit={commit_index}"),
            MessageBody::HeartbeatResponse { .. } => Ok(()),
            MessageBody::SnapshotChunk { meta, offset, total_bytes, data } => write!(
                f,
                " snapshot={}/{} bytes={offset}..{} of {total_bytes}",
                meta.index,
                meta.term,
                offset + data.len() as u64
            ),
            MessageBody::SnapshotChunkResponse { snapshot_index, next_offset } => {
                write!(f, " snapshot={snapshot_index} next={next_offset}")
            }
            MessageBody::TimeoutNow => Ok(()),
        }
    }
}
