//! A data directory belongs to one node of one cluster, and says so when misused.

use std::process::ExitStatus;

use crate::support::{Cluster, PATIENCE};

#[test]
fn a_data_directory_refuses_another_node_id_or_cluster_id() {
    // One node is enough to create a data directory; the others would only add load.
    let mut cluster = Cluster::start_nodes("identity", &[1]);
    let node = cluster.node_mut(1);
    let (status, _) = node.terminate(PATIENCE).expect("node 1 stops on SIGTERM");
    assert!(status.success(), "node 1 stopped with {status}");

    let (status, stderr) = node.run_expecting_exit(&[("--id", "2")]);
    assert_refused(status, &stderr, "node 1, but this node is cluster \"itest\" node 2");
    let (status, stderr) = node.run_expecting_exit(&[("--cluster-id", "other")]);
    assert_refused(status, &stderr, "belongs to cluster \"itest\" node 1, but this node is cluster \"other\"");

    // Refusing must not have damaged the directory for its rightful owner.
    node.start();
    assert!(node.wait_until_serving(PATIENCE), "node 1 no longer starts on its own data directory");
}

fn assert_refused(status: ExitStatus, stderr: &str, mismatch: &str) {
    assert!(!status.success(), "the node started on a data directory that is not its own: {status}");
    assert!(stderr.contains(mismatch), "stderr does not explain the mismatch ({mismatch:?}):\n{stderr}");
}
