//! The README session, answered alike by every node, and writes through a follower.

use kvstore::resp::Frame;

use crate::client::{bulk, bulks, Client};
use crate::support::{Cluster, PATIENCE};

#[test]
fn the_readme_session_answers_the_same_through_every_node() {
    let cluster = Cluster::start("readme");
    for node in &cluster.nodes {
        assert_readme_session(&mut node.client(), node.id);
    }
}

/// The session of the README, step by step. It ends where it started (`b` deleted), so it
/// can run again through the next node.
fn assert_readme_session(client: &mut Client, id: u64) {
    let mut send = |words: &[&str]| client.command_retrying(words, PATIENCE);
    assert_eq!(send(&["put", "a", "A"]), Frame::integer(1), "PUT through node {id}");
    assert_eq!(send(&["set", "b", "B"]), Frame::ok(), "SET through node {id}");
    assert_eq!(send(&["range", "a", "c"]), bulks(&["A", "B"]), "RANGE through node {id}");
    assert_eq!(
        send(&["range", "a", "c", "withkeys"]),
        bulks(&["a", "A", "b", "B"]),
        "RANGE WITHKEYS through node {id}"
    );
    assert_eq!(send(&["del", "b"]), Frame::integer(1), "DEL through node {id}");
    assert_eq!(send(&["get", "b"]), Frame::null(), "GET through node {id}");
}

#[test]
fn a_write_through_a_follower_is_visible_on_every_node() {
    let cluster = Cluster::start("follower-write");
    let leader = cluster.wait_for_leader(PATIENCE);
    let follower = cluster.running_ids().into_iter().find(|&id| id != leader).expect("a follower");
    let reply = cluster.node(follower).client().command_retrying(&["SET", "written-by", "a follower"], PATIENCE);
    assert_eq!(reply, Frame::ok());

    for node in &cluster.nodes {
        let mut client = node.client();
        let linearizable = client.command_retrying(&["GET", "written-by"], PATIENCE);
        assert_eq!(linearizable, bulk("a follower"), "linearizable GET on node {}", node.id);
        // A stale read is served from the node's own state machine, so it shows that the
        // write reached this node, not only that the node can ask the leader.
        cluster.wait_until_caught_up(node.id, PATIENCE);
        assert_eq!(client.command(&["READMODE", "stale"]), Frame::ok());
        assert_eq!(client.command(&["GET", "written-by"]), bulk("a follower"), "stale GET on node {}", node.id);
    }
}
