//! Tests of whole clusters: three real `tally` processes on loopback ports, spoken to over
//! RESP, killed, corrupted and restarted.
//!
//! - `session`: the README session against every node, and writes through a follower.
//! - `failover`: kill -9 of the leader; a new leader is elected and writes go on.
//! - `durability`: kill -9 of every node; every acknowledged write survives the restart.
//! - `corruption`: a flipped bit stops a node from starting; a torn tail does not.
//! - `identity`: a data directory refuses to serve another node or cluster.
//! - `membership`: the README walkthrough (grow to five, transfer, replace a node) and errors.
//! - `read_modes`: linearizable, lease and follower reads through every node.
//! - `shutdown`: SIGTERM ends a node cleanly and promptly.
//! - `snapshot`: a node that missed compacted entries installs the leader's snapshot.
//!
//! Every node snapshots every few dozen entries, so every test also compacts and recovers
//! from snapshots.
//!
//! `support` starts and stops the processes; `client` is a small blocking RESP client;
//! `wal_file` reads the WAL's record framing, to damage a segment precisely.

// The tests run real processes and sockets; the simulator has its own tests.
#![cfg(not(madsim))]

mod client;
mod corruption;
mod durability;
mod failover;
mod identity;
mod membership;
mod read_modes;
mod session;
mod shutdown;
mod snapshot;
mod support;
mod wal_file;
