//! The Tally node: the KV state machine, durable storage, and the RESP codec.
//!
//! The node loop, peer transport and server arrive with the rest of the kvstore issue.
//!
//! [`bench`](mod@bench) is the client side: `tally bench`, a load generator for Tally or any Redis server.

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
