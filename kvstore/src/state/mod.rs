//! The replicated key-value state machine.
//!
//! Every replica feeds the committed Raft entries, in log order, to its own
//! [`StateMachine`]; because [`StateMachine::apply`] is a pure function of the
//! entries, every replica holds the same keys, versions, sessions and replies.
//! Nothing here performs I/O, reads a clock, spawns a thread or iterates a hash
//! map, so the same code runs unchanged inside the deterministic simulator.
//!
//! # Code map
//! - `command`: the replicated write commands ([`Command`]) and the
//!   [`Request`] wrapper that carries a client session.
//! - `reply`: what a command answers ([`Reply`], [`CommandError`]),
//!   independent of the RESP codec.
//! - `keyspace`: the versioned key map ([`Value`]) and its read queries.
//! - `writes`: how each write command changes the keyspace.
//! - `session`: client sessions, which make a retried write apply once; its
//!   docs hold the expiry design.
//! - `scan` and `glob`: the SCAN cursor ([`ScanCursor`]) and `MATCH` patterns.
//! - `machine`: [`StateMachine`], which ties the keyspace and the sessions to
//!   the Raft index, and its [`Limits`].
//! - `snapshot`: the serialisable [`Snapshot`].
//! - `query`: reads as data ([`Query`]), run against the machine by the node.
//!
//! # Bounds the state machine relies on
//! - Keys and values arrive already bounded by the server's request size limit
//!   (Redis' 512 MB `proto-max-bulk-len`); the state machine does not re-check
//!   keys. A write whose resulting value would exceed
//!   [`Limits::value_size_bytes_max`] (APPEND, SET, MSET, CAS, ...) fails with
//!   [`CommandError::ValueTooLarge`] and changes nothing.
//! - At most [`Limits::sessions_max`] sessions exist; each caches one reply, so
//!   the session table holds at most that many cached replies.
//! - Reads take their own bounds (`limit` for RANGE, `count` for SCAN); the
//!   server must cap them, because an unbounded RANGE copies the whole range.
//!
//! **Architecture Invariant:** two machines fed the same entries (same indexes,
//! same bytes) from the same starting state are equal and gave equal replies.

mod command;
mod glob;
mod keyspace;
mod machine;
mod query;
mod reply;
mod scan;
mod session;
mod snapshot;
mod writes;

pub use command::{Command, DecodeError, Request, SessionId, SetCondition};
pub use keyspace::Value;
pub use machine::{Limits, StateMachine};
pub use query::Query;
pub use reply::{CommandError, Reply};
pub use scan::{ScanCursor, ScanPage};
pub use snapshot::{RestoreError, Snapshot};
