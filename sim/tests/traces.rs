//! Every simulated run that ever failed (see `traces/`), replayed with its configuration: each
//! must now pass.

#![cfg(madsim)]

use sim::world::{run, RunConfig};

/// traces/0002: a leader's answer to a write forwarded before the follower restarted reached
/// the restarted follower's new request with the same forward id.
#[test]
fn trace_0002_forward_reply_to_a_restarted_node() {
    let failures = sim::judge(&run(RunConfig::new(7612)));
    assert!(failures.is_empty(), "seed 7612 fails again:\n{}", failures.join("\n"));
}

/// Seeds that failed while snapshots and membership churn were added (traces/0003 to 0006):
/// a joined node that needed a leader to restart (44), a joined node whose WAL predates its
/// snapshot (189), admin answers that misreported a removal (25, 136), an oracle false alarm
/// (17, 64), and a joining node that gave up (8524).
#[test]
fn traces_0003_to_0006_membership_churn() {
    for seed in [17, 25, 44, 64, 136, 189, 8524] {
        let failures = sim::judge(&run(RunConfig::new(seed)));
        assert!(failures.is_empty(), "seed {seed} fails again:\n{}", failures.join("\n"));
    }
}

/// Seeds that failed on the simulator's own harness while membership churn was added
/// (traces/0009).
#[test]
fn trace_0009_harness_while_adding_churn() {
    for seed in [3, 49, 50, 53, 54, 55, 56, 57, 77, 137, 145, 164, 171, 195, 199, 207, 374] {
        let failures = sim::judge(&run(RunConfig::new(seed)));
        assert!(failures.is_empty(), "seed {seed} fails again:\n{}", failures.join("\n"));
    }
}
