//! Linearizable reads without writing to the log: ReadIndex and leader leases (Raft
//! dissertation §6.4).
//!
//! **ReadIndex.** A read asks the leader for an index; the driver may answer it from its state
//! machine once it has applied that far. The leader takes its commit index (after committing
//! an entry of its own term, so that the index covers every entry committed by earlier
//! leaders), then proves it still leads with one heartbeat round: every heartbeat carries a
//! round number, followers echo it, and once a quorum has echoed a round sent after the read
//! arrived, no other leader can have committed anything the read would miss. Every read that
//! arrives while a round is being prepared shares it, so a burst of reads costs one round.
//!
//! **Leases.** A follower that heard from its leader ignores vote requests for the minimum
//! election timeout (leader stickiness, with CheckQuorum). So when a quorum has echoed a round
//! sent at time `t`, no other leader can be elected before `t + election_timeout_ms_min` as
//! the followers measure it. The leader serves reads from its commit index without a round
//! until `t + election_timeout_ms_min - lease_clock_drift_ms`: the margin absorbs the clocks'
//! disagreement over that span, and the lease is safe only while the drift stays within it.
//! A restarted node cannot remember whom it promised, so with leases on it refuses votes for
//! one minimum election timeout after it starts (see [`crate::raft::Core::in_leader_lease`]).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::error::ReadError;
use crate::raft::{Core, LeaderState, Raft, RoleState};
use crate::replication::quorum_reached;
use crate::types::{Index, NodeId};

/// Rounds whose send time is remembered while no quorum echoes newer ones.
const SENT_ROUNDS_KEPT: usize = 1024;

/// The driver's name for a read request, handed back with its index.
pub type ReadId = u64;

/// A read that became safe: answer it from a state machine that has applied `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadState {
    pub id: ReadId,
    pub index: Index,
}

/// A leader's heartbeat rounds and the reads waiting on them.
#[derive(Debug, Default)]
pub(crate) struct ReadRounds {
    /// The number of the last heartbeat round sent (0: none yet this term).
    pub(crate) sent_round: u64,
    /// When recent rounds were sent, oldest first; the round a quorum last echoed is kept, for
    /// the lease.
    sent_ms: VecDeque<(u64, u64)>,
    /// Reads that arrived before the leader committed an entry of its own term.
    awaiting_own_commit: Vec<ReadId>,
    /// Reads with their index, waiting for a quorum to echo their round.
    awaiting_quorum: VecDeque<(ReadId, Index, u64)>,
}

impl ReadRounds {
    /// Numbers a new heartbeat round sent at `now_ms`.
    pub(crate) fn start_round(&mut self, now_ms: u64) -> u64 {
        self.sent_round += 1;
        self.sent_ms.push_back((self.sent_round, now_ms));
        if self.sent_ms.len() > SENT_ROUNDS_KEPT {
            // No quorum has echoed for a long time; forgetting the oldest round only ends the
            // lease early, which is safe.
            self.sent_ms.pop_front();
        }
        self.sent_round
    }

    /// Whether a read waits for a round that has not been sent yet.
    pub(crate) fn needs_round(&self) -> bool {
        self.awaiting_quorum.back().is_some_and(|&(_, _, round)| round > self.sent_round)
    }

    fn sent_ms_of(&self, round: u64) -> Option<u64> {
        self.sent_ms.iter().find(|&&(sent, _)| sent == round).map(|&(_, ms)| ms)
    }
}

impl Raft {
    /// Asks for a linearizable read index. The answer comes as a [`ReadState`] in a later
    /// [`crate::Ready::reads`]; if this node stops leading first, the read is dropped and the
    /// driver should ask again (of the new leader).
    pub fn read_index(&mut self, id: ReadId) -> Result<(), ReadError> {
        let Raft { core, role } = self;
        let RoleState::Leader(leader) = role else {
            return Err(ReadError::NotLeader { leader_hint: core.leader_id });
        };
        queue_read(core, leader, id);
        confirm_reads(core, leader);
        self.check_invariants_if_debug();
        Ok(())
    }

    /// Asks for a read served under the leader's lease: safe at once while the lease holds,
    /// otherwise handled as [`Raft::read_index`]. Without `lease_reads` and `check_quorum`
    /// there is no lease and every read takes a round.
    pub fn lease_read(&mut self, id: ReadId) -> Result<(), ReadError> {
        let Raft { core, role } = self;
        let RoleState::Leader(leader) = role else {
            return Err(ReadError::NotLeader { leader_hint: core.leader_id });
        };
        if lease_holds(core, leader) {
            let index = core.log.commit_index();
            core.reads_ready.push(ReadState { id, index });
            return Ok(());
        }
        self.read_index(id)
    }

    /// How long this leader's lease still holds, by its clock; `None` if it holds none.
    pub fn lease_remaining_ms(&self) -> Option<u64> {
        let RoleState::Leader(leader) = &self.role else { return None };
        lease_expiry_ms(&self.core, leader)
            .filter(|_| lease_holds(&self.core, leader))
            .map(|expiry| expiry - self.core.now_ms)
    }

    /// A follower echoed heartbeat round `round`.
    pub(crate) fn on_round_echoed(&mut self, from: NodeId, round: u64) {
        let Raft { core, role } = self;
        let RoleState::Leader(leader) = role else { return };
        if round > leader.reads.sent_round {
            return; // A round we never sent: a confused peer.
        }
        if let Some(progress) = leader.progress.get_mut(&from) {
            progress.echoed_round = progress.echoed_round.max(round);
        }
        confirm_reads(core, leader);
    }

    /// The commit index moved: reads waiting for the leader's first commit in its term get
    /// their index now.
    pub(crate) fn on_commit_advanced(&mut self) {
        let Raft { core, role } = self;
        let RoleState::Leader(leader) = role else { return };
        if own_term_committed(core) && !leader.reads.awaiting_own_commit.is_empty() {
            for id in std::mem::take(&mut leader.reads.awaiting_own_commit) {
                queue_read(core, leader, id);
            }
            confirm_reads(core, leader);
        }
    }
}

/// Whether the leader has committed an entry of its own term, so that its commit index covers
/// everything earlier leaders committed.
fn own_term_committed(core: &Core) -> bool {
    core.log.term(core.log.commit_index()) == Some(core.term)
}

fn queue_read(core: &Core, leader: &mut LeaderState, id: ReadId) {
    if own_term_committed(core) {
        let round = leader.reads.sent_round + 1;
        leader.reads.awaiting_quorum.push_back((id, core.log.commit_index(), round));
    } else {
        leader.reads.awaiting_own_commit.push(id);
    }
}

/// The highest round a quorum of voters (the leader counting as having echoed every round
/// it sent) has echoed.
fn quorum_echoed_round(core: &Core, leader: &LeaderState) -> u64 {
    quorum_reached(core, leader, leader.reads.sent_round, |progress| progress.echoed_round)
}

/// Releases every read whose round a quorum has echoed, and forgets rounds older than that.
pub(crate) fn confirm_reads(core: &mut Core, leader: &mut LeaderState) {
    let confirmed = quorum_echoed_round(core, leader);
    while let Some(&(id, index, round)) = leader.reads.awaiting_quorum.front() {
        if round > confirmed {
            break;
        }
        core.reads_ready.push(ReadState { id, index });
        leader.reads.awaiting_quorum.pop_front();
    }
    while leader.reads.sent_ms.front().is_some_and(|&(round, _)| round < confirmed) {
        leader.reads.sent_ms.pop_front();
    }
}

fn lease_expiry_ms(core: &Core, leader: &LeaderState) -> Option<u64> {
    if !(core.config.lease_reads && core.config.check_quorum) {
        return None;
    }
    let round = quorum_echoed_round(core, leader);
    let sent_ms = leader.reads.sent_ms_of(round).filter(|_| round > 0)?;
    let span_ms = core.config.election_timeout_ms_min - core.config.lease_clock_drift_ms;
    Some(sent_ms + span_ms)
}

/// A leader handing over leadership holds no lease: voters will elect its target.
fn lease_holds(core: &Core, leader: &LeaderState) -> bool {
    let handing_over = leader.lease_revoked || leader.transfer.is_some();
    !handing_over
        && own_term_committed(core)
        && lease_expiry_ms(core, leader).is_some_and(|expiry| core.now_ms < expiry)
}
