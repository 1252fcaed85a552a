//! Elections: PreVote, votes, and counting them.

use crate::message::MessageBody;
use crate::raft::{Raft, RoleState, Votes};
use crate::types::{Index, NodeId, Term};

/// What an election round's answers add up to.
#[derive(Debug, PartialEq, Eq)]
enum Tally {
    Won,
    Lost,
    Pending,
}

impl Raft {
    /// Election timeout or an explicit campaign: a pre-vote round if PreVote is on, else a vote.
    pub(crate) fn start_election(&mut self) {
        if self.core.config.pre_vote {
            self.start_pre_vote();
        } else {
            self.start_vote();
        }
    }

    fn start_pre_vote(&mut self) {
        let core = &mut self.core;
        core.leader_id = None;
        core.reset_election_deadline();
        let (last_log_index, last_log_term) = (core.log.last_index(), core.log.last_term());
        let next_term = core.term + 1;
        for voter in core.other_voters() {
            core.send(voter, next_term, MessageBody::PreVoteRequest { last_log_index, last_log_term });
        }
        self.role = RoleState::PreCandidate(self.own_vote());
        if self.tally() == Tally::Won {
            self.start_vote();
        }
    }

    fn start_vote(&mut self) {
        self.start_vote_round(false);
    }

    /// The leader handed over leadership ([`MessageBody::TimeoutNow`]): campaign at once,
    /// without PreVote, asking voters to set leader stickiness aside.
    pub(crate) fn on_timeout_now(&mut self) {
        if self.core.may_campaign() && !matches!(self.role, RoleState::Leader(_)) {
            self.start_vote_round(true);
        }
    }

    fn start_vote_round(&mut self, leadership_transfer: bool) {
        let core = &mut self.core;
        core.term += 1;
        core.voted_for = Some(core.id);
        core.leader_id = None;
        core.reset_election_deadline();
        let (last_log_index, last_log_term) = (core.log.last_index(), core.log.last_term());
        for voter in core.other_voters() {
            let request = MessageBody::VoteRequest { last_log_index, last_log_term, leadership_transfer };
            core.send(voter, core.term, request);
        }
        self.role = RoleState::Candidate(self.own_vote());
        if self.tally() == Tally::Won {
            self.become_leader();
        }
    }

    fn own_vote(&self) -> Votes {
        let mut votes = Votes::default();
        votes.granted.insert(self.core.id);
        votes
    }

    /// A real vote request of our term. The vote, once granted, is for the whole term; the
    /// answer leaves only after the vote is durable (it goes in `messages_after_persist`).
    pub(crate) fn on_vote_request(&mut self, from: NodeId, last_log_index: Index, last_log_term: Term) {
        let core = &mut self.core;
        let can_vote = core.voted_for == Some(from) || (core.voted_for.is_none() && core.leader_id.is_none());
        let granted = can_vote && core.log.is_up_to_date(last_log_index, last_log_term);
        if granted {
            core.voted_for = Some(from);
            core.reset_election_deadline();
        }
        core.send(from, core.term, MessageBody::VoteResponse { granted });
    }

    /// A pre-vote for `term` (ours or the next). Answering changes no state here. A node that
    /// heard from a live leader recently refuses, so a node returning from a partition cannot
    /// win a pre-vote and depose a healthy leader.
    pub(crate) fn on_pre_vote_request(&mut self, from: NodeId, term: Term, last_log_index: Index, last_log_term: Term) {
        let core = &mut self.core;
        let can_vote = (term > core.term && !core.in_leader_lease())
            || core.voted_for == Some(from)
            || (core.voted_for.is_none() && core.leader_id.is_none());
        let granted = can_vote && core.log.is_up_to_date(last_log_index, last_log_term);
        let answer_term = if granted { term } else { core.term };
        core.send(from, answer_term, MessageBody::PreVoteResponse { granted });
    }

    pub(crate) fn on_pre_vote_response(&mut self, from: NodeId, term: Term, granted: bool) {
        let next_term = self.core.term + 1;
        let RoleState::PreCandidate(votes) = &mut self.role else { return };
        if !self.core.membership.is_voter(from) {
            return;
        }
        // A grant for an earlier round's term is not a grant for this one.
        if granted && term == next_term {
            votes.granted.insert(from);
        } else if !granted {
            votes.rejected.insert(from);
        }
        match self.tally() {
            Tally::Won => self.start_vote(),
            Tally::Lost => self.become_follower(self.core.term, None),
            Tally::Pending => {}
        }
    }

    pub(crate) fn on_vote_response(&mut self, from: NodeId, granted: bool) {
        let RoleState::Candidate(votes) = &mut self.role else { return };
        if !self.core.membership.is_voter(from) {
            return;
        }
        if granted {
            votes.granted.insert(from);
        } else {
            votes.rejected.insert(from);
        }
        match self.tally() {
            Tally::Won => self.become_leader(),
            Tally::Lost => self.become_follower(self.core.term, None),
            Tally::Pending => {}
        }
    }

    fn tally(&self) -> Tally {
        let (RoleState::PreCandidate(votes) | RoleState::Candidate(votes)) = &self.role else {
            return Tally::Pending;
        };
        let membership = &self.core.membership;
        // Lost once the rejections leave either half without a possible majority.
        let could_win = membership.has_quorum(|id| !votes.rejected.contains(&id));
        if membership.has_quorum(|id| votes.granted.contains(&id)) {
            Tally::Won
        } else if !could_win {
            Tally::Lost
        } else {
            Tally::Pending
        }
    }
}
