//! What a leader may do only while it can prove it still leads, checked from the messages it
//! sends and receives rather than from its own bookkeeping: release a read (after a quorum has
//! echoed a heartbeat round sent after the read arrived, or inside a lease that a quorum's
//! echoes still cover), and go on leading at all (CheckQuorum: a quorum answered within the
//! minimum election timeout).
//!
//! The watch recomputes each fact from what crossed the wire and from the configuration's
//! numbers, so an engine that miscounts (a round nobody echoed, a message sent taken for a
//! message answered, a lease that forgets the drift margin) is caught however its own state
//! came to believe otherwise.

use std::collections::BTreeMap;

use crate::message::{Message, MessageBody};
use crate::{Membership, NodeId, Raft, Role, Term};

/// One node's leadership of one term, as seen on the wire.
#[derive(Debug, Default)]
pub(crate) struct LeaderWatch {
    term: Term,
    /// Every membership the leader had in force this term, oldest first (a read confirmed
    /// under one may be handed out after the leader appended the next).
    memberships: Vec<Membership>,
    /// When each heartbeat round was first sent, by the leader's clock.
    round_sent_ms: BTreeMap<u64, u64>,
    /// The highest round each follower's echo reached the leader with.
    echoed_round: BTreeMap<NodeId, u64>,
    /// When the leader last received anything of its term from each member, by its clock.
    heard_ms: BTreeMap<NodeId, u64>,
    /// When the leader was first seen leading this term.
    leading_since_ms: u64,
    /// The leader sent `TimeoutNow`: it is handing over and holds no lease from then on.
    handed_over: bool,
}

/// A read as it was asked of a leader.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadAsked {
    pub(crate) term: Term,
    /// The highest round the leader had sent when the read arrived: only a later one confirms it.
    round_sent_before: u64,
    /// The first of the watch's memberships in force since the read arrived.
    memberships_from: usize,
    /// A lease read, asked while the lease (as the watch computes it) held.
    lease_held: bool,
}

impl ReadAsked {
    /// A read asked of a node that was not leading: any release of it is a violation.
    pub(crate) fn of_a_non_leader(term: Term) -> ReadAsked {
        ReadAsked { term, round_sent_before: u64::MAX, memberships_from: usize::MAX, lease_held: false }
    }
}

impl LeaderWatch {
    /// The watch of `raft`'s current term while it leads, started afresh in a new term. A
    /// node that stopped leading keeps its last watch, for reads it still hands out.
    pub(crate) fn refresh<'a>(
        watches: &'a mut BTreeMap<NodeId, LeaderWatch>,
        raft: &Raft,
    ) -> Option<&'a mut LeaderWatch> {
        if raft.role() != Role::Leader {
            return None;
        }
        let watch = watches.entry(raft.id()).or_default();
        if watch.term != raft.term() {
            *watch = LeaderWatch { term: raft.term(), leading_since_ms: raft.now_ms(), ..LeaderWatch::default() };
        }
        if watch.memberships.last() != Some(raft.membership()) {
            watch.memberships.push(raft.membership().clone());
        }
        Some(watch)
    }

    pub(crate) fn on_sent(&mut self, now_ms: u64, message: &Message) {
        match message.body {
            MessageBody::HeartbeatRequest { round, .. } => {
                self.round_sent_ms.entry(round).or_insert(now_ms);
            }
            MessageBody::TimeoutNow => self.handed_over = true,
            _ => {}
        }
    }

    pub(crate) fn on_received(&mut self, now_ms: u64, message: &Message) {
        if message.term != self.term {
            return;
        }
        self.heard_ms.insert(message.from, now_ms);
        if let MessageBody::HeartbeatResponse { round } = message.body {
            // An echo of a round never sent proves nothing; the engine must ignore it too.
            if self.round_sent_ms.contains_key(&round) {
                let echoed = self.echoed_round.entry(message.from).or_insert(0);
                *echoed = (*echoed).max(round);
            }
        }
    }

    /// Leader `raft` accepted a read now.
    pub(crate) fn read_asked(&self, raft: &Raft, lease: bool) -> ReadAsked {
        let round_sent_before = self.round_sent_ms.keys().next_back().copied().unwrap_or(0);
        let memberships_from = self.memberships.len() - 1;
        let lease_held = lease && self.lease_end_ms(raft).is_some_and(|end_ms| raft.now_ms() < end_ms);
        ReadAsked { term: self.term, round_sent_before, memberships_from, lease_held }
    }

    /// The highest round a quorum of `membership` has echoed (the leader counts as echoing
    /// every round), or `None` if the leader alone is a quorum and needs no echo.
    fn quorum_echoed_round(&self, leader: NodeId, membership: &Membership) -> Option<u64> {
        if membership.has_quorum(|voter| voter == leader) {
            return None;
        }
        let echoed =
            |voter: NodeId, round: u64| voter == leader || self.echoed_round.get(&voter).is_some_and(|&r| r >= round);
        let best = self.round_sent_ms.keys().rev().find(|&&round| membership.has_quorum(|voter| echoed(voter, round)));
        Some(best.copied().unwrap_or(0))
    }

    /// When the lease ends by the leader's clock: the send time of the last round a quorum
    /// echoed, plus the minimum election timeout, less the drift margin. `None`: no lease.
    fn lease_end_ms(&self, raft: &Raft) -> Option<u64> {
        let config = raft.config();
        if !(config.lease_reads && config.check_quorum) || self.handed_over {
            return None;
        }
        let confirmed = self.quorum_echoed_round(raft.id(), raft.membership()).unwrap_or(u64::MAX);
        let sent_ms = if confirmed == u64::MAX { raft.now_ms() } else { *self.round_sent_ms.get(&confirmed)? };
        Some(sent_ms + config.election_timeout_ms_min - config.lease_clock_drift_ms)
    }

    /// A read handed out by node `raft` (leading now or not): the leader proved it led after
    /// the read arrived, by a quorum's echo of a later round under a membership it had in
    /// force meanwhile, or the read was a lease read asked while the lease held.
    pub(crate) fn check_read_release(&self, raft: &Raft, read_id: u64, asked: ReadAsked) -> Result<(), String> {
        let id = raft.id();
        ensure!(
            asked.term == self.term,
            "read safety: node {id} released read {read_id}, asked in term {}, after leading term {}",
            asked.term,
            self.term
        );
        let memberships = self.memberships.get(asked.memberships_from..).unwrap_or(&[]);
        let confirmed = memberships.iter().any(|membership| {
            self.quorum_echoed_round(id, membership).is_none_or(|round| round > asked.round_sent_before)
        });
        ensure!(
            confirmed || asked.lease_held,
            "read safety: leader {id} of term {} released read {read_id} without a round confirming it still led \
             (the read arrived after round {}; echoes {:?}; memberships {memberships:?}), and not under a lease",
            self.term,
            asked.round_sent_before,
            self.echoed_round
        );
        Ok(())
    }

    /// CheckQuorum: a leader that has not heard from a quorum for longer than the minimum
    /// election timeout must have stepped down by now.
    pub(crate) fn check_quorum_contact(&self, raft: &Raft) -> Result<(), String> {
        let config = raft.config();
        if !config.check_quorum {
            return Ok(());
        }
        let (id, now_ms) = (raft.id(), raft.now_ms());
        let heard = |voter: NodeId| {
            let heard_ms =
                if voter == id { now_ms } else { self.heard_ms.get(&voter).copied().unwrap_or(self.leading_since_ms) };
            now_ms.saturating_sub(heard_ms) <= config.election_timeout_ms_min
        };
        // The engine decides on its ticks; a membership appended since the last tick is judged
        // at the next one, so the one before it may still be the one the verdict used.
        let recent = &self.memberships[self.memberships.len().saturating_sub(2)..];
        ensure!(
            recent.iter().any(|membership| membership.has_quorum(heard)),
            "check quorum: leader {id} of term {} still leads at {now_ms} ms, having heard from no quorum within {} ms \
             (last heard: {:?}, leading since {} ms, membership {:?})",
            self.term,
            config.election_timeout_ms_min,
            self.heard_ms,
            self.leading_since_ms,
            raft.membership()
        );
        Ok(())
    }
}
