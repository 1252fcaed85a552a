//! Receiving a message: validate it, settle the term once, then hand it to the role.

use crate::error::StepError;
use crate::message::{Message, MessageBody};
use crate::raft::{Raft, RoleState};
use crate::types::{Entry, Index, Term};

impl Raft {
    /// Handles a message from a peer. Stale messages are ignored or answered; a message no
    /// correct peer could send is dropped with an error for the driver to log.
    pub fn step(&mut self, message: Message) -> Result<(), StepError> {
        validate(&message, self.core.id)?;
        let result = self.step_validated(message);
        self.check_invariants_if_debug();
        result
    }

    fn step_validated(&mut self, message: Message) -> Result<(), StepError> {
        let asks_for_vote =
            matches!(message.body, MessageBody::VoteRequest { .. } | MessageBody::PreVoteRequest { .. });
        let membership = &self.core.membership;
        if asks_for_vote && !membership.voters.is_empty() && !membership.is_voter(message.from) {
            // A node this configuration does not count (removed, and not told so, since the
            // leader stops replicating to it) would otherwise raise everyone's term with each
            // campaign it cannot win, forever (Raft dissertation §4.2.3). Ignoring it is safe:
            // a vote may always be withheld. A node that knows no configuration yet (added and
            // promoted before it received anything) cannot judge, and its vote may be the one
            // a candidate needs.
            return Ok(());
        }
        if message.term > self.core.term {
            if !self.on_higher_term(&message) {
                return Ok(());
            }
        } else if message.term < self.core.term {
            self.on_lower_term(&message);
            return Ok(());
        }
        self.dispatch(message)
    }

    /// A message from a higher term. Returns whether to go on handling it.
    fn on_higher_term(&mut self, message: &Message) -> bool {
        // A vote for a leadership transfer is one the leader itself asked for.
        let is_vote_request = matches!(
            message.body,
            MessageBody::VoteRequest { leadership_transfer: false, .. } | MessageBody::PreVoteRequest { .. }
        );
        if is_vote_request && self.core.config.check_quorum && self.core.in_leader_lease() {
            // Leader stickiness: a live leader exists, so this candidate was cut off from it and
            // must not depose it. Not answering makes it time out again, without a term change.
            return false;
        }
        match message.body {
            // A pre-vote asks about a term the sender has not entered: nothing changes here.
            MessageBody::PreVoteRequest { .. } => {}
            // A granted pre-vote carries the term we would campaign in, not a newer term.
            MessageBody::PreVoteResponse { granted: true } => {}
            MessageBody::AppendRequest { .. }
            | MessageBody::HeartbeatRequest { .. }
            | MessageBody::SnapshotChunk { .. } => {
                self.become_follower(message.term, Some(message.from));
            }
            _ => self.become_follower(message.term, None),
        }
        true
    }

    /// A message from an older term. Most are simply stale, but two must be answered or the
    /// cluster can stall (the PreVote + CheckQuorum liveness traps that left etcd leaderless).
    fn on_lower_term(&mut self, message: &Message) {
        let core = &mut self.core;
        match message.body {
            // A leader of an older term, cut off while we moved on: tell it our term and it
            // steps down. Otherwise, with CheckQuorum it would keep us quiet forever; and a
            // leader never hears the term of a node whose vote requests it ignores (one its
            // configuration does not count as a voter, such as a learner that was a voter).
            MessageBody::AppendRequest { .. }
            | MessageBody::HeartbeatRequest { .. }
            | MessageBody::SnapshotChunk { .. } => {
                core.send(message.from, core.term, MessageBody::HeartbeatResponse { round: 0 });
            }
            // A pre-candidate behind our term: rejecting with our term lets it catch up, so a
            // node with an up-to-date log but an old term can still win a later election.
            MessageBody::PreVoteRequest { .. } => {
                core.send(message.from, core.term, MessageBody::PreVoteResponse { granted: false });
            }
            _ => {}
        }
    }

    /// A message of the current term (or a pre-vote message), handed to the role.
    fn dispatch(&mut self, message: Message) -> Result<(), StepError> {
        let Message { from, term, body, .. } = message;
        match body {
            MessageBody::PreVoteRequest { last_log_index, last_log_term } => {
                self.on_pre_vote_request(from, term, last_log_index, last_log_term);
            }
            MessageBody::VoteRequest { last_log_index, last_log_term, .. } => {
                self.on_vote_request(from, last_log_index, last_log_term);
            }
            MessageBody::PreVoteResponse { granted } => self.on_pre_vote_response(from, term, granted),
            MessageBody::VoteResponse { granted } => self.on_vote_response(from, granted),
            MessageBody::AppendRequest { prev_log_index, prev_log_term, entries, leader_commit } => {
                if !self.accept_leader(from) {
                    return Ok(());
                }
                return self.on_append_request(from, prev_log_index, prev_log_term, &entries, leader_commit);
            }
            MessageBody::HeartbeatRequest { commit_index, round } => {
                if self.accept_leader(from) {
                    self.on_heartbeat_request(from, commit_index, round);
                }
            }
            MessageBody::SnapshotChunk { meta, offset, total_bytes, data } => {
                if self.accept_leader(from) {
                    self.on_snapshot_chunk(from, meta, offset, total_bytes, data);
                }
            }
            MessageBody::SnapshotChunkResponse { snapshot_index, next_offset } => {
                self.on_snapshot_chunk_response(from, snapshot_index, next_offset);
            }
            MessageBody::TimeoutNow => {
                if self.accept_leader(from) {
                    self.on_timeout_now();
                }
            }
            MessageBody::AppendResponse(outcome) => self.on_append_response(from, outcome),
            MessageBody::HeartbeatResponse { round } => {
                self.on_heartbeat_response(from);
                self.on_round_echoed(from, round);
            }
        }
        Ok(())
    }

    /// A leader of our own term spoke: candidates of this term give up. Returns false if this
    /// node is itself the leader of the term, which a correct peer can never cause.
    fn accept_leader(&mut self, from: crate::NodeId) -> bool {
        match self.role {
            RoleState::Leader(_) => false,
            RoleState::Follower => {
                self.core.leader_id = Some(from);
                self.core.leader_contact_ms = Some(self.core.now_ms);
                self.core.reset_election_deadline();
                true
            }
            RoleState::PreCandidate(_) | RoleState::Candidate(_) => {
                self.become_follower(self.core.term, Some(from));
                true
            }
        }
    }
}

/// Rejects messages that no correct peer sends, before they touch any state.
fn validate(message: &Message, me: crate::NodeId) -> Result<(), StepError> {
    if message.to != me {
        return Err(StepError::WrongRecipient { to: message.to, me });
    }
    if message.from == me || message.from == 0 {
        return Err(StepError::ImpossibleSender { from: message.from });
    }
    if let MessageBody::AppendRequest { prev_log_index, prev_log_term, entries, .. } = &message.body {
        validate_entries(*prev_log_index, *prev_log_term, entries, message.term)
            .map_err(|reason| StepError::Malformed { from: message.from, reason })?;
    }
    if let MessageBody::SnapshotChunk { meta, offset, total_bytes, data } = &message.body {
        validate_snapshot_chunk(meta, *offset, *total_bytes, data.len(), message.term)
            .map_err(|reason| StepError::Malformed { from: message.from, reason })?;
    }
    Ok(())
}

fn validate_entries(
    prev_log_index: Index,
    prev_log_term: Term,
    entries: &[Entry],
    term: Term,
) -> Result<(), &'static str> {
    if prev_log_term > term {
        return Err("previous entry's term is above the message's term");
    }
    let mut expected_index = prev_log_index;
    let mut previous_term = prev_log_term;
    for entry in entries {
        expected_index = expected_index.checked_add(1).ok_or("entry index overflows")?;
        if entry.index != expected_index {
            return Err("entries are not contiguous after the previous entry");
        }
        if entry.term < previous_term || entry.term > term {
            return Err("entry terms must not decrease and not exceed the message's term");
        }
        previous_term = entry.term;
    }
    Ok(())
}

fn validate_snapshot_chunk(
    meta: &crate::SnapshotMeta,
    offset: u64,
    total_bytes: u64,
    length: usize,
    term: Term,
) -> Result<(), &'static str> {
    if meta.index == 0 || meta.term == 0 || meta.term > term {
        return Err("snapshot position is impossible for the message's term");
    }
    if meta.membership.voters.is_empty() {
        return Err("snapshot carries no voters");
    }
    let end = offset.checked_add(length as u64).ok_or("chunk end overflows")?;
    if end > total_bytes {
        return Err("chunk ends past the snapshot's length");
    }
    Ok(())
}
