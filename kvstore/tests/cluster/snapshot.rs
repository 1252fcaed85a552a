//! A node that was down while the others wrote more than a snapshot's worth comes back and
//! catches up from the leader's snapshot, over real sockets, then serves every write itself.

use kvstore::resp::Frame;

use crate::client::bulks;
use crate::support::{field, Cluster, PATIENCE};

const WRITES: usize = 300;

#[test]
fn a_node_that_missed_compacted_entries_installs_the_leaders_snapshot() {
    let mut cluster = Cluster::start_nodes("snapshot-install", &[1, 2]);
    cluster.wait_for_leader(PATIENCE);
    let mut client = cluster.node(1).client();
    let mut values = Vec::new();
    for number in 0..WRITES {
        let (key, value) = (format!("key-{number:03}"), format!("value-{number}"));
        assert_eq!(client.command_retrying(&["SET", &key, &value], PATIENCE), Frame::ok(), "SET {key}");
        values.push(value);
    }
    let leader = cluster.wait_for_leader(PATIENCE);
    let leader_info = cluster.node(leader).info_raft();
    assert!(field(&leader_info, "snapshots_saved") >= 1, "the leader snapshotted: {leader_info:?}");
    assert!(field(&leader_info, "snapshot_index") > 0, "{leader_info:?}");

    cluster.node_mut(3).start();
    assert!(cluster.node_mut(3).wait_until_serving(PATIENCE), "node 3 serves again");
    cluster.wait_until_caught_up(3, PATIENCE);
    let info = cluster.node(3).info_raft();
    assert!(field(&info, "snapshots_installed") >= 1, "node 3 caught up through a snapshot: {info:?}");

    // What node 3 itself applied: a stale read is served from its own state machine.
    let mut client = cluster.node(3).client();
    assert_eq!(client.command(&["READMODE", "stale"]), Frame::ok());
    let keys: Vec<String> = (0..WRITES).map(|number| format!("key-{number:03}")).collect();
    let mget: Vec<&str> = ["MGET"].into_iter().chain(keys.iter().map(String::as_str)).collect();
    let expected: Vec<&str> = values.iter().map(String::as_str).collect();
    assert_eq!(client.command(&mget), bulks(&expected));

    // And it restarts from that snapshot.
    cluster.node_mut(3).kill();
    cluster.node_mut(3).start();
    assert!(cluster.node_mut(3).wait_until_serving(PATIENCE), "node 3 restarts from its snapshot");
    cluster.wait_until_caught_up(3, PATIENCE);
    let mut client = cluster.node(3).client();
    assert_eq!(client.command(&["READMODE", "stale"]), Frame::ok());
    assert_eq!(client.command(&mget), bulks(&expected));
}
