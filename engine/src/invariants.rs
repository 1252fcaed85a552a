//! Facts that hold after every input. The engine checks them after every input in builds with
//! debug assertions: debug and test builds, and the simulator's `sim` profile (release speed,
//! assertions on), so every scenario, property test and simulated seed checks them at every
//! step. Production release builds skip them; [`Raft::check_invariants`] itself always checks.

use crate::raft::{Raft, RoleState};

impl Raft {
    /// Panics if the node's state contradicts itself. One fact per assertion.
    pub fn check_invariants(&self) {
        self.check_log_frontiers();
        self.check_role();
    }

    /// The check every input ends with: on wherever debug assertions are.
    pub(crate) fn check_invariants_if_debug(&self) {
        if cfg!(debug_assertions) {
            self.check_invariants();
        }
    }

    fn check_log_frontiers(&self) {
        let log = &self.core.log;
        assert!(log.commit_index() <= log.last_index(), "commit index past the log");
        assert!(log.applied_index() <= log.apply_handed_out_index(), "applied more than was handed out");
        assert!(log.apply_handed_out_index() <= log.commit_index(), "handed out uncommitted entries to apply");
        assert!(log.apply_handed_out_index() <= log.persisted_index(), "handed out unpersisted entries to apply");
        assert!(log.persisted_index() < log.persist_handed_out_from(), "persisted entries never handed out");
        assert!(log.persist_handed_out_from() <= log.last_index() + 1, "handed out entries past the log");
        assert!(log.last_term() <= self.core.term, "log holds an entry from a future term");
        if let Some(last) = log.entries().last() {
            assert_eq!(last.index, log.last_index(), "log positions and indexes disagree");
        }
        assert!(log.snapshot_index() <= log.applied_index(), "the snapshot covers entries not applied");
        assert!(log.first_index() <= log.snapshot_index() + 1, "entries are missing after the snapshot");
    }

    fn check_role(&self) {
        let core = &self.core;
        let membership = &core.membership;
        assert!(membership.learners.is_disjoint(&membership.all_voters()), "a learner is not also a voter");
        assert!(!membership.is_joint() || !membership.voters.is_empty(), "a joint configuration has new voters");
        match &self.role {
            RoleState::Leader(leader) => {
                assert_eq!(core.voted_for, Some(core.id), "a leader voted for itself");
                assert_eq!(core.leader_id, Some(core.id), "a leader knows it leads");
                assert_eq!(core.log.last_term(), core.term, "a leader's log ends in its own term");
                let followers: Vec<_> = leader.progress.keys().copied().collect();
                assert_eq!(followers, core.other_members(), "a leader tracks exactly the other members");
                for progress in leader.progress.values() {
                    assert!(progress.match_index < progress.next_index, "next index is past the match");
                    assert!(progress.match_index <= core.log.last_index(), "follower matches past the log");
                    assert!(progress.next_index <= core.log.last_index() + 1, "next index past the log");
                }
            }
            RoleState::Candidate(votes) => {
                assert_eq!(core.voted_for, Some(core.id), "a candidate voted for itself");
                assert!(core.leader_id.is_none(), "a candidate knows no leader");
                assert!(votes.granted.contains(&core.id), "a candidate counts its own vote");
            }
            RoleState::PreCandidate(votes) => {
                assert!(core.leader_id.is_none(), "a pre-candidate knows no leader");
                assert!(votes.granted.contains(&core.id), "a pre-candidate counts its own vote");
            }
            RoleState::Follower => {
                assert_ne!(core.leader_id, Some(core.id), "a follower does not lead");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The invariants have teeth: each test plants one contradiction and expects the check to
    //! name it.

    use crate::log::RaftLog;
    use crate::raft::RoleState;
    use crate::{Config, Entry, EntryKind, Membership, PersistedState, Raft};

    fn follower() -> Raft {
        Raft::new(1, Config::default(), PersistedState::bootstrap(Membership::new([1, 2, 3])), 1, 0).expect("valid")
    }

    #[test]
    #[should_panic(expected = "a follower does not lead")]
    fn follower_that_thinks_it_leads() {
        let mut raft = follower();
        raft.core.leader_id = Some(1);
        raft.check_invariants();
    }

    #[test]
    #[should_panic(expected = "a leader voted for itself")]
    fn leader_that_voted_for_another() {
        let mut raft = Raft::new(1, Config::default(), PersistedState::bootstrap(Membership::new([1])), 1, 0).unwrap();
        raft.campaign().expect("a single voter elects itself");
        assert!(matches!(raft.role, RoleState::Leader(_)));
        raft.core.voted_for = Some(2);
        raft.check_invariants();
    }

    #[test]
    #[should_panic(expected = "commit index past the log")]
    fn commit_past_the_log() {
        let mut raft = follower();
        let entries = raft.core.log.entries().to_vec();
        raft.core.log = RaftLog::restore(entries, 5, 0);
        raft.check_invariants();
    }

    #[test]
    #[should_panic(expected = "log holds an entry from a future term")]
    fn entry_from_a_future_term() {
        let mut raft = follower();
        let mut entries = raft.core.log.entries().to_vec();
        entries.push(Entry { term: 9, index: 2, kind: EntryKind::Noop });
        raft.core.log = RaftLog::restore(entries, 1, 0);
        raft.check_invariants();
    }

    #[test]
    #[should_panic(expected = "a candidate voted for itself")]
    fn candidate_without_its_own_vote() {
        let mut raft = Raft::new(
            1,
            Config { pre_vote: false, ..Config::default() },
            PersistedState::bootstrap(Membership::new([1, 2, 3])),
            1,
            0,
        )
        .unwrap();
        raft.campaign().expect("may campaign");
        raft.core.voted_for = None;
        raft.check_invariants();
    }
}
