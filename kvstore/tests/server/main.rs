//! Tests of the RESP server over real loopback TCP, against a fake node.
//!
//! - `basics`: the README session, pipelining, ordering and client sessions.
//! - `commands`: every command once, with its Redis-compatible reply.
//! - `robustness`: errors, limits, garbage, disconnects, authentication and failures.

// The tests use real sockets; the simulator has its own tests.
#![cfg(not(madsim))]

mod basics;
mod commands;
mod robustness;
mod support;
