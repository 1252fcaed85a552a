//! kill -9 of the leader: the survivors elect a new one quickly, and serve writes.

use std::time::{Duration, Instant};

use kvstore::resp::Frame;

use crate::client::bulk;
use crate::support::{field, Cluster, ELECTION_TIMEOUT_MS_MAX, PATIENCE};

/// The bound: a new leader within two seconds of the election timeout.
const REELECTION_SLACK: Duration = Duration::from_secs(2);

#[test]
fn killing_the_leader_elects_a_new_one_within_two_seconds_of_the_election_timeout() {
    let mut cluster = Cluster::start("leader-kill");
    let old_leader = cluster.wait_for_leader(PATIENCE);
    let write = cluster.node(old_leader).client().command_retrying(&["SET", "before", "the crash"], PATIENCE);
    assert_eq!(write, Frame::ok());
    let old_term = field(&cluster.node(old_leader).info_raft(), "term");

    let killed_at = Instant::now();
    cluster.node_mut(old_leader).kill();
    let new_leader = cluster.wait_for_leader_after_term(old_term, PATIENCE);
    let reelection = killed_at.elapsed();
    eprintln!("node {new_leader} took over from node {old_leader} {reelection:?} after the kill");

    assert_ne!(new_leader, old_leader);
    let bound = Duration::from_millis(ELECTION_TIMEOUT_MS_MAX) + REELECTION_SLACK;
    assert!(reelection <= bound, "re-election took {reelection:?}, over {bound:?}");
    assert_writes_continue(&cluster);
}

/// Every survivor takes a write, and every survivor then reads every write, the one from
/// before the crash included.
fn assert_writes_continue(cluster: &Cluster) {
    let survivors = cluster.running_ids();
    for &id in &survivors {
        let reply = cluster.node(id).client().command_retrying(&["SET", &format!("after-{id}"), "ok"], PATIENCE);
        assert_eq!(reply, Frame::ok(), "write through node {id} after the crash");
    }
    for &reader in &survivors {
        let mut client = cluster.node(reader).client();
        assert_eq!(client.command_retrying(&["GET", "before"], PATIENCE), bulk("the crash"), "read on node {reader}");
        for &writer in &survivors {
            let reply = client.command_retrying(&["GET", &format!("after-{writer}")], PATIENCE);
            assert_eq!(reply, bulk("ok"), "node {reader} reads the write through node {writer}");
        }
    }
}
