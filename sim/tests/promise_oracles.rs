//! Every message is checked when it leaves, whichever `Ready` field carried it, and every read
//! when it is handed out: fed the reports of a node that breaks a promise, the observer says
//! so; fed the same messages after the promise is durable (or confirmed), it does not. The
//! engine has no switch for any of this: the tests call the observer's hooks directly, as a
//! node whose driver sent the message at that moment would.

use engine::testkit::Cluster;
use engine::{
    AppendOutcome, Config, HardState, Membership, Message, MessageBody, PersistedState, Raft, ReadState, Role,
};
use kvstore::node::NodeObserver;
use sim::oracles::ClusterObserver;

/// Node 1 of a fresh three-node cluster: a follower in term 1 that holds the bootstrap entry.
fn follower() -> (ClusterObserver, Raft) {
    let raft = Raft::new(1, Config::default(), PersistedState::bootstrap(Membership::new([1, 2, 3])), 1, 0).unwrap();
    let observer = ClusterObserver::new();
    observer.started(&raft, &PersistedState::bootstrap(raft.membership().clone()));
    (observer, raft)
}

fn message(from: u64, to: u64, term: u64, body: MessageBody) -> Message {
    Message { from, to, term, body }
}

fn vote_request(term: u64, last_log_index: u64, last_log_term: u64) -> Message {
    message(2, 1, term, MessageBody::VoteRequest { last_log_index, last_log_term, leadership_transfer: false })
}

fn flagged(observer: &ClusterObserver, words: &str) -> bool {
    let violations = observer.finish();
    assert!(violations.iter().all(|v| v.contains(words)), "other violations too: {violations:?}");
    !violations.is_empty()
}

#[test]
fn a_granted_vote_that_leaves_before_it_is_durable_is_flagged() {
    let (observer, raft) = follower();
    observer.receiving(&raft, &vote_request(2, 1, 1));
    // Sent at once, as if it had been put in `messages_now`: the disk still says term 1.
    observer.sending(&raft, &message(1, 2, 2, MessageBody::VoteResponse { granted: true }));
    assert!(flagged(&observer, "not durable"));
}

#[test]
fn a_granted_vote_after_its_persist_is_no_violation() {
    let (observer, raft) = follower();
    observer.receiving(&raft, &vote_request(2, 1, 1));
    observer.persisted(&raft, Some(HardState { term: 2, voted_for: Some(2), commit_index: 1 }), &[]);
    observer.sending(&raft, &message(1, 2, 2, MessageBody::VoteResponse { granted: true }));
    assert!(!flagged(&observer, ""));
}

#[test]
fn a_vote_for_a_candidate_whose_log_is_behind_is_flagged() {
    let (observer, raft) = follower();
    // The candidate's log is empty; the voter holds the bootstrap entry at index 1, term 1.
    observer.receiving(&raft, &vote_request(2, 0, 0));
    observer.persisted(&raft, Some(HardState { term: 2, voted_for: Some(2), commit_index: 1 }), &[]);
    observer.sending(&raft, &message(1, 2, 2, MessageBody::VoteResponse { granted: true }));
    assert!(flagged(&observer, "election restriction"));
}

#[test]
fn a_vote_request_before_the_candidates_own_vote_is_durable_is_flagged() {
    let (observer, raft) = follower();
    let request = MessageBody::VoteRequest { last_log_index: 1, last_log_term: 1, leadership_transfer: false };
    observer.sending(&raft, &message(1, 2, 2, request));
    assert!(flagged(&observer, "before its own vote was durable"));
}

#[test]
fn an_acceptance_of_entries_not_on_disk_is_flagged() {
    let (observer, raft) = follower();
    observer.persisted(&raft, Some(HardState { term: 2, voted_for: None, commit_index: 1 }), &[]);
    let accepted = MessageBody::AppendResponse(AppendOutcome::Accepted { match_index: 3 });
    observer.sending(&raft, &message(1, 2, 2, accepted));
    assert!(flagged(&observer, "not durable"));
}

#[test]
fn an_acceptance_in_a_term_not_yet_durable_is_flagged() {
    let (observer, raft) = follower();
    // Index 1 is on disk, but the disk's term is 1: restarted, the node could take a stale
    // leader of term 1's append and overwrite what it acknowledged to the leader of term 2.
    let accepted = MessageBody::AppendResponse(AppendOutcome::Accepted { match_index: 1 });
    observer.sending(&raft, &message(1, 2, 2, accepted));
    assert!(flagged(&observer, "before that term was durable"));
}

/// A three-node testkit cluster whose node 1 leads, every message delivered.
fn cluster_led_by_1(config: Config) -> Cluster {
    let mut cluster = Cluster::new(&[1, 2, 3], config, 7);
    cluster.campaign(1).unwrap();
    cluster.stabilize();
    assert_eq!(cluster.node(1).unwrap().role(), Role::Leader);
    cluster
}

/// Starts an observer on every node of `cluster` as it is now.
fn observe(cluster: &Cluster) -> ClusterObserver {
    let observer = ClusterObserver::new();
    for id in cluster.ids() {
        let raft = cluster.node(id).unwrap();
        observer.started(raft, &PersistedState::bootstrap(raft.membership().clone()));
    }
    observer
}

fn heartbeat_round(observer: &ClusterObserver, leader: &Raft, round: u64, echoed_by: &[u64]) {
    let term = leader.term();
    for to in [2, 3] {
        observer.sending(leader, &message(1, to, term, MessageBody::HeartbeatRequest { commit_index: 0, round }));
    }
    for &from in echoed_by {
        observer.receiving(leader, &message(from, 1, term, MessageBody::HeartbeatResponse { round }));
    }
}

fn read(observer: &ClusterObserver, leader: &Raft, lease: bool) {
    observer.read_requested(leader, 9, lease);
    observer.reads_released(leader, &[ReadState { id: 9, index: leader.commit_index() }]);
}

#[test]
fn a_read_released_without_a_confirmation_round_is_flagged() {
    let cluster = cluster_led_by_1(Config::default());
    let observer = observe(&cluster);
    let leader = cluster.node(1).unwrap();
    heartbeat_round(&observer, leader, 1, &[2]);
    // The read arrives after round 1; nothing later is echoed before it is handed out.
    read(&observer, leader, false);
    assert!(flagged(&observer, "without a round confirming it still led"));
}

#[test]
fn a_read_released_after_a_quorum_echoed_a_later_round_is_no_violation() {
    let cluster = cluster_led_by_1(Config::default());
    let observer = observe(&cluster);
    let leader = cluster.node(1).unwrap();
    observer.read_requested(leader, 9, false);
    heartbeat_round(&observer, leader, 1, &[3]);
    observer.reads_released(leader, &[ReadState { id: 9, index: leader.commit_index() }]);
    assert!(!flagged(&observer, ""));
}

#[test]
fn a_round_echoed_by_no_quorum_confirms_nothing() {
    let cluster = cluster_led_by_1(Config::default());
    let observer = observe(&cluster);
    let leader = cluster.node(1).unwrap();
    observer.read_requested(leader, 9, false);
    heartbeat_round(&observer, leader, 1, &[]);
    observer.reads_released(leader, &[ReadState { id: 9, index: leader.commit_index() }]);
    assert!(flagged(&observer, "without a round confirming it still led"));
}
