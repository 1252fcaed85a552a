//! The engine's API contract, verb by verb: what each input accepts, what it refuses and why,
//! and what each acknowledgement may and may not move.

use bytes::Bytes;
use engine::testkit::Cluster;
use engine::{
    ApplyError, Config, ConfigError, Entry, EntryKind, HardState, InitError, Membership, MessageBody, PersistedState,
    ProposeError, Raft, Ready, Role,
};

fn config() -> Config {
    Config {
        election_timeout_ms_min: 1000,
        election_timeout_ms_max: 2000,
        heartbeat_interval_ms: 100,
        ..Config::default()
    }
}

fn single_node_leader(config: Config) -> Raft {
    let mut raft = Raft::new(1, config, PersistedState::bootstrap(Membership::new([1])), 1, 0).unwrap();
    raft.campaign().unwrap();
    assert_eq!(raft.role(), Role::Leader);
    raft
}

/// Takes a Ready and acknowledges all of it, as a driver with an instant disk would.
fn drive(raft: &mut Raft) -> Ready {
    let ready = raft.ready();
    if let Some((index, term)) = ready.persisted_position() {
        raft.on_persisted(index, term);
    }
    if let Some(last) = ready.entries_to_apply.last() {
        raft.on_applied(last.index).unwrap();
    }
    ready
}

fn entry(index: u64, term: u64) -> Entry {
    Entry { term, index, kind: EntryKind::Noop }
}

// ----- propose -----

#[test]
fn a_follower_refuses_proposals_and_names_the_leader() {
    let mut cluster = Cluster::new(&[1, 2, 3], config(), 1);
    cluster.campaign(1).unwrap();
    cluster.stabilize();
    let error = cluster.propose(2, Bytes::from_static(b"x")).unwrap_err();
    assert_eq!(error, ProposeError::NotLeader { leader_hint: Some(1) });
}

#[test]
fn an_entry_over_the_size_limit_is_refused_and_one_at_the_limit_is_not() {
    let overhead = Entry { term: 0, index: 0, kind: EntryKind::Normal(Bytes::new()) }.size_bytes();
    let mut raft = single_node_leader(Config { entry_size_bytes_max: overhead + 100, ..config() });
    assert!(raft.propose(Bytes::from(vec![0; 100])).is_ok(), "exactly at the limit is allowed");
    let error = raft.propose(Bytes::from(vec![0; 101])).unwrap_err();
    assert_eq!(error, ProposeError::EntryTooLarge { size_bytes: overhead + 101, limit_bytes: overhead + 100 });
}

#[test]
fn uncommitted_bytes_are_bounded_and_released_by_commit() {
    let overhead = Entry { term: 0, index: 0, kind: EntryKind::Normal(Bytes::new()) }.size_bytes();
    let per_entry = overhead + 100;
    // Room for the no-op (its own overhead) and exactly three entries.
    let noop = Entry { term: 0, index: 0, kind: EntryKind::Noop }.size_bytes();
    let limit = noop + 3 * per_entry;
    let mut raft =
        single_node_leader(Config { uncommitted_bytes_max: limit, entry_size_bytes_max: per_entry, ..config() });
    for _ in 0..3 {
        raft.propose(Bytes::from(vec![0; 100])).unwrap();
    }
    let error = raft.propose(Bytes::from(vec![0; 100])).unwrap_err();
    assert_eq!(error, ProposeError::UncommittedLimitReached { uncommitted_bytes: limit, limit_bytes: limit });
    drive(&mut raft);
    assert_eq!(raft.commit_index(), 5, "a single voter commits once its write is durable");
    for _ in 0..3 {
        raft.propose(Bytes::from(vec![0; 100])).expect("commit released the budget");
    }
}

// ----- restart validation -----

fn restart(persisted: PersistedState) -> Result<Raft, InitError> {
    Raft::new(1, config(), persisted, 1, 0)
}

#[test]
fn restart_refuses_a_state_no_correct_driver_could_have_written() {
    let good = PersistedState::bootstrap(Membership::new([1, 2, 3]));
    assert!(restart(good.clone()).is_ok());
    assert_eq!(Raft::new(0, config(), good.clone(), 1, 0).unwrap_err(), InitError::ZeroNodeId);
    let bad_config = Config { heartbeat_interval_ms: 0, ..config() };
    assert!(matches!(
        Raft::new(1, bad_config, good.clone(), 1, 0),
        Err(InitError::Config(ConfigError::HeartbeatTooSlow { .. }))
    ));

    let no_membership = PersistedState { entries: vec![entry(1, 1)], ..good.clone() };
    assert_eq!(restart(no_membership).unwrap_err(), InitError::NoMembership);

    let mut gap = good.clone();
    gap.entries.push(entry(3, 1));
    assert_eq!(restart(gap).unwrap_err(), InitError::LogNotContiguous { position: 1, index: 3 });

    let mut decreasing = good.clone();
    decreasing.hard_state.term = 3;
    decreasing.entries.push(entry(2, 3));
    decreasing.entries.push(entry(3, 2));
    assert_eq!(restart(decreasing).unwrap_err(), InitError::TermsDecrease { index: 3 });

    let mut future = good.clone();
    future.entries.push(entry(2, 2));
    assert_eq!(restart(future).unwrap_err(), InitError::EntryTermAboveHardState { index: 2 });

    let mut past_the_log = good.clone();
    past_the_log.hard_state.commit_index = 2;
    assert_eq!(restart(past_the_log).unwrap_err(), InitError::CommitBeyondLog { commit_index: 2, last_index: 1 });

    let mut applied_past_commit = good.clone();
    applied_past_commit.applied_index = 2;
    applied_past_commit.entries.push(entry(2, 1));
    assert_eq!(
        restart(applied_past_commit).unwrap_err(),
        InitError::AppliedBeyondCommit { applied_index: 2, commit_index: 1 }
    );

    let mut at_the_edge = good;
    at_the_edge.entries.push(entry(2, 1));
    at_the_edge.hard_state.commit_index = 2;
    at_the_edge.applied_index = 2;
    assert!(restart(at_the_edge).is_ok(), "commit at the last index and applied at commit are fine");
}

#[test]
fn restart_resumes_the_durable_term_vote_and_commit() {
    let mut persisted = PersistedState::bootstrap(Membership::new([1, 2, 3]));
    persisted.entries.push(entry(2, 4));
    persisted.hard_state = HardState { term: 5, voted_for: Some(3), commit_index: 2 };
    let raft = restart(persisted).unwrap();
    assert_eq!((raft.term(), raft.voted_for(), raft.commit_index()), (5, Some(3), 2));
    assert_eq!(raft.hard_state(), HardState { term: 5, voted_for: Some(3), commit_index: 2 });
    assert_eq!(raft.role(), Role::Follower);
}

// ----- appends -----

#[test]
fn appends_respect_the_byte_limit_but_always_carry_one_entry() {
    let overhead = Entry { term: 0, index: 0, kind: EntryKind::Normal(Bytes::new()) }.size_bytes();
    let config = Config { append_bytes_max: 2 * (overhead + 100), inflight_appends_max: 100, ..config() };
    let mut cluster = Cluster::new(&[1, 2], config, 1);
    cluster.campaign(1).unwrap();
    cluster.stabilize();
    for _ in 0..5 {
        cluster.propose(1, Bytes::from(vec![0; 100])).unwrap();
    }
    cluster.propose(1, Bytes::from(vec![0; 1000])).unwrap();
    cluster.process_ready(1, true);
    let sizes: Vec<usize> = cluster
        .in_flight()
        .iter()
        .filter_map(|message| match &message.body {
            MessageBody::AppendRequest { entries, .. } => Some(entries.len()),
            _ => None,
        })
        .collect();
    assert_eq!(sizes, vec![2, 2, 1, 1], "two entries fit per append; the large one travels alone");
}

#[test]
fn the_leader_reports_follower_progress_and_others_do_not() {
    let mut cluster = Cluster::new(&[1, 2, 3], config(), 1);
    cluster.campaign(1).unwrap();
    cluster.stabilize();
    let leader = cluster.node(1).unwrap();
    assert_eq!(leader.progress(2).map(|progress| progress.match_index), Some(2));
    assert!(leader.progress(1).is_none(), "a leader tracks only the others");
    assert!(cluster.node(2).unwrap().progress(3).is_none(), "followers track nobody");
    assert_eq!(cluster.node(2).unwrap().voted_for(), Some(1));
}

// ----- acknowledgements -----

#[test]
fn persistence_acknowledgements_that_do_not_match_are_ignored() {
    let mut raft = single_node_leader(config());
    raft.propose(Bytes::from_static(b"a")).unwrap();
    let ready = raft.ready();
    assert!(ready.needs_persist());
    let (index, term) = ready.persisted_position().unwrap();
    raft.on_persisted(index, term + 1);
    assert_eq!(raft.log().persisted_index(), 1, "an acknowledgement for another term is not this entry's");
    raft.on_persisted(index + 1, term);
    assert_eq!(raft.log().persisted_index(), 1, "an entry never handed out cannot be durable");
    raft.on_persisted(index, term);
    assert_eq!(raft.log().persisted_index(), index);
    raft.on_persisted(index - 1, term);
    assert_eq!(raft.log().persisted_index(), index, "the durable frontier never moves back");
}

#[test]
fn applying_more_than_was_handed_out_is_refused() {
    let mut raft = single_node_leader(config());
    let ready = drive(&mut raft);
    let handed_out = ready.entries_to_apply.last().map_or(0, |entry| entry.index);
    assert_eq!(raft.on_applied(handed_out + 1), Err(ApplyError::NotHandedOut { index: handed_out + 1, handed_out }));
    assert_eq!(raft.on_applied(handed_out), Ok(()));
}

#[test]
fn ready_says_what_it_holds() {
    assert!(Ready::default().is_empty());
    assert!(!Ready::default().needs_persist());
    let with_hard_state = Ready { hard_state: Some(HardState::default()), ..Ready::default() };
    assert!(!with_hard_state.is_empty() && with_hard_state.needs_persist());
    let with_entries = Ready { entries_to_persist: vec![entry(1, 1)], ..Ready::default() };
    assert!(!with_entries.is_empty() && with_entries.needs_persist());
    let with_apply = Ready { entries_to_apply: vec![entry(1, 1)], ..Ready::default() };
    assert!(!with_apply.is_empty() && !with_apply.needs_persist());
    let message = engine::Message { from: 1, to: 2, term: 1, body: MessageBody::HeartbeatResponse { round: 0 } };
    let with_now = Ready { messages_now: vec![message.clone()], ..Ready::default() };
    assert!(!with_now.is_empty() && !with_now.needs_persist());
    let with_after = Ready { messages_after_persist: vec![message], ..Ready::default() };
    assert!(!with_after.is_empty());
}

// ----- leader stickiness boundary -----

#[test]
fn stickiness_lasts_exactly_one_minimum_election_timeout() {
    // Without PreVote, a vote request of a higher term is ignored while the follower heard
    // from its leader less than election_timeout_ms_min ago, and heeded from then on.
    let config = Config { pre_vote: false, check_quorum: true, ..config() };
    let vote_request = engine::Message {
        from: 3,
        to: 2,
        term: 9,
        body: MessageBody::VoteRequest { last_log_index: 100, last_log_term: 100, leadership_transfer: false },
    };
    let mut cluster = Cluster::new(&[1, 2, 3], config, 1);
    cluster.campaign(1).unwrap();
    cluster.stabilize();
    let term = cluster.node(2).unwrap().term();
    // Time passes; the leader's heartbeats are lost, so node 2 last heard from it at 0 ms.
    cluster.advance(999);
    cluster.drop_where(|_| true);
    cluster.step_raw(vote_request.clone()).unwrap();
    assert_eq!(cluster.node(2).unwrap().term(), term, "at 999 ms the leader is still presumed alive");
    cluster.advance(1);
    cluster.drop_where(|_| true);
    cluster.step_raw(vote_request).unwrap();
    let follower = cluster.node(2).unwrap();
    assert_eq!((follower.term(), follower.voted_for()), (9, Some(3)), "at 1000 ms the vote is heeded");
}

mod snapshots_and_membership {
    use bytes::Bytes;
    use engine::testkit::Cluster;
    use engine::{ConfChange, ConfChangeError, Config, SnapshotError, TransferError};

    fn cluster() -> Cluster {
        // No trailing entries: a learner that has answered nothing is behind at once.
        let config = Config { snapshot_trailing_entries: 0, ..Config::default() };
        let mut cluster = Cluster::new(&[1, 2, 3], config, 3);
        cluster.campaign(1).unwrap();
        cluster.stabilize();
        cluster
    }

    #[test]
    fn snapshot_calls_refuse_what_the_log_cannot_back() {
        let mut cluster = cluster();
        let raft = cluster.node(1).unwrap();
        let applied = raft.log().applied_index();
        assert_eq!(raft.snapshot_meta(applied + 1), Err(SnapshotError::NotApplied { index: applied + 1, applied }));
        let mut meta = raft.snapshot_meta(applied).unwrap();
        meta.term += 1;
        let wrong = engine::Snapshot { meta, data: Bytes::from_static(b"image") };
        let error = cluster.node_mut(1).on_snapshot_saved(wrong);
        assert!(matches!(error, Err(SnapshotError::WrongMeta { .. })), "{error:?}");
        assert_eq!(cluster.node_mut(1).on_snapshot_installed(5), Err(SnapshotError::NotInstalling { index: 5 }));
    }

    #[test]
    fn membership_calls_name_what_is_wrong() {
        let mut cluster = cluster();
        let add = |id| ConfChange::AddLearner { id, metadata: Bytes::new() };
        assert_eq!(cluster.conf_change(2, add(4)), Err(ConfChangeError::NotLeader { leader_hint: Some(1) }));
        assert_eq!(cluster.conf_change(1, add(0)), Err(ConfChangeError::ZeroNodeId));
        assert_eq!(cluster.conf_change(1, add(3)), Err(ConfChangeError::AlreadyMember { id: 3 }));
        assert_eq!(cluster.conf_change(1, ConfChange::Promote(2)), Err(ConfChangeError::NotALearner { id: 2 }));
        assert_eq!(cluster.conf_change(1, ConfChange::Remove(7)), Err(ConfChangeError::UnknownNode { id: 7 }));
        assert!(cluster.conf_change(1, add(4)).is_ok());
        assert_eq!(cluster.conf_change(1, add(5)), Err(ConfChangeError::ChangeInProgress));
        // A learner that never answered has not caught up.
        cluster.stabilize();
        assert_eq!(cluster.conf_change(1, ConfChange::Promote(4)), Err(ConfChangeError::LearnerBehind { id: 4 }));
        assert_eq!(cluster.transfer_leadership(1, 4), Err(TransferError::NotAVoter { id: 4 }));
        assert_eq!(cluster.transfer_leadership(1, 1), Err(TransferError::AlreadyLeader));
        assert!(cluster.transfer_leadership(1, 2).is_ok());
        assert_eq!(cluster.transfer_leadership(1, 3), Err(TransferError::TransferInProgress));
        assert_eq!(cluster.conf_change(1, ConfChange::Remove(4)), Err(ConfChangeError::TransferInProgress));
    }
}
