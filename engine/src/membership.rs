//! Membership change by joint consensus, learners, and leadership transfer (Raft dissertation
//! chapters 3.10 and 4).
//!
//! **Changes.** A leader accepts one change at a time ([`Raft::propose_conf_change`]), and only
//! once the latest configuration entry is committed and it has committed an entry of its own
//! term. Adding or removing a learner changes no quorum and takes one configuration entry.
//! Promoting a learner or removing a voter changes the voters: the leader appends a *joint*
//! configuration (new voters, with the old ones as `outgoing_voters`), in which every decision
//! (election, commit, CheckQuorum, read rounds) needs a majority of both; once that entry
//! commits, the leader appends the new configuration alone. As the dissertation prescribes, a
//! node uses the latest configuration in its log, committed or not, and goes back to the
//! previous one if that entry is truncated away. A leader that is not a voter of the final
//! configuration steps down once that configuration commits.
//!
//! **Transfer.** [`Raft::transfer_leadership`] stops accepting proposals, brings the target's
//! log up to the leader's, then sends it `TimeoutNow`; the target campaigns at once, and its
//! vote request says it is a transfer, so voters grant it despite hearing from the leader. A
//! transfer not done within a minimum election timeout is aborted. Once `TimeoutNow` has left,
//! the leader's lease is revoked for the rest of its term: the voters' promise not to elect
//! anyone else, which the lease rests on, no longer holds.

use crate::error::{ConfChangeError, TransferError};
use crate::message::MessageBody;
use crate::progress::{Progress, ReplicationState};
use crate::raft::{Core, LeaderState, Raft, RoleState};
use crate::snapshot::membership_in;
use crate::types::{ConfChange, Entry, EntryKind, Index, Membership, NodeId};

/// A leadership transfer under way.
#[derive(Debug)]
pub(crate) struct Transfer {
    pub(crate) to: NodeId,
    pub(crate) deadline_ms: u64,
    pub(crate) timeout_now_sent: bool,
}

impl Raft {
    /// Appends the configuration entry for `change`, if this node leads and no other change is
    /// under way. Returns the entry's index. For a change of voters this is the joint entry;
    /// the final configuration follows on its own once it commits.
    pub fn propose_conf_change(&mut self, change: ConfChange) -> Result<Index, ConfChangeError> {
        let Raft { core, role } = self;
        let RoleState::Leader(leader) = role else {
            return Err(ConfChangeError::NotLeader { leader_hint: core.leader_id });
        };
        if leader.transfer.is_some() {
            return Err(ConfChangeError::TransferInProgress);
        }
        let settled = core.membership_index <= core.log.commit_index() && !core.membership.is_joint();
        if !settled || core.log.term(core.log.commit_index()) != Some(core.term) {
            return Err(ConfChangeError::ChangeInProgress);
        }
        let next = changed_membership(&core.membership, change, |id| learner_caught_up(core, leader, id))?;
        let index = append_configuration(core, next);
        self.on_membership_changed();
        self.check_invariants_if_debug();
        Ok(index)
    }

    /// Hands leadership to `to`, a voter; see the module documentation.
    pub fn transfer_leadership(&mut self, to: NodeId) -> Result<(), TransferError> {
        let Raft { core, role } = self;
        let RoleState::Leader(leader) = role else {
            return Err(TransferError::NotLeader { leader_hint: core.leader_id });
        };
        if to == core.id {
            return Err(TransferError::AlreadyLeader);
        }
        if !core.membership.is_voter(to) {
            return Err(TransferError::NotAVoter { id: to });
        }
        if leader.transfer.is_some() {
            return Err(TransferError::TransferInProgress);
        }
        let deadline_ms = core.now_ms + core.config.election_timeout_ms_min;
        leader.transfer = Some(Transfer { to, deadline_ms, timeout_now_sent: false });
        maybe_send_timeout_now(core, leader);
        self.check_invariants_if_debug();
        Ok(())
    }

    /// Whether a membership change is under way: the configuration in force is joint, or
    /// not yet committed. A new change is refused until it is done.
    pub fn membership_change_pending(&self) -> bool {
        self.core.membership.is_joint() || self.core.membership_index > self.core.log.commit_index()
    }

    /// The membership in force at `index`: the latest configuration entry at or before it,
    /// or the snapshot's.
    pub fn membership_at(&self, index: Index) -> Membership {
        self.core.membership_at(index)
    }

    /// The node a leadership transfer is handing over to, if one is under way.
    pub fn transfer_target(&self) -> Option<NodeId> {
        match &self.role {
            RoleState::Leader(leader) => leader.transfer.as_ref().map(|transfer| transfer.to),
            _ => None,
        }
    }

    /// The membership in force changed: a leader replicates to exactly the members.
    pub(crate) fn on_membership_changed(&mut self) {
        let Raft { core, role } = self;
        let RoleState::Leader(leader) = role else { return };
        let members = core.membership.members();
        leader.progress.retain(|id, _| members.contains(id));
        // A new member is probed from the last entry (the configuration that added it), so it
        // hears from the leader at once and the usual backtracking finds where its log ends.
        let probe_from = core.log.last_index().saturating_sub(1);
        for id in members {
            if id != core.id && !leader.progress.contains_key(&id) {
                leader.progress.insert(id, Progress::new(probe_from, core.now_ms));
            }
        }
    }

    /// The commit index moved: a committed joint configuration is followed by the final one,
    /// and a leader that the committed final configuration leaves out steps down.
    pub(crate) fn on_commit_membership(&mut self) {
        let core = &mut self.core;
        if !matches!(self.role, RoleState::Leader(_)) || core.membership_index > core.log.commit_index() {
            return;
        }
        if core.membership.is_joint() {
            // The outgoing voters leave now, and their metadata with them.
            let Membership { voters, learners, mut metadata, .. } = core.membership.clone();
            metadata.retain(|id, _| voters.contains(id) || learners.contains(id));
            append_configuration(core, Membership { voters, learners, metadata, ..Membership::default() });
            self.on_membership_changed();
        } else if !core.membership.is_voter(core.id) {
            hand_over_on_removal(core, &self.role);
            let term = core.term;
            self.become_follower(term, None);
        }
    }

    /// A follower answered: if it is the transfer's target and has caught up, hand over.
    pub(crate) fn on_transfer_progress(&mut self) {
        let Raft { core, role } = self;
        if let RoleState::Leader(leader) = role {
            maybe_send_timeout_now(core, leader);
        }
    }

    /// A transfer that did not finish within its time is abandoned; proposals resume.
    pub(crate) fn expire_transfer(&mut self) {
        let Raft { core, role } = self;
        let RoleState::Leader(leader) = role else { return };
        if leader.transfer.as_ref().is_some_and(|transfer| core.now_ms >= transfer.deadline_ms) {
            leader.transfer = None;
        }
    }
}

impl Core {
    /// Whether this node may start an election: it votes in its latest configuration, or in
    /// the latest committed one. The second matters when an uncommitted configuration that
    /// leaves it out is in force here while the committed one still needs its vote: if its
    /// log is the only one holding that entry, no other node can be elected, and it must
    /// lead until the entry commits (then it steps down, as any leader left out does).
    pub(crate) fn may_campaign(&self) -> bool {
        self.membership.is_voter(self.id)
            || (self.membership_index > self.log.commit_index()
                && self.membership_at(self.log.commit_index()).is_voter(self.id))
    }

    /// Sets the membership from the log: the latest configuration entry held, or else the
    /// snapshot's. Called after anything that may remove or add configuration entries.
    pub(crate) fn refresh_membership(&mut self) {
        let (index, membership) = membership_in(self.log.entries())
            .or_else(|| {
                let latest = self.snapshots.latest.as_ref()?;
                Some((latest.meta.index, latest.meta.membership.clone()))
            })
            .unwrap_or((0, self.membership.clone()));
        self.membership_index = index;
        self.membership = membership;
    }
}

/// Appends a configuration entry as leader and puts it in force. Returns its index.
fn append_configuration(core: &mut Core, membership: Membership) -> Index {
    let index = core.log.last_index() + 1;
    let entry = Entry { term: core.term, index, kind: EntryKind::Configuration(membership.clone()) };
    core.log.append(entry);
    core.membership = membership;
    core.membership_index = index;
    index
}

/// The membership after `change`, or why it cannot be made.
fn changed_membership(
    current: &Membership,
    change: ConfChange,
    caught_up: impl Fn(NodeId) -> bool,
) -> Result<Membership, ConfChangeError> {
    let mut next = current.clone();
    match change {
        ConfChange::AddLearner { id: 0, .. } | ConfChange::Promote(0) | ConfChange::Remove(0) => {
            return Err(ConfChangeError::ZeroNodeId)
        }
        ConfChange::AddLearner { id, metadata } => {
            if current.contains(id) {
                return Err(ConfChangeError::AlreadyMember { id });
            }
            next.learners.insert(id);
            if !metadata.is_empty() {
                next.metadata.insert(id, metadata);
            }
        }
        ConfChange::Promote(id) => {
            if !current.is_learner(id) {
                return Err(ConfChangeError::NotALearner { id });
            }
            if !caught_up(id) {
                return Err(ConfChangeError::LearnerBehind { id });
            }
            next.learners.remove(&id);
            next.outgoing_voters = current.voters.clone();
            next.voters.insert(id);
        }
        ConfChange::Remove(id) if current.is_learner(id) => {
            next.learners.remove(&id);
            next.metadata.remove(&id);
        }
        ConfChange::Remove(id) if current.is_voter(id) => {
            if current.voters.len() == 1 {
                return Err(ConfChangeError::LastVoter { id });
            }
            next.outgoing_voters = current.voters.clone();
            next.voters.remove(&id);
        }
        ConfChange::Remove(id) => return Err(ConfChangeError::UnknownNode { id }),
    }
    Ok(next)
}

/// A learner is promoted only once it answers (its log matches and appends stream to it)
/// and its log is within `snapshot_trailing_entries` of the commit index: a voter that cannot
/// acknowledge yet would only make quorums harder to reach.
fn learner_caught_up(core: &Core, leader: &LeaderState, id: NodeId) -> bool {
    leader.progress.get(&id).is_some_and(|progress| {
        matches!(progress.state, ReplicationState::Replicate { .. })
            && progress.match_index + core.config.snapshot_trailing_entries >= core.log.commit_index()
    })
}

/// A leader that removed itself steps down; rather than leave the cluster without a leader
/// for an election timeout, it asks an up-to-date voter, if one exists, to take over now.
fn hand_over_on_removal(core: &mut Core, role: &RoleState) {
    let RoleState::Leader(leader) = role else { return };
    let last_index = core.log.last_index();
    let successor = core
        .membership
        .voters
        .iter()
        .copied()
        .find(|voter| leader.progress.get(voter).is_some_and(|progress| progress.match_index == last_index));
    if let Some(successor) = successor {
        core.send(successor, core.term, MessageBody::TimeoutNow);
    }
}

/// Sends `TimeoutNow` to the transfer's target once its log matches the leader's.
fn maybe_send_timeout_now(core: &mut Core, leader: &mut LeaderState) {
    let Some(transfer) = leader.transfer.as_mut() else { return };
    let caught_up = leader.progress.get(&transfer.to).is_some_and(|p| p.match_index == core.log.last_index());
    if caught_up && !transfer.timeout_now_sent {
        transfer.timeout_now_sent = true;
        leader.lease_revoked = true;
        core.send(transfer.to, core.term, MessageBody::TimeoutNow);
    }
}
