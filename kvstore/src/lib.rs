//! The Tally node: the KV state machine (`state`), durable storage (`storage`, `raft_store`),
//! the node loop around the Raft engine (`node`), the peer transport (`transport`), the RESP
//! codec and server (`resp`, `server`), metrics, configuration, and `process`, which starts
//! them all as the `tally` binary (or the simulator) runs them. ARCHITECTURE.md has the map.
//!
//! [`bench`](mod@bench) is the client side: `tally bench`, a load generator for Tally or any Redis server.

pub mod admin_client;
pub mod bench;
pub mod clock;
pub mod config;
pub mod metrics;
pub mod node;
pub mod process;
pub mod raft_store;
pub mod resp;
pub mod server;
pub mod state;
pub mod storage;
pub mod transport;
