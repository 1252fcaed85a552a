//! SIGTERM is a clean shutdown: exit code 0, promptly, for a leader and for followers.

use std::time::Duration;

use kvstore::resp::Frame;

use crate::support::{Cluster, PATIENCE};

/// Generous for a loaded machine, yet far below anything a user would call a hang.
const PROMPT_EXIT: Duration = Duration::from_secs(3);

#[test]
fn sigterm_makes_every_node_exit_0_promptly() {
    let mut cluster = Cluster::start("sigterm");
    let leader = cluster.wait_for_leader(PATIENCE);
    let reply = cluster.node(leader).client().command_retrying(&["SET", "a", "A"], PATIENCE);
    assert_eq!(reply, Frame::ok());

    // The leader first, so that the followers are stopped while they look for a new one.
    let followers = cluster.running_ids().into_iter().filter(|&id| id != leader);
    for id in std::iter::once(leader).chain(followers) {
        let exit = cluster.node_mut(id).terminate(PROMPT_EXIT);
        let (status, took) = exit.unwrap_or_else(|| panic!("node {id} did not exit within {PROMPT_EXIT:?}"));
        eprintln!("node {id} exited with {status} {took:?} after SIGTERM");
        assert!(status.success(), "node {id} exited with {status} after SIGTERM");
    }
}
