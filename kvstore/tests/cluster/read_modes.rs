//! Every read mode through every node of a real cluster: each sees a write acknowledged
//! before it, and INFO counts the reads per mode.

use std::time::Duration;

use kvstore::resp::Frame;

use crate::client::bulk;
use crate::support::Cluster;

const PATIENCE: Duration = Duration::from_secs(10);

#[test]
fn every_read_mode_sees_the_last_acknowledged_write_on_every_node() {
    let cluster = Cluster::start("read-modes");
    cluster.wait_for_leader(PATIENCE);
    for (round, mode) in ["linearizable", "lease", "follower"].into_iter().enumerate() {
        for node in &cluster.nodes {
            // A write through one node, acknowledged, then a read in `mode` through another:
            // a linearizable mode must see it, whichever node serves the read.
            let value = format!("{mode}-{round}-{}", node.id);
            let writer = cluster.node(1 + node.id % 3);
            assert_eq!(writer.client().command_retrying(&["SET", "mode-key", &value], PATIENCE), Frame::ok());
            let mut reader = node.client();
            assert_eq!(reader.command(&["READMODE", mode]), Frame::ok());
            assert_eq!(reader.command(&["READMODE"]), bulk(mode));
            let read = reader.command_retrying(&["GET", "mode-key"], PATIENCE);
            assert_eq!(read, bulk(&value), "{mode} read through node {}", node.id);
        }
    }
    let mut client = cluster.node(1).client();
    let refused = client.command(&["READMODE", "eventually"]);
    let refused_text = format!("{refused:?}");
    assert!(refused_text.contains("READMODE must be"), "{refused_text}");
    let Frame::Bulk(info) = client.command(&["INFO", "stats"]) else { panic!("INFO is a bulk string") };
    let info = String::from_utf8_lossy(&info).to_string();
    for mode in ["linearizable", "lease", "follower"] {
        let line = info.lines().find(|line| line.starts_with(&format!("reads_{mode}:"))).expect("a count per mode");
        let count: u64 = line.split(':').nth(1).unwrap().trim().parse().unwrap();
        assert!(count >= 1, "INFO counts no {mode} read on node 1: {line}");
    }
}
