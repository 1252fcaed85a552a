//! ReadIndex and lease reads, case by case. (The property tests check read safety on random
//! schedules: a released read never misses an entry committed before it was asked for.)

use bytes::Bytes;
use engine::testkit::{Cluster, Oracles};
use engine::{Config, Membership, Message, MessageBody, PersistedState, Raft, ReadError, ReadState, Role};

fn config(lease_reads: bool) -> Config {
    Config {
        election_timeout_ms_min: 1000,
        election_timeout_ms_max: 2000,
        heartbeat_interval_ms: 100,
        lease_reads,
        lease_clock_drift_ms: 100,
        ..Config::default()
    }
}

/// A 3-node cluster with node 1 leading and its no-op committed everywhere.
fn three_nodes(lease_reads: bool) -> Cluster {
    let mut cluster = Cluster::new(&[1, 2, 3], config(lease_reads), 7);
    // With leases on, nodes refuse votes for a minimum election timeout after they start.
    cluster.advance(1000);
    cluster.campaign(1).unwrap();
    cluster.stabilize();
    assert_eq!(cluster.leader(), Some(1));
    cluster
}

fn released(cluster: &Cluster) -> Vec<ReadState> {
    cluster.reads_released().iter().map(|&(_, read)| read).collect()
}

#[test]
fn a_follower_refuses_a_read_index_and_names_the_leader() {
    let mut cluster = three_nodes(false);
    assert_eq!(cluster.read(2, 1, false), Err(ReadError::NotLeader { leader_hint: Some(1) }));
    assert_eq!(cluster.read(2, 2, true), Err(ReadError::NotLeader { leader_hint: Some(1) }));
}

#[test]
fn a_read_index_waits_for_a_quorum_to_echo_a_round_sent_after_it() {
    let mut cluster = three_nodes(false);
    let commit = cluster.status(1).commit_index;
    cluster.read(1, 42, false).unwrap();
    cluster.process_ready(1, true);
    assert!(released(&cluster).is_empty(), "released before any follower answered");
    let round_heartbeats =
        cluster.in_flight().iter().filter(|m| matches!(m.body, MessageBody::HeartbeatRequest { .. })).count();
    assert_eq!(round_heartbeats, 2, "one heartbeat round to both followers");
    cluster.stabilize();
    assert_eq!(released(&cluster), vec![ReadState { id: 42, index: commit }]);
}

#[test]
fn reads_asked_together_share_one_round() {
    let mut cluster = three_nodes(false);
    for id in 1..=10 {
        cluster.read(1, id, false).unwrap();
    }
    cluster.process_ready(1, true);
    let heartbeats = cluster.in_flight().iter().filter(|m| matches!(m.body, MessageBody::HeartbeatRequest { .. }));
    assert_eq!(heartbeats.count(), 2, "ten reads, one round");
    cluster.stabilize();
    assert_eq!(released(&cluster).len(), 10);
}

#[test]
fn a_read_covers_writes_committed_before_it() {
    let mut cluster = three_nodes(false);
    let index = cluster.propose(1, Bytes::from_static(b"w")).unwrap();
    cluster.stabilize();
    cluster.read(1, 1, false).unwrap();
    cluster.stabilize();
    assert!(released(&cluster)[0].index >= index);
}

#[test]
fn a_new_leader_holds_reads_until_it_commits_an_entry_of_its_term() {
    let mut cluster = three_nodes(false);
    cluster.advance(1000); // lets node 3's stickiness lapse, as after the leader's death
    cluster.crash(1);
    cluster.campaign(2).unwrap();
    let is_election = |m: &Message| {
        matches!(
            m.body,
            MessageBody::PreVoteRequest { .. }
                | MessageBody::PreVoteResponse { .. }
                | MessageBody::VoteRequest { .. }
                | MessageBody::VoteResponse { .. }
        )
    };
    for _ in 0..4 {
        cluster.process_ready(2, true);
        cluster.process_ready(3, true);
        cluster.deliver_where(is_election);
    }
    let status = cluster.status(2);
    assert_eq!(status.role, Some(Role::Leader));
    assert!(status.commit_index < status.last_index, "the new leader's no-op is not committed yet");
    cluster.read(2, 9, false).unwrap();
    // Heartbeat rounds go back and forth, but the no-op's append does not arrive.
    for _ in 0..3 {
        cluster.advance(100);
        cluster.process_ready(2, true);
        cluster.process_ready(3, true);
        cluster.deliver_where(|m| {
            matches!(m.body, MessageBody::HeartbeatRequest { .. } | MessageBody::HeartbeatResponse { .. })
        });
    }
    assert!(released(&cluster).is_empty(), "a read released before the leader's no-op committed");
    cluster.stabilize();
    assert_eq!(released(&cluster), vec![ReadState { id: 9, index: cluster.status(2).commit_index }]);
}

#[test]
fn a_partitioned_leader_never_releases_a_read() {
    let mut cluster = three_nodes(false);
    cluster.partition(&[vec![1], vec![2, 3]]);
    cluster.read(1, 5, false).unwrap();
    for _ in 0..30 {
        cluster.advance(100);
        cluster.stabilize();
    }
    assert!(released(&cluster).is_empty(), "a leader without a quorum released a read");
    assert_ne!(cluster.status(1).role, Some(Role::Leader), "CheckQuorum stepped it down");
}

#[test]
fn a_lease_read_is_released_at_once_while_the_lease_holds() {
    let mut cluster = three_nodes(true);
    cluster.advance(100); // a heartbeat round, echoed by both followers
    cluster.stabilize();
    assert!(cluster.node(1).unwrap().lease_remaining_ms().is_some());
    cluster.read(1, 1, true).unwrap();
    cluster.process_ready(1, true);
    assert_eq!(released(&cluster).len(), 1, "no round trip needed");
    assert!(cluster.in_flight().is_empty(), "nothing was sent for the read");
}

#[test]
fn without_an_echoed_round_a_lease_read_takes_a_round() {
    let mut cluster = three_nodes(true);
    cluster.partition(&[vec![1], vec![2, 3]]);
    // The followers stop answering; the lease runs out a drift margin before they could vote.
    cluster.advance(950);
    assert_eq!(cluster.node(1).unwrap().lease_remaining_ms(), None);
    cluster.read(1, 1, true).unwrap();
    cluster.process_ready(1, true);
    assert!(released(&cluster).is_empty(), "a lease read outside the lease was released");
}

#[test]
fn leases_are_off_unless_configured() {
    let mut cluster = three_nodes(false);
    cluster.advance(100);
    cluster.stabilize();
    assert_eq!(cluster.node(1).unwrap().lease_remaining_ms(), None);
    cluster.read(1, 1, true).unwrap();
    cluster.process_ready(1, true);
    assert!(released(&cluster).is_empty(), "a lease read without leases must take a round");
}

#[test]
fn a_lone_voter_releases_reads_without_messages() {
    let mut raft = Raft::new(1, config(false), PersistedState::bootstrap(Membership::new([1])), 1, 0).unwrap();
    raft.campaign().unwrap();
    loop {
        let ready = raft.ready();
        if ready.is_empty() {
            break;
        }
        if let Some((index, term)) = ready.persisted_position() {
            raft.on_persisted(index, term);
        }
        if let Some(last) = ready.entries_to_apply.last() {
            raft.on_applied(last.index).unwrap();
        }
    }
    raft.read_index(3).unwrap();
    let ready = raft.ready();
    assert_eq!(ready.reads, vec![ReadState { id: 3, index: raft.commit_index() }]);
}

#[test]
fn with_leases_a_restarted_node_refuses_votes_for_a_minimum_election_timeout() {
    let mut cluster = three_nodes(true);
    cluster.crash(3);
    cluster.restart(3);
    cluster.partition(&[vec![1], vec![2, 3]]);
    cluster.campaign(2).unwrap();
    cluster.stabilize();
    assert_ne!(cluster.status(2).role, Some(Role::Leader), "node 3 voted while node 1 may still hold a lease");
    cluster.advance(1000);
    cluster.campaign(2).unwrap();
    cluster.stabilize();
    assert_eq!(cluster.status(2).role, Some(Role::Leader));
}

#[test]
fn the_read_oracle_flags_a_read_that_misses_a_committed_write() {
    let mut cluster = three_nodes(false);
    cluster.propose(1, Bytes::from_static(b"w")).unwrap();
    cluster.stabilize();
    let mut oracles = Oracles::default();
    let leader = cluster.node(1).unwrap();
    let durable_logs = cluster.ids().into_iter().map(|id| (id, cluster.disk(id))).collect();
    oracles.observe_node(leader, &durable_logs).unwrap();
    oracles.observe_read_requested(leader, 1, false);
    let stale = ReadState { id: 1, index: leader.commit_index() - 1 };
    let violation = oracles.observe_read_released(leader, stale).unwrap_err();
    assert!(violation.contains("read safety"), "{violation}");
}

/// Transfer does not break leases: the voters grant the target's vote despite hearing from
/// the leader, so from the moment it hands over the leader may not serve under its lease.
#[test]
fn a_leader_handing_over_serves_no_lease_reads() {
    let mut cluster = three_nodes(true);
    cluster.advance(100);
    cluster.stabilize();
    assert!(cluster.node(1).unwrap().lease_remaining_ms().is_some(), "the lease holds before the transfer");
    cluster.transfer_leadership(1, 2).unwrap();
    assert_eq!(cluster.node(1).unwrap().lease_remaining_ms(), None, "no lease while handing over");
    cluster.read(1, 7, true).unwrap();
    cluster.process_ready(1, false);
    assert!(released(&cluster).is_empty(), "a lease read waits for a round instead");
    // Settled by a round instead (the oracles check that the read index is safe).
    cluster.stabilize();
    assert_eq!(cluster.leader(), Some(2), "the target took over");
}

/// The lease's exact boundary, in the engine and in the oracle. A round sent at `T` and echoed
/// by a quorum gives a lease until `T + election_timeout_ms_min - lease_clock_drift_ms` (here
/// `T + 900`) by the leader's clock: a lease read one millisecond before is served at once,
/// one at the boundary takes a round, and the oracle flags a lease read released at the
/// boundary while allowing one just before.
#[test]
fn the_lease_ends_exactly_at_the_drift_margin_before_the_election_timeout() {
    let mut cluster = three_nodes(true);
    cluster.advance(100); // a heartbeat round, echoed by both followers
    cluster.stabilize();
    let sent_ms = cluster.now_ms();
    cluster.partition(&[vec![1], vec![2, 3]]);
    let mut oracles = Oracles::default();
    let (leader, disk) = (cluster.node(1).unwrap(), cluster.disk(1));
    let term = leader.term();
    oracles
        .observe_sent(
            leader,
            &Message { from: 1, to: 2, term, body: MessageBody::HeartbeatRequest { commit_index: 0, round: 77 } },
            disk,
        )
        .unwrap();
    oracles.observe_received(
        leader,
        &Message { from: 2, to: 1, term, body: MessageBody::HeartbeatResponse { round: 77 } },
    );

    cluster.advance(899);
    assert_eq!(cluster.node(1).unwrap().lease_remaining_ms(), Some(1), "the round at {sent_ms} ms leases until +900");
    cluster.read(1, 1, true).unwrap();
    cluster.process_ready(1, true);
    assert_eq!(released(&cluster).len(), 1, "a lease read one millisecond before the end is served at once");
    let leader = cluster.node(1).unwrap();
    oracles.observe_read_requested(leader, 1, true);
    oracles.observe_read_released(leader, ReadState { id: 1, index: leader.commit_index() }).unwrap();

    cluster.advance(1);
    assert_eq!(cluster.node(1).unwrap().lease_remaining_ms(), None);
    cluster.read(1, 2, true).unwrap();
    cluster.process_ready(1, true);
    assert_eq!(released(&cluster).len(), 1, "a lease read at the end of the lease waits for a round");
    let leader = cluster.node(1).unwrap();
    oracles.observe_read_requested(leader, 2, true);
    let violation =
        oracles.observe_read_released(leader, ReadState { id: 2, index: leader.commit_index() }).unwrap_err();
    assert!(violation.contains("not under a lease"), "{violation}");
}
