//! kill -9 of every node at once, then a restart on the same data: no acknowledged write
//! is lost.

use kvstore::resp::Frame;

use crate::client::{bulks, Client};
use crate::support::{Cluster, Node, PATIENCE};

const WRITES: usize = 200;

#[test]
fn every_acknowledged_write_survives_kill_9_of_every_node() {
    let mut cluster = Cluster::start("kill-all");
    let acknowledged = write_through_every_node(&cluster);

    cluster.kill_all();
    for id in 1..=3 {
        cluster.node_mut(id).start();
    }
    cluster.wait_for_leader(PATIENCE);

    let keys: Vec<&str> = acknowledged.iter().map(|(key, _)| key.as_str()).collect();
    let values: Vec<&str> = acknowledged.iter().map(|(_, value)| value.as_str()).collect();
    let mget: Vec<&str> = ["MGET"].into_iter().chain(keys).collect();
    for node in &cluster.nodes {
        let mut client = node.client();
        let linearizable = client.command_retrying(&mget, PATIENCE);
        assert_eq!(linearizable, bulks(&values), "linearizable MGET on node {} after the restart", node.id);
        // A stale read shows what this node itself recovered and applied.
        cluster.wait_until_caught_up(node.id, PATIENCE);
        assert_eq!(client.command(&["READMODE", "stale"]), Frame::ok());
        assert_eq!(client.command(&mget), bulks(&values), "stale MGET on node {} after the restart", node.id);
    }
}

/// SETs spread over the three nodes, each acknowledged with OK before the next is sent.
fn write_through_every_node(cluster: &Cluster) -> Vec<(String, String)> {
    let mut clients: Vec<Client> = cluster.nodes.iter().map(Node::client).collect();
    let mut acknowledged = Vec::new();
    for number in 0..WRITES {
        let (key, value) = (format!("key-{number:03}"), format!("value-{number}"));
        let node_count = clients.len();
        let client = &mut clients[number % node_count];
        assert_eq!(client.command_retrying(&["SET", &key, &value], PATIENCE), Frame::ok(), "SET {key}");
        acknowledged.push((key, value));
    }
    acknowledged
}
