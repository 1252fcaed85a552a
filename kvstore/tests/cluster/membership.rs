//! The README's membership walkthrough, as written, against real processes: grow a 3-node
//! cluster to 5 with `--join` and `tally admin promote`, move leadership with `tally admin
//! transfer`, and replace a failed node (`tally admin remove`, then a fresh node joins and is
//! promoted). Writes made before each step are read back after it.

use std::process::Command;

use kvstore::resp::Frame;

use crate::client::bulks;
use crate::support::{field, Cluster, PATIENCE};

/// Runs `tally admin --node <address> <arguments>` and returns its output; fails the test
/// if it does not succeed.
fn admin(cluster: &Cluster, through: u64, arguments: &[&str]) -> String {
    let node = cluster.node(through).client_address.to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["admin", "--node", &node])
        .args(arguments)
        .output()
        .expect("can run tally admin");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "tally admin {arguments:?} failed: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    text
}

fn voters(cluster: &Cluster, id: u64) -> String {
    cluster.node(id).info_raft()["voters"].clone()
}

/// Writes `count` keys named `prefix-N` through node `through`.
fn write_keys(cluster: &Cluster, through: u64, prefix: &str, count: usize) -> Vec<(String, String)> {
    let mut client = cluster.node(through).client();
    (0..count)
        .map(|number| {
            let (key, value) = (format!("{prefix}-{number}"), format!("{prefix}-value-{number}"));
            assert_eq!(client.command_retrying(&["SET", &key, &value], PATIENCE), Frame::ok(), "SET {key}");
            (key, value)
        })
        .collect()
}

/// Every key reads back, linearizably, through node `through`.
fn assert_readable(cluster: &Cluster, through: u64, written: &[(String, String)]) {
    let mut client = cluster.node(through).client();
    let mget: Vec<&str> = ["MGET"].into_iter().chain(written.iter().map(|(key, _)| key.as_str())).collect();
    let values: Vec<&str> = written.iter().map(|(_, value)| value.as_str()).collect();
    assert_eq!(client.command_retrying(&mget, PATIENCE), bulks(&values), "MGET through node {through}");
}

#[test]
fn grow_to_five_move_leadership_and_replace_a_failed_node() {
    let mut cluster = Cluster::start("membership");
    let mut written = write_keys(&cluster, 1, "before", 80);

    // Grow from 3 to 5: each new node joins as a learner, catches up, and is promoted.
    for _ in 0..2 {
        let id = cluster.add_joining_node(1);
        cluster.node_mut(id).start();
        assert!(cluster.node_mut(id).wait_until_serving(PATIENCE), "node {id} serves");
        cluster.wait_until_caught_up(id, PATIENCE);
        assert_eq!(admin(&cluster, 1, &["promote", &id.to_string()]).trim(), "OK");
    }
    assert_eq!(voters(&cluster, 1), "1,2,3,4,5");
    assert_eq!(voters(&cluster, 5), "1,2,3,4,5", "the new node knows the membership too");
    written.extend(write_keys(&cluster, 4, "five", 20));
    assert_readable(&cluster, 5, &written);

    // Move leadership to node 5.
    assert_eq!(admin(&cluster, 2, &["transfer", "5"]).trim(), "OK");
    assert_eq!(cluster.wait_for_leader(PATIENCE), 5);

    // Replace a failed node: node 2 dies for good; remove it, then a fresh node 6 joins.
    cluster.node_mut(2).kill();
    assert_eq!(admin(&cluster, 1, &["remove", "2"]).trim(), "OK");
    let replacement = cluster.add_joining_node(3);
    cluster.node_mut(replacement).start();
    assert!(cluster.node_mut(replacement).wait_until_serving(PATIENCE), "node 6 serves");
    cluster.wait_until_caught_up(replacement, PATIENCE);
    assert_eq!(admin(&cluster, 4, &["promote", "6"]).trim(), "OK");
    assert_eq!(voters(&cluster, 6), "1,3,4,5,6");
    let status = admin(&cluster, 6, &["status"]);
    assert!(status.contains("member:6 voter"), "{status}");
    assert!(!status.contains("member:2"), "{status}");
    written.extend(write_keys(&cluster, 6, "after", 20));
    for id in [1, 3, 4, 5, 6] {
        assert_readable(&cluster, id, &written);
    }
    // The replacement itself holds every write: a stale read is served from its own state.
    cluster.wait_until_caught_up(replacement, PATIENCE);
    let mut client = cluster.node(replacement).client();
    assert_eq!(client.command(&["READMODE", "stale"]), Frame::ok());
    let keys: Vec<&str> = ["MGET"].into_iter().chain(written.iter().map(|(key, _)| key.as_str())).collect();
    let values: Vec<&str> = written.iter().map(|(_, value)| value.as_str()).collect();
    assert_eq!(client.command(&keys), bulks(&values));
    assert!(field(&cluster.node(replacement).info_raft(), "applied_index") > 0);
}

#[test]
fn invalid_changes_get_clear_errors() {
    let cluster = Cluster::start("membership-errors");
    let mut client = cluster.node(2).client();
    let refused = |reply: Frame, expected: &str| match reply {
        Frame::Error(message) => {
            let message = String::from_utf8_lossy(&message).into_owned();
            assert!(message.contains(expected), "{message:?} should say {expected:?}");
        }
        other => panic!("expected an error saying {expected:?}, got {other:?}"),
    };
    refused(client.command(&["RAFT.REMOVE", "9"]), "node 9 is not a member");
    refused(client.command(&["RAFT.PROMOTE", "3"]), "node 3 is not a learner");
    refused(client.command(&["RAFT.TRANSFER", "9"]), "node 9 is not a voter");
    refused(client.command(&["RAFT.PROMOTE", "0"]), "node id must be a positive integer");
    let address = cluster.node(1).client_address.to_string();
    refused(client.command(&["RAFT.ADDLEARNER", "1", "127.0.0.1:1", &address]), "node id 1 is already a member");
    // Down to one voter, which cannot be removed.
    assert_eq!(client.command_retrying(&["RAFT.REMOVE", "1"], PATIENCE), Frame::ok());
    assert_eq!(client.command_retrying(&["RAFT.REMOVE", "3"], PATIENCE), Frame::ok());
    refused(client.command_retrying(&["RAFT.REMOVE", "2"], PATIENCE), "node 2 is the last voter");
}
