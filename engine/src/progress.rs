//! What a leader knows about one follower's log, and how fast it may send to it.

use std::collections::VecDeque;

use crate::types::{Index, Snapshot, Term};

/// How a leader replicates to one follower.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicationState {
    /// The leader does not know where the follower's log matches its own. It sends one append
    /// at a time and waits for the answer (or a heartbeat interval) before sending another.
    Probe { waiting_for_response: bool },
    /// The follower's log matches; appends stream optimistically, at most a window of them
    /// unacknowledged. Each queue item is the last index of one append in flight.
    Replicate { inflight_last_indexes: VecDeque<Index> },
    /// The follower needs entries the leader compacted away: it gets the snapshot, in chunks.
    Snapshot(SnapshotTransfer),
}

/// A snapshot on its way to one follower. It holds the snapshot it started with (a cheap
/// reference to the bytes), so a newer snapshot taken meanwhile does not restart it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotTransfer {
    pub snapshot: Snapshot,
    /// Bytes before this were sent.
    pub sent_offset: u64,
    /// Bytes before this are held by the follower, as it last said.
    pub acked_offset: u64,
    /// `acked_offset` when the previous heartbeat answer arrived, to notice a stall.
    pub acked_at_last_heartbeat: u64,
    /// Send an empty chunk at the end, asking whether the follower installed the snapshot
    /// (its answer, or the install's acknowledgement, was lost).
    pub probe_wanted: bool,
}

impl SnapshotTransfer {
    pub fn total_bytes(&self) -> u64 {
        self.snapshot.data.len() as u64
    }
}

/// A leader's view of one follower.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The follower's log is known to match the leader's up to here.
    pub match_index: Index,
    /// The next entry to send.
    pub next_index: Index,
    pub state: ReplicationState,
    /// When the follower last answered (or when the leader took office, before any answer).
    /// CheckQuorum and the leader's lease are computed from these times.
    pub last_active_ms: u64,
    /// The commit index this follower was last sent, so that a commit advance reaches it
    /// without waiting for the next heartbeat.
    pub commit_index_sent: Index,
    /// `match_index` when the previous heartbeat answer arrived. An answer that finds it
    /// unchanged while appends are outstanding means they were lost: resume by probing.
    pub match_index_at_last_heartbeat: Index,
    /// The highest heartbeat round this follower echoed (see `read.rs`).
    pub echoed_round: u64,
}

impl Progress {
    /// A follower about which nothing is known yet: probe from just after the leader's log.
    pub fn new(leader_last_index: Index, now_ms: u64) -> Self {
        Progress {
            match_index: 0,
            next_index: leader_last_index + 1,
            state: ReplicationState::Probe { waiting_for_response: false },
            last_active_ms: now_ms,
            commit_index_sent: 0,
            match_index_at_last_heartbeat: 0,
            echoed_round: 0,
        }
    }

    /// Whether the leader may send another append now.
    pub fn can_send(&self, inflight_appends_max: usize) -> bool {
        match &self.state {
            ReplicationState::Probe { waiting_for_response } => !waiting_for_response,
            ReplicationState::Replicate { inflight_last_indexes } => inflight_last_indexes.len() < inflight_appends_max,
            ReplicationState::Snapshot(_) => false,
        }
    }

    /// The follower's next entry is compacted away: send it `snapshot` instead.
    pub fn start_snapshot(&mut self, snapshot: Snapshot) {
        let probe_wanted = snapshot.data.is_empty();
        self.state = ReplicationState::Snapshot(SnapshotTransfer {
            snapshot,
            sent_offset: 0,
            acked_offset: 0,
            acked_at_last_heartbeat: 0,
            probe_wanted,
        });
    }

    /// The follower holds the first `next_offset` bytes of the snapshot at `snapshot_index`.
    /// Less than it said before means it lost them (it restarted): resend from there.
    pub fn on_snapshot_response(&mut self, snapshot_index: Index, next_offset: u64) {
        let ReplicationState::Snapshot(transfer) = &mut self.state else { return };
        if transfer.snapshot.meta.index != snapshot_index || next_offset > transfer.total_bytes() {
            return;
        }
        // Answers to chunks still in flight say less than was sent: that is normal. Less
        // than the follower said before means it lost what it had.
        if next_offset < transfer.acked_offset {
            transfer.sent_offset = next_offset;
        }
        transfer.acked_offset = next_offset;
        transfer.sent_offset = transfer.sent_offset.max(next_offset);
    }

    /// Records that an append ending at `last_index` left for this follower.
    pub fn on_append_sent(&mut self, last_index: Index, entry_count: usize) {
        match &mut self.state {
            ReplicationState::Probe { waiting_for_response } => *waiting_for_response = true,
            ReplicationState::Replicate { inflight_last_indexes } => {
                if entry_count > 0 {
                    inflight_last_indexes.push_back(last_index);
                    self.next_index = last_index + 1;
                }
            }
            ReplicationState::Snapshot(_) => {}
        }
    }

    /// Handles an acceptance. Returns whether it taught us anything new (a stale or duplicated
    /// acceptance does not).
    pub fn on_accepted(&mut self, match_index: Index) -> bool {
        if let ReplicationState::Probe { waiting_for_response } = &mut self.state {
            *waiting_for_response = false;
        }
        if match_index <= self.match_index {
            return false;
        }
        self.match_index = match_index;
        self.next_index = self.next_index.max(match_index + 1);
        match &mut self.state {
            ReplicationState::Probe { .. } => self.become_replicate(),
            ReplicationState::Snapshot(transfer) => {
                // The follower installed the snapshot (or caught up some other way).
                if match_index >= transfer.snapshot.meta.index {
                    self.become_replicate();
                }
            }
            ReplicationState::Replicate { inflight_last_indexes } => {
                while inflight_last_indexes.front().is_some_and(|&last| last <= match_index) {
                    inflight_last_indexes.pop_front();
                }
            }
        }
        true
    }

    /// Handles a rejection of the append that followed `rejected_prev_log_index`. `next_index_after_hint`
    /// is where the leader's own log says the next probe should start. Returns whether the
    /// rejection was current (a stale one, for an append already superseded, is ignored).
    pub fn on_rejected(&mut self, rejected_prev_log_index: Index, next_index_after_hint: Index) -> bool {
        if rejected_prev_log_index < self.match_index || matches!(self.state, ReplicationState::Snapshot(_)) {
            return false;
        }
        if let ReplicationState::Probe { .. } = self.state {
            if rejected_prev_log_index + 1 != self.next_index {
                return false;
            }
        }
        self.next_index =
            next_index_after_hint.clamp(self.match_index + 1, rejected_prev_log_index.max(self.match_index + 1));
        self.state = ReplicationState::Probe { waiting_for_response: false };
        true
    }

    /// A heartbeat answer shows the follower is alive: a paused probe may try again, and
    /// appends that made no progress over a whole heartbeat interval are taken as lost (a
    /// network that drops messages would otherwise stall this follower until the next write).
    pub fn on_heartbeat_response(&mut self, leader_last_index: Index) {
        match &mut self.state {
            ReplicationState::Probe { waiting_for_response } => *waiting_for_response = false,
            ReplicationState::Replicate { .. } => {
                let behind = self.match_index < leader_last_index;
                if behind && self.match_index == self.match_index_at_last_heartbeat {
                    self.next_index = self.match_index + 1;
                    self.state = ReplicationState::Probe { waiting_for_response: false };
                }
            }
            ReplicationState::Snapshot(transfer) => {
                // No chunk acknowledged over a whole interval: resend from what the follower
                // holds, or, if it holds it all, ask whether it installed it.
                if transfer.acked_offset == transfer.acked_at_last_heartbeat {
                    transfer.sent_offset = transfer.acked_offset;
                    transfer.probe_wanted = transfer.acked_offset == transfer.total_bytes();
                }
                transfer.acked_at_last_heartbeat = transfer.acked_offset;
            }
        }
        self.match_index_at_last_heartbeat = self.match_index;
    }

    fn become_replicate(&mut self) {
        self.next_index = self.match_index + 1;
        self.state = ReplicationState::Replicate { inflight_last_indexes: VecDeque::new() };
    }

    /// The leader's term for an index is needed to form `prev_log_term`; this is the index.
    pub fn prev_log_index(&self) -> Index {
        self.next_index - 1
    }
}

/// Where a leader should resume after a rejection carrying the hint `(hint_index, hint_term)`:
/// the first index after the last entry of the leader's own log, at or before `hint_index`,
/// whose term is at most `hint_term`. Both logs may match up to that entry, and no further.
pub fn next_index_after_hint(
    leader_term_at: impl Fn(Index) -> Option<Term>,
    hint_index: Index,
    hint_term: Term,
) -> Index {
    let mut candidate = hint_index;
    while candidate > 0 {
        match leader_term_at(candidate) {
            Some(term) if term <= hint_term => break,
            _ => candidate -= 1,
        }
    }
    candidate + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_waits_for_a_response_then_replicates_with_a_window() {
        let mut progress = Progress::new(10, 0);
        assert!(progress.can_send(2));
        progress.on_append_sent(10, 0);
        assert!(!progress.can_send(2), "a probe sends one append per round trip");
        assert!(progress.on_accepted(10));
        assert!(matches!(progress.state, ReplicationState::Replicate { .. }));
        progress.on_append_sent(12, 2);
        progress.on_append_sent(14, 2);
        assert!(!progress.can_send(2), "the window is full");
        assert!(progress.on_accepted(12));
        assert!(progress.can_send(2));
        assert_eq!(progress.next_index, 15);
    }

    #[test]
    fn stale_answers_change_nothing() {
        let mut progress = Progress::new(10, 0);
        progress.on_append_sent(10, 0);
        progress.on_accepted(10);
        assert!(!progress.on_accepted(9), "an old acceptance is not news");
        assert!(!progress.on_rejected(5, 3), "a rejection below the match index is stale");
        assert_eq!(progress.match_index, 10);
    }

    #[test]
    fn hint_skips_a_whole_divergent_term() {
        // Leader log terms: indexes 1..=3 term 1, 4..=8 term 3. Follower hints (6, 2).
        let leader = |index: Index| match index {
            0 => Some(0),
            1..=3 => Some(1),
            4..=8 => Some(3),
            _ => None,
        };
        assert_eq!(next_index_after_hint(leader, 6, 2), 4);
        assert_eq!(next_index_after_hint(leader, 8, 3), 9);
    }
}
