//! The cluster observer has teeth: fed the reports of nodes that break a Raft property, or
//! of a restart that recovers less than was made durable, it says so. (A correct run is the
//! sweep's business: every simulated node reports to it there.)

use bytes::Bytes;
use engine::{Config, Entry, EntryKind, HardState, Membership, PersistedState, Raft, Role};
use kvstore::node::NodeObserver;
use sim::oracles::ClusterObserver;

/// A node that leads a cluster of its own in the first election term, as each side of a split
/// brain would.
fn lone_leader(id: u64) -> Raft {
    let mut raft = Raft::new(id, Config::default(), PersistedState::bootstrap(Membership::new([id])), id, 0).unwrap();
    raft.campaign().unwrap();
    assert_eq!((raft.role(), raft.term()), (Role::Leader, 2), "bootstrap is term 1, the first election term 2");
    raft
}

fn started(observer: &ClusterObserver, raft: &Raft) {
    observer.started(raft, &PersistedState::bootstrap(raft.membership().clone()));
}

fn entry(index: u64, term: u64, data: &'static [u8]) -> Entry {
    Entry { index, term, kind: EntryKind::Normal(Bytes::from_static(data)) }
}

#[test]
fn a_quiet_start_is_no_violation() {
    let observer = ClusterObserver::new();
    let raft = lone_leader(1);
    started(&observer, &raft);
    observer.turn_ended(&raft);
    assert_eq!(observer.finish(), Vec::<String>::new());
}

#[test]
fn two_leaders_in_one_term_are_flagged() {
    let observer = ClusterObserver::new();
    let (first, second) = (lone_leader(1), lone_leader(2));
    for raft in [&first, &second] {
        started(&observer, raft);
        observer.turn_ended(raft);
    }
    let violations = observer.finish();
    assert!(violations.iter().any(|v| v.contains("election safety")), "{violations:?}");
}

#[test]
fn different_entries_applied_at_one_index_are_flagged() {
    let observer = ClusterObserver::new();
    let (first, second) = (lone_leader(1), lone_leader(2));
    started(&observer, &first);
    started(&observer, &second);
    observer.applied(&first, &[entry(1, 1, b"a")]);
    observer.applied(&second, &[entry(1, 1, b"b")]);
    let violations = observer.finish();
    assert!(violations.iter().any(|v| v.contains("state machine safety")), "{violations:?}");
}

#[test]
fn a_restart_that_lost_durable_entries_is_flagged() {
    let observer = ClusterObserver::new();
    let raft = lone_leader(1);
    started(&observer, &raft);
    let hard_state = HardState { term: 2, voted_for: Some(1), commit_index: 0 };
    observer.persisted(&raft, Some(hard_state), &[entry(1, 2, b"a"), entry(2, 2, b"b")]);
    // The node comes back with only the first entry: the second was acknowledged as durable.
    let recovered = PersistedState { hard_state, entries: vec![entry(1, 2, b"a")], ..PersistedState::default() };
    observer.started(&raft, &recovered);
    let violations = observer.finish();
    assert!(violations.iter().any(|v| v.contains("recovery") && v.contains("index 2")), "{violations:?}");
}

#[test]
fn a_durable_term_going_back_is_flagged() {
    let observer = ClusterObserver::new();
    let raft = lone_leader(1);
    started(&observer, &raft);
    observer.persisted(&raft, Some(HardState { term: 5, voted_for: None, commit_index: 0 }), &[]);
    observer.persisted(&raft, Some(HardState { term: 4, voted_for: None, commit_index: 0 }), &[]);
    let violations = observer.finish();
    assert!(violations.iter().any(|v| v.contains("durable term went back")), "{violations:?}");
}

#[test]
fn the_trace_hash_follows_what_nodes_report() {
    let (quiet, busy) = (ClusterObserver::new(), ClusterObserver::new());
    let raft = lone_leader(1);
    started(&quiet, &raft);
    started(&busy, &raft);
    busy.applied(&raft, &[entry(1, 1, b"a")]);
    assert_ne!(quiet.trace_hash(), busy.trace_hash());
}
