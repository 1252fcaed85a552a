//! The node: its state, its lifecycle, and the driver-facing API.
//!
//! Methods fall into four kinds, called in this order by a driver loop:
//! - inputs: [`Raft::tick`], [`Raft::step`];
//! - requests: [`Raft::propose`], [`Raft::campaign`];
//! - output: [`Raft::ready`], which takes everything the inputs produced;
//! - acknowledgements: [`Raft::on_persisted`], [`Raft::on_applied`].
//!
//! Getters may be called at any time.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::Config;
use crate::error::{ApplyError, CampaignError, InitError, ProposeError};
use crate::log::RaftLog;
use crate::membership::Transfer;
use crate::message::{Message, MessageBody};
use crate::progress::Progress;
use crate::read::{ReadRounds, ReadState};
use crate::ready::Ready;
use crate::snapshot::{membership_in, SnapshotState};
use crate::types::{Entry, EntryKind, HardState, Index, Membership, NodeId, PersistedState, Role, Term};

/// A Raft node as a pure state machine. See the module documentation for how to drive it.
#[derive(Debug)]
pub struct Raft {
    pub(crate) core: Core,
    pub(crate) role: RoleState,
}

/// What every role shares. Kept apart from [`RoleState`] so that role handlers can borrow both.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) id: NodeId,
    pub(crate) config: Config,
    pub(crate) membership: Membership,
    /// The index of the configuration entry (or snapshot) `membership` comes from.
    pub(crate) membership_index: Index,
    pub(crate) term: Term,
    pub(crate) voted_for: Option<NodeId>,
    pub(crate) leader_id: Option<NodeId>,
    pub(crate) log: RaftLog,
    rng: ChaCha8Rng,
    pub(crate) now_ms: u64,
    pub(crate) election_deadline_ms: u64,
    /// When this node last heard from (or, as leader, confirmed) a live leader of its term.
    pub(crate) leader_contact_ms: Option<u64>,
    pub(crate) outbox: Outbox,
    /// Reads that became safe since the last [`Raft::ready`].
    pub(crate) reads_ready: Vec<ReadState>,
    /// With leases on, a restarted node refuses votes until then: before it crashed it may
    /// have promised a leader its lease, and it cannot remember whom (see `read.rs`).
    restart_quiet_until_ms: u64,
    hard_state_handed_out: HardState,
    /// Snapshots: the latest one, what is being received or installed, when to take the next.
    pub(crate) snapshots: SnapshotState,
}

/// Messages produced since the last [`Raft::ready`].
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pub(crate) now: Vec<Message>,
    pub(crate) after_persist: Vec<Message>,
}

/// Role-specific state: a leader's progress cannot be touched by a follower by mistake.
#[derive(Debug)]
pub(crate) enum RoleState {
    Follower,
    PreCandidate(Votes),
    Candidate(Votes),
    Leader(LeaderState),
}

/// Answers collected in one election round.
#[derive(Debug, Default)]
pub(crate) struct Votes {
    pub(crate) granted: BTreeSet<NodeId>,
    pub(crate) rejected: BTreeSet<NodeId>,
}

#[derive(Debug)]
pub(crate) struct LeaderState {
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    pub(crate) heartbeat_deadline_ms: u64,
    pub(crate) uncommitted_bytes: usize,
    pub(crate) reads: ReadRounds,
    pub(crate) transfer: Option<Transfer>,
    /// Set once a transfer sent `TimeoutNow`: no lease for the rest of this term.
    pub(crate) lease_revoked: bool,
}

impl PersistedState {
    /// The state every node of a new cluster starts from: one committed configuration entry.
    /// The driver must make it durable before it first calls [`Raft::new`], exactly as if a
    /// leader of term 1 had replicated it.
    pub fn bootstrap(membership: Membership) -> Self {
        let entry = Entry { term: 1, index: 1, kind: EntryKind::Configuration(membership) };
        PersistedState {
            hard_state: HardState { term: 1, voted_for: None, commit_index: 1 },
            snapshot: None,
            entries: vec![entry],
            applied_index: 0,
        }
    }
}

impl Raft {
    /// Starts (or restarts) a node as a follower from what its driver had made durable.
    /// `seed` drives every random choice; `now_ms` is the driver's clock.
    pub fn new(
        id: NodeId,
        config: Config,
        persisted: PersistedState,
        seed: u64,
        now_ms: u64,
    ) -> Result<Self, InitError> {
        config.validate()?;
        if id == 0 {
            return Err(InitError::ZeroNodeId);
        }
        validate_persisted(&persisted)?;
        // A node that joins an existing cluster starts with nothing; anything else has a
        // configuration entry or a snapshot.
        let knows_membership = persisted.snapshot.is_some() || membership_in(&persisted.entries).is_some();
        if !persisted.entries.is_empty() && !knows_membership {
            return Err(InitError::NoMembership);
        }
        let hard_state = persisted.hard_state;
        let config_for_quiet = config.clone();
        let (base_index, base_term) =
            persisted.snapshot.as_ref().map_or((0, 0), |snapshot| (snapshot.meta.index, snapshot.meta.term));
        let log = RaftLog::restore_after_base(
            base_index,
            base_term,
            persisted.entries,
            hard_state.commit_index,
            persisted.applied_index,
        );
        let mut core = Core {
            id,
            config,
            membership: Membership::default(),
            membership_index: 0,
            term: hard_state.term,
            voted_for: hard_state.voted_for,
            leader_id: None,
            log,
            rng: ChaCha8Rng::seed_from_u64(seed),
            now_ms,
            election_deadline_ms: 0,
            leader_contact_ms: None,
            outbox: Outbox::default(),
            reads_ready: Vec::new(),
            restart_quiet_until_ms: now_ms + config_quiet_ms(&config_for_quiet),
            hard_state_handed_out: hard_state,
            snapshots: SnapshotState::new(persisted.snapshot),
        };
        core.refresh_membership();
        core.reset_election_deadline();
        let raft = Raft { core, role: RoleState::Follower };
        raft.check_invariants_if_debug();
        Ok(raft)
    }

    // ----- getters -----

    pub fn id(&self) -> NodeId {
        self.core.id
    }

    pub fn term(&self) -> Term {
        self.core.term
    }

    pub fn voted_for(&self) -> Option<NodeId> {
        self.core.voted_for
    }

    pub fn leader_id(&self) -> Option<NodeId> {
        self.core.leader_id
    }

    pub fn role(&self) -> Role {
        match self.role {
            RoleState::Follower => Role::Follower,
            RoleState::PreCandidate(_) => Role::PreCandidate,
            RoleState::Candidate(_) => Role::Candidate,
            RoleState::Leader(_) => Role::Leader,
        }
    }

    pub fn log(&self) -> &RaftLog {
        &self.core.log
    }

    /// The driver's clock as of the last [`Raft::tick`] (or construction): the time every
    /// decision since was made at.
    pub fn now_ms(&self) -> u64 {
        self.core.now_ms
    }

    pub fn config(&self) -> &Config {
        &self.core.config
    }

    pub fn commit_index(&self) -> Index {
        self.core.log.commit_index()
    }

    pub fn membership(&self) -> &Membership {
        &self.core.membership
    }

    pub fn hard_state(&self) -> HardState {
        self.core.hard_state()
    }

    /// A leader's view of a follower; `None` on other roles.
    pub fn progress(&self, follower: NodeId) -> Option<&Progress> {
        match &self.role {
            RoleState::Leader(leader) => leader.progress.get(&follower),
            _ => None,
        }
    }

    // ----- inputs -----

    /// Lets time pass. `now_ms` never moving backwards is the driver's promise; an earlier
    /// value is treated as no time passing.
    pub fn tick(&mut self, now_ms: u64) {
        self.core.now_ms = self.core.now_ms.max(now_ms);
        if matches!(self.role, RoleState::Leader(_)) {
            self.tick_leader();
        } else if self.core.now_ms >= self.core.election_deadline_ms {
            self.core.reset_election_deadline();
            if self.core.may_campaign() {
                self.start_election();
            }
        }
        self.check_invariants_if_debug();
    }

    // ----- requests -----

    /// Appends a command to the log, if this node leads. Returns the entry's index; its term is
    /// the current [`Raft::term`]. The command is committed once that `(index, term)` is applied;
    /// if another entry is applied at that index, the proposal was lost.
    pub fn propose(&mut self, command: Bytes) -> Result<Index, ProposeError> {
        let Raft { core, role } = self;
        let RoleState::Leader(leader) = role else {
            return Err(ProposeError::NotLeader { leader_hint: core.leader_id });
        };
        if leader.transfer.is_some() {
            return Err(ProposeError::TransferInProgress);
        }
        let entry = Entry { term: core.term, index: core.log.last_index() + 1, kind: EntryKind::Normal(command) };
        let size_bytes = entry.size_bytes();
        if size_bytes > core.config.entry_size_bytes_max {
            return Err(ProposeError::EntryTooLarge { size_bytes, limit_bytes: core.config.entry_size_bytes_max });
        }
        if leader.uncommitted_bytes + size_bytes > core.config.uncommitted_bytes_max {
            return Err(ProposeError::UncommittedLimitReached {
                uncommitted_bytes: leader.uncommitted_bytes,
                limit_bytes: core.config.uncommitted_bytes_max,
            });
        }
        let index = entry.index;
        leader.uncommitted_bytes += size_bytes;
        core.log.append(entry);
        // A single-node cluster commits once its own write is durable; nothing to do until then.
        self.check_invariants_if_debug();
        Ok(index)
    }

    /// Starts an election now instead of waiting for the timeout (with PreVote, a pre-vote).
    pub fn campaign(&mut self) -> Result<(), CampaignError> {
        if matches!(self.role, RoleState::Leader(_)) {
            return Err(CampaignError::AlreadyLeader);
        }
        if !self.core.may_campaign() {
            return Err(CampaignError::NotAVoter);
        }
        self.start_election();
        self.check_invariants_if_debug();
        Ok(())
    }

    // ----- output -----

    /// Takes everything the driver must now do. See [`Ready`] for the order.
    pub fn ready(&mut self) -> Ready {
        if matches!(self.role, RoleState::Leader(_)) {
            self.send_appends();
        }
        let core = &mut self.core;
        let hard_state = core.hard_state();
        let hard_state_changed = hard_state != core.hard_state_handed_out;
        core.hard_state_handed_out = hard_state;
        // While a snapshot from the leader is being installed, the state machine is about to
        // be replaced: nothing more is applied until it is.
        let entries_to_apply =
            if core.snapshots.is_installing() { Vec::new() } else { core.log.take_entries_to_apply() };
        let snapshot_due = core.snapshots.take_due(&entries_to_apply, &core.config);
        let ready = Ready {
            messages_now: std::mem::take(&mut core.outbox.now),
            hard_state: hard_state_changed.then_some(hard_state),
            entries_to_persist: core.log.take_entries_to_persist(),
            messages_after_persist: std::mem::take(&mut core.outbox.after_persist),
            entries_to_apply,
            reads: std::mem::take(&mut core.reads_ready),
            snapshot_to_install: core.snapshots.take_to_install(),
            snapshot_due,
        };
        self.check_invariants_if_debug();
        ready
    }

    // ----- acknowledgements -----

    /// The driver made the log durable up to `(index, term)` (see [`Ready::persisted_position`]).
    pub fn on_persisted(&mut self, index: Index, term: Term) {
        if self.core.log.on_persisted(index, term) && matches!(self.role, RoleState::Leader(_)) {
            self.maybe_commit();
        }
        self.check_invariants_if_debug();
    }

    /// The driver applied committed entries up to `index`.
    pub fn on_applied(&mut self, index: Index) -> Result<(), ApplyError> {
        let result =
            self.core.log.on_applied(index).map_err(|handed_out| ApplyError::NotHandedOut { index, handed_out });
        self.check_invariants_if_debug();
        result
    }

    // ----- role changes -----

    pub(crate) fn become_follower(&mut self, term: Term, leader_id: Option<NodeId>) {
        assert!(term >= self.core.term, "terms never decrease");
        if term > self.core.term {
            self.core.term = term;
            self.core.voted_for = None;
        }
        self.role = RoleState::Follower;
        self.core.leader_id = leader_id;
        if leader_id.is_some() {
            self.core.leader_contact_ms = Some(self.core.now_ms);
        }
        self.core.reset_election_deadline();
    }

    pub(crate) fn become_leader(&mut self) {
        let core = &mut self.core;
        assert_eq!(core.voted_for, Some(core.id), "a leader voted for itself");
        let noop = Entry { term: core.term, index: core.log.last_index() + 1, kind: EntryKind::Noop };
        let progress = core
            .other_members()
            .into_iter()
            .map(|member| (member, Progress::new(core.log.last_index(), core.now_ms)))
            .collect();
        let uncommitted_bytes = noop.size_bytes();
        core.log.append(noop);
        core.leader_id = Some(core.id);
        core.leader_contact_ms = Some(core.now_ms);
        self.role = RoleState::Leader(LeaderState {
            progress,
            heartbeat_deadline_ms: core.now_ms + core.config.heartbeat_interval_ms,
            uncommitted_bytes,
            reads: ReadRounds::default(),
            transfer: None,
            lease_revoked: false,
        });
        // A single voter is its own quorum once its log is durable.
        self.maybe_commit();
    }
}

impl Core {
    pub(crate) fn hard_state(&self) -> HardState {
        HardState { term: self.term, voted_for: self.voted_for, commit_index: self.log.commit_index() }
    }

    pub(crate) fn reset_election_deadline(&mut self) {
        let span = self.config.election_timeout_ms_max - self.config.election_timeout_ms_min;
        let jitter = self.rng.next_u64() % span;
        self.election_deadline_ms = self.now_ms + self.config.election_timeout_ms_min + jitter;
    }

    /// Whether a live leader was heard from within the minimum election timeout, so that vote
    /// requests should be ignored (leader stickiness). With leases on, a node that restarted
    /// less than a minimum election timeout ago counts as having heard from one.
    pub(crate) fn in_leader_lease(&self) -> bool {
        let heard_recently =
            self.leader_contact_ms.is_some_and(|contact| self.now_ms < contact + self.config.election_timeout_ms_min);
        (self.leader_id.is_some() && heard_recently) || self.now_ms < self.restart_quiet_until_ms
    }

    /// Queues a message in the right half of the outbox: a leader's replication traffic,
    /// pre-vote traffic and heartbeat answers leave at once; everything else promises state that
    /// must be durable first. A heartbeat answer promises nothing durable: it says "I heard you
    /// in this term", which a crash cannot make untrue (and the lease's promise not to vote is
    /// kept across restarts by the quiet period, not by the disk). Holding it for the fsync of
    /// the commit index it brought would cost every write a second fsync on every follower.
    pub(crate) fn send(&mut self, to: NodeId, term: Term, body: MessageBody) {
        let leaves_now = matches!(
            body,
            MessageBody::AppendRequest { .. }
                | MessageBody::HeartbeatRequest { .. }
                | MessageBody::HeartbeatResponse { .. }
                | MessageBody::PreVoteRequest { .. }
                | MessageBody::PreVoteResponse { .. }
                | MessageBody::SnapshotChunk { .. }
                | MessageBody::SnapshotChunkResponse { .. }
        );
        let message = Message { from: self.id, to, term, body };
        if leaves_now {
            self.outbox.now.push(message);
        } else {
            self.outbox.after_persist.push(message);
        }
    }

    /// Every voter but this node, of both halves of a joint change: whom to ask for votes.
    pub(crate) fn other_voters(&self) -> Vec<NodeId> {
        self.membership.all_voters().into_iter().filter(|&voter| voter != self.id).collect()
    }

    /// Every member but this node, learners included: whom a leader replicates to.
    pub(crate) fn other_members(&self) -> Vec<NodeId> {
        self.membership.members().into_iter().filter(|&member| member != self.id).collect()
    }
}

/// How long a starting node refuses votes: a minimum election timeout if leader leases are in
/// use (they rely on it), otherwise not at all.
fn config_quiet_ms(config: &Config) -> u64 {
    if config.lease_reads && config.check_quorum {
        config.election_timeout_ms_min
    } else {
        0
    }
}

fn validate_persisted(persisted: &PersistedState) -> Result<(), InitError> {
    let (base_index, base_term) =
        persisted.snapshot.as_ref().map_or((0, 0), |snapshot| (snapshot.meta.index, snapshot.meta.term));
    let first_index = persisted.entries.first().map_or(base_index + 1, |entry| entry.index);
    if first_index == 0 || first_index > base_index + 1 {
        return Err(InitError::LogGapAfterSnapshot { first_index, snapshot_index: base_index });
    }
    let mut previous_term = 0;
    for (position, entry) in persisted.entries.iter().enumerate() {
        if entry.index != first_index + position as Index {
            return Err(InitError::LogNotContiguous { position, index: entry.index });
        }
        if entry.index == base_index && entry.term != base_term {
            return Err(InitError::SnapshotConflictsWithLog { index: base_index });
        }
        if entry.term < previous_term {
            return Err(InitError::TermsDecrease { index: entry.index });
        }
        if entry.term > persisted.hard_state.term {
            return Err(InitError::EntryTermAboveHardState { index: entry.index });
        }
        previous_term = entry.term;
    }
    if base_term > persisted.hard_state.term {
        return Err(InitError::EntryTermAboveHardState { index: base_index });
    }
    let last_index = persisted.entries.last().map_or(base_index, |entry| entry.index).max(base_index);
    // A snapshot covers committed entries only, so it raises the commit index.
    let commit_index = persisted.hard_state.commit_index.max(base_index);
    if commit_index > last_index {
        return Err(InitError::CommitBeyondLog { commit_index, last_index });
    }
    if persisted.applied_index > commit_index {
        return Err(InitError::AppliedBeyondCommit { applied_index: persisted.applied_index, commit_index });
    }
    Ok(())
}
