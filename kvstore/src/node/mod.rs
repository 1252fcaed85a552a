//! The node: one Raft group with its storage, state machine and peers, driven by one loop.

pub mod api;

pub use api::{Backend, NodeStatus, ReadError, ReadMode, WriteError};
