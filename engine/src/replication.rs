//! Log replication: a leader's sending, heartbeats and commit rule; a follower's appending.

use crate::error::StepError;
use crate::message::{AppendOutcome, MessageBody};
use crate::progress::{next_index_after_hint, Progress, ReplicationState};
use crate::raft::{Core, LeaderState, Raft, RoleState};
use crate::read::confirm_reads;
use crate::snapshot::send_snapshot_chunks;
use crate::types::{Entry, EntryKind, Index, NodeId, Term};

impl Raft {
    // ----- leader -----

    /// Heartbeats on their interval, and the CheckQuorum verdict on every tick.
    pub(crate) fn tick_leader(&mut self) {
        self.expire_transfer();
        let Raft { core, role } = self;
        let RoleState::Leader(leader) = role else { return };
        if core.now_ms >= leader.heartbeat_deadline_ms {
            send_heartbeat_round(core, leader);
        }
        if !core.config.check_quorum {
            return;
        }
        let quorum_contact_ms = quorum_contact_ms(core, leader);
        if core.now_ms >= quorum_contact_ms + core.config.election_timeout_ms_min {
            // No answer from a majority for a whole election timeout: another leader may
            // exist by now, so stop serving.
            let term = core.term;
            self.become_follower(term, None);
            return;
        }
        core.leader_contact_ms = Some(quorum_contact_ms);
    }

    /// Sends every follower what it lacks, as far as its window allows, and tells followers
    /// that have nothing to receive about a commit index they have not heard yet. Called when
    /// the driver takes a [`crate::Ready`], so proposals made meanwhile travel in one batch.
    pub(crate) fn send_appends(&mut self) {
        let Raft { core, role } = self;
        let RoleState::Leader(leader) = role else { return };
        for (&follower, progress) in leader.progress.iter_mut() {
            let sent_any = send_entries(core, follower, progress);
            let commit_known_safe = core.log.commit_index().min(progress.match_index);
            if !sent_any && progress.commit_index_sent < commit_known_safe {
                send_heartbeat(core, follower, progress, leader.reads.sent_round);
            }
        }
        if leader.reads.needs_round() {
            send_heartbeat_round(core, leader);
        }
    }

    pub(crate) fn on_append_response(&mut self, from: NodeId, outcome: AppendOutcome) {
        let Raft { core, role } = self;
        let RoleState::Leader(leader) = role else { return };
        let Some(progress) = leader.progress.get_mut(&from) else { return };
        progress.last_active_ms = core.now_ms;
        match outcome {
            AppendOutcome::Accepted { match_index } => {
                // A follower cannot hold more than we sent; a larger claim is a confused peer.
                if match_index > core.log.last_index() {
                    return;
                }
                if progress.on_accepted(match_index) {
                    self.maybe_commit();
                    self.on_transfer_progress();
                }
            }
            AppendOutcome::Rejected { rejected_prev_log_index, hint_index, hint_term } => {
                let hint_index = hint_index.min(rejected_prev_log_index);
                // A compacted index stops the search: the follower then gets the snapshot.
                let first_index = core.log.first_index();
                let term_at = |index: Index| core.log.term(index).or((index < first_index).then_some(0));
                let next_index = next_index_after_hint(term_at, hint_index, hint_term);
                progress.on_rejected(rejected_prev_log_index, next_index);
            }
        }
    }

    pub(crate) fn on_heartbeat_response(&mut self, from: NodeId) {
        let RoleState::Leader(leader) = &mut self.role else { return };
        if let Some(progress) = leader.progress.get_mut(&from) {
            progress.last_active_ms = self.core.now_ms;
            progress.on_heartbeat_response(self.core.log.last_index());
        }
    }

    /// Advances the commit index to the highest index a quorum holds durably, but only through
    /// an entry of the current term (Raft §5.4.2, figure 8): older entries commit with it.
    pub(crate) fn maybe_commit(&mut self) {
        if self.advance_commit() {
            self.on_commit_advanced();
            self.on_commit_membership();
        }
    }

    fn advance_commit(&mut self) -> bool {
        let Raft { core, role } = self;
        let RoleState::Leader(leader) = role else { return false };
        let quorum_index = quorum_reached(core, leader, core.log.persisted_index(), |progress| progress.match_index);
        if core.log.term(quorum_index) != Some(core.term) {
            return false;
        }
        let previous_commit = core.log.commit_index();
        if !core.log.commit_to(quorum_index) {
            return false;
        }
        let released: usize =
            (previous_commit + 1..=quorum_index).filter_map(|index| core.log.entry(index)).map(Entry::size_bytes).sum();
        leader.uncommitted_bytes = leader.uncommitted_bytes.saturating_sub(released);
        true
    }

    // ----- follower -----

    pub(crate) fn on_append_request(
        &mut self,
        from: NodeId,
        prev_log_index: Index,
        prev_log_term: Term,
        entries: &[Entry],
        leader_commit: Index,
    ) -> Result<(), StepError> {
        let core = &mut self.core;
        if core.snapshots.is_installing() {
            // The log is about to be replaced; the leader resends what stays unanswered.
            return Ok(());
        }
        let commit_index = core.log.commit_index();
        if prev_log_index < commit_index {
            // Everything up to our commit index matches the leader's log (Leader Completeness);
            // say so, and the leader resumes from there.
            let accepted = AppendOutcome::Accepted { match_index: commit_index };
            core.send(from, core.term, MessageBody::AppendResponse(accepted));
            return Ok(());
        }
        if !core.log.matches(prev_log_index, prev_log_term) {
            let (hint_index, hint_term) = core.log.last_index_with_term_at_most(prev_log_index, prev_log_term);
            let rejected = AppendOutcome::Rejected { rejected_prev_log_index: prev_log_index, hint_index, hint_term };
            core.send(from, core.term, MessageBody::AppendResponse(rejected));
            return Ok(());
        }
        let appended = core
            .log
            .append_after_match(prev_log_index, entries)
            .map_err(|conflict| StepError::ConflictsWithCommitted { from, index: conflict.index })?;
        if let Some(truncated_from) = appended.truncated_from {
            withdraw_acceptances_from(core, truncated_from);
        }
        // The latest configuration in the log is in force, committed or not: a new one
        // arrived, or a truncation may have removed the one in force.
        let configuration_arrived = entries.iter().any(|entry| matches!(entry.kind, EntryKind::Configuration(_)));
        if configuration_arrived || appended.truncated_from.is_some_and(|from| from <= core.membership_index) {
            core.refresh_membership();
        }
        let last_new_index = appended.last_new_index;
        core.log.commit_to(leader_commit.min(last_new_index));
        let accepted = AppendOutcome::Accepted { match_index: last_new_index };
        core.send(from, core.term, MessageBody::AppendResponse(accepted));
        Ok(())
    }

    pub(crate) fn on_heartbeat_request(&mut self, from: NodeId, commit_index: Index, round: u64) {
        let core = &mut self.core;
        // The leader capped `commit_index` at what it knows we hold; cap it at our log too, in
        // case we lost a suffix the leader has not noticed yet. Not while a snapshot is being
        // installed: the state machine must not move past it meanwhile.
        if !core.snapshots.is_installing() {
            core.log.commit_to(commit_index.min(core.log.last_index()));
        }
        core.send(from, core.term, MessageBody::HeartbeatResponse { round });
    }
}

/// The latest time by which a quorum (the leader included, always current) had answered.
fn quorum_contact_ms(core: &Core, leader: &LeaderState) -> u64 {
    quorum_reached(core, leader, core.now_ms, |progress| progress.last_active_ms)
}

/// The highest value a quorum of voters has reached, where each follower's value is
/// `of_follower(its progress)` and the leader's own is `own` (a voter with no progress counts
/// as 0). The commit index, the CheckQuorum contact time and the confirmed read round are all
/// this, of different values; during a joint change, of both halves.
pub(crate) fn quorum_reached(
    core: &Core,
    leader: &LeaderState,
    own: u64,
    of_follower: impl Fn(&Progress) -> u64,
) -> u64 {
    core.membership.quorum_value(|voter| match leader.progress.get(&voter) {
        Some(progress) => of_follower(progress),
        None if voter == core.id => own,
        None => 0,
    })
}

/// A follower just dropped entries from `truncated_from` on. An acceptance still waiting in
/// the outbox may claim some of them (it was produced earlier in this Ready, for an older
/// leader): once this Ready is persisted those entries will not be on disk, so the claim would
/// be false, and a leader counting it could commit entries no quorum holds. Withdraw such
/// acceptances; losing an acknowledgement is always safe.
fn withdraw_acceptances_from(core: &mut Core, truncated_from: Index) {
    core.outbox.after_persist.retain(|message| {
        !matches!(
            message.body,
            MessageBody::AppendResponse(AppendOutcome::Accepted { match_index }) if match_index >= truncated_from
        )
    });
}

/// Sends appends to one follower while its window allows. Returns whether any left.
fn send_entries(core: &mut Core, follower: NodeId, progress: &mut Progress) -> bool {
    let compacted = core.log.term(progress.prev_log_index()).is_none();
    if compacted || matches!(progress.state, ReplicationState::Snapshot(_)) {
        return send_snapshot_chunks(core, follower, progress);
    }
    let mut sent_any = false;
    while progress.can_send(core.config.inflight_appends_max) && progress.next_index <= core.log.last_index() {
        let prev_log_index = progress.prev_log_index();
        let prev_log_term = core.log.term(prev_log_index).expect("next index is within the log");
        let entries =
            core.log.entries_from(progress.next_index, core.config.append_entries_max, core.config.append_bytes_max);
        let last_index = entries.last().map_or(prev_log_index, |entry| entry.index);
        let leader_commit = core.log.commit_index();
        progress.on_append_sent(last_index, entries.len());
        progress.commit_index_sent = progress.commit_index_sent.max(leader_commit.min(last_index));
        let body = MessageBody::AppendRequest { prev_log_index, prev_log_term, entries, leader_commit };
        core.send(follower, core.term, body);
        sent_any = true;
        if matches!(progress.state, ReplicationState::Probe { .. }) {
            break;
        }
    }
    sent_any
}

/// A heartbeat carries a commit index capped at what the follower is known to hold, and the
/// number of the latest round, which the follower echoes.
fn send_heartbeat(core: &mut Core, follower: NodeId, progress: &mut Progress, round: u64) {
    let commit_index = core.log.commit_index().min(progress.match_index);
    progress.commit_index_sent = progress.commit_index_sent.max(commit_index);
    core.send(follower, core.term, MessageBody::HeartbeatRequest { commit_index, round });
}

/// A new heartbeat round to every follower: on the heartbeat interval, or at once when reads
/// wait for one. A lone voter confirms its reads right away.
fn send_heartbeat_round(core: &mut Core, leader: &mut LeaderState) {
    leader.heartbeat_deadline_ms = core.now_ms + core.config.heartbeat_interval_ms;
    let round = leader.reads.start_round(core.now_ms);
    for (&follower, progress) in leader.progress.iter_mut() {
        send_heartbeat(core, follower, progress, round);
    }
    confirm_reads(core, leader);
}
