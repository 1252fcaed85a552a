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
