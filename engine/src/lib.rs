//! Tally's Raft core: a pure state machine with no I/O.
//!
//! The engine never reads a clock, touches a file or socket, spawns a thread, or draws an
//! unseeded random number: time arrives as an argument to [`Raft::tick`], randomness comes from a
//! `rand_chacha` generator seeded at construction, and every effect leaves as data in a
//! [`Ready`]. The same inputs therefore give the same outputs, which is what lets the
//! simulator replay a failing run exactly.
//!
//! A driver loop looks like this:
//!
//! ```
//! use engine::{Config, Membership, PersistedState, Raft};
//!
//! let persisted = PersistedState::bootstrap(Membership::new([1]));
//! let mut raft = Raft::new(1, Config::default(), persisted, 7, 0).unwrap();
//! raft.campaign().unwrap(); // a one-node cluster elects itself at once
//! let index = raft.propose(bytes::Bytes::from_static(b"hello")).unwrap();
//! loop {
//!     let ready = raft.ready();
//!     if ready.is_empty() {
//!         break;
//!     }
//!     // send ready.messages_now; write ready.hard_state and ready.entries_to_persist; then:
//!     if let Some((index, term)) = ready.persisted_position() {
//!         raft.on_persisted(index, term);
//!     }
//!     // send ready.messages_after_persist; apply ready.entries_to_apply; then:
//!     if let Some(last) = ready.entries_to_apply.last() {
//!         raft.on_applied(last.index).unwrap();
//!     }
//! }
//! assert!(raft.log().applied_index() >= index);
//! ```

mod config;
mod election;
mod error;
mod invariants;
mod log;
mod membership;
mod message;
mod progress;
mod raft;
mod read;
mod ready;
mod replication;
mod snapshot;
mod step;
mod types;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use config::{Config, ConfigError};
pub use error::{
    ApplyError, CampaignError, ConfChangeError, InitError, ProposeError, ReadError, SnapshotError, StepError,
    TransferError,
};
pub use log::RaftLog;
pub use message::{AppendOutcome, Message, MessageBody};
pub use progress::{Progress, ReplicationState, SnapshotTransfer};
pub use raft::Raft;
pub use read::{ReadId, ReadState};
pub use ready::Ready;
pub use types::{
    ConfChange, Entry, EntryKind, HardState, Index, Membership, NodeId, PersistedState, Role, Snapshot, SnapshotMeta,
    Term,
};
