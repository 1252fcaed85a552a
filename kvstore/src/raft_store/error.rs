//! Errors of the Raft store: [`StoreError`] for its callers, [`LogDefect`] for what is
//! wrong with a batch, whether handed to `persist` or found on disk.

use engine::{Index, NodeId, Term};

use crate::storage::{DiskError, WalOpenError, WalWriteError};

/// Why the Raft store could not open or persist.
///
/// Only [`StoreError::InvalidBatch`] and [`StoreError::EntryTooLarge`] leave the store
/// usable: they are refused before anything is written. Every other error from
/// [`RaftStore::persist`](super::RaftStore::persist) is fatal, and every error from
/// [`RaftStore::open`](super::RaftStore::open) means the node must not start.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory was created for another cluster or another node.
    #[error(
        "data directory belongs to cluster {found_cluster_id:?} node {found_node_id}, \
         but this node is cluster {expected_cluster_id:?} node {expected_node_id}"
    )]
    IdentityMismatch {
        /// The cluster named by the identity file.
        found_cluster_id: String,
        /// The node named by the identity file.
        found_node_id: NodeId,
        /// The cluster this node was started for.
        expected_cluster_id: String,
        /// The node this node was started as.
        expected_node_id: NodeId,
    },
    /// A WAL exists without an identity file: nothing tells which node wrote it.
    #[error(
        "data directory holds a WAL but no identity file {path:?}; refusing to guess \
         which cluster and node it belongs to"
    )]
    MissingIdentity {
        /// The identity file that is missing.
        path: String,
    },
    /// The identity file exists but cannot be trusted.
    #[error("corrupt identity file {path:?}: {reason}")]
    CorruptIdentity {
        /// The identity file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The data directory was written by a format this build does not read.
    #[error("identity file {path:?} has data format version {found}, this build reads version {supported}")]
    UnsupportedFormat {
        /// The identity file.
        path: String,
        /// The version in the file.
        found: u32,
        /// The version this build writes and reads.
        supported: u32,
    },
    /// The disk failed while reading or writing the identity file.
    #[error("data directory: {0}")]
    Disk(#[from] DiskError),
    /// The WAL could not be recovered; for corruption the message names the segment file
    /// and the byte offset.
    #[error(transparent)]
    Recover(#[from] WalOpenError),
    /// The WAL's records are intact but do not form a valid Raft log.
    #[error("corrupt Raft log in {path} at record sequence {sequence}: {defect}")]
    Corrupt {
        /// The segment file holding the record.
        path: String,
        /// The WAL sequence number of the record.
        sequence: u64,
        /// What is wrong.
        defect: LogDefect,
    },
    /// A write or sync failed. The WAL is poisoned and refuses every later write: the node
    /// must stop and recover from disk after a restart, never retry.
    #[error("Raft store write failed, the store is unusable until the node restarts: {0}")]
    Write(#[from] WalWriteError),
    /// The latest snapshot file is damaged or unreadable: the node refuses to start, since
    /// the log before it may be gone.
    #[error("snapshot: {0}")]
    Snapshot(#[from] crate::storage::SnapshotFileError),
    /// The snapshot file is intact but its metadata does not decode or does not match its name.
    #[error("snapshot file {path} has unusable metadata: {message}")]
    SnapshotMeta {
        /// The snapshot file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// `persist` was handed a batch that breaks the Ready contract; nothing was written.
    #[error("invalid batch refused, nothing written: {0}")]
    InvalidBatch(LogDefect),
    /// One entry does not fit in a WAL record; nothing was written.
    #[error("entry {index} encodes to {length_bytes} bytes, over the record maximum of {maximum_bytes}")]
    EntryTooLarge {
        /// The entry's index.
        index: Index,
        /// Its encoded size.
        length_bytes: usize,
        /// The largest entries record payload.
        maximum_bytes: usize,
    },
}

/// What makes a batch (entries and a hard state) break the rules of a Raft log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogDefect {
    /// A record type this build does not know.
    #[error("unknown record type {record_type}")]
    UnknownRecordType {
        /// The type byte.
        record_type: u8,
    },
    /// The payload does not decode.
    #[error("undecodable {record} record: {message}")]
    Undecodable {
        /// Which kind of record.
        record: &'static str,
        /// What postcard said.
        message: String,
    },
    /// An entries record with no entries, which the store never writes.
    #[error("entries record holds no entries")]
    EmptyEntries,
    /// Index 0 is "before the log" and holds no entry.
    #[error("entry with index 0")]
    IndexZero,
    /// Entries start past the end of the log, leaving a hole.
    #[error("entries start at index {first_index} but the log ends at index {last_index}")]
    Gap {
        /// The first index of the entries.
        first_index: Index,
        /// The last index of the log before them.
        last_index: Index,
    },
    /// Two neighbouring entries do not have consecutive indexes.
    #[error("entry {index} is followed by entry {next_index}")]
    NotContiguous {
        /// The earlier entry's index.
        index: Index,
        /// The index of the entry after it.
        next_index: Index,
    },
    /// An entry's term is lower than the term of the entry before it.
    #[error("entry {index} has term {term}, below term {previous_term} of the entry before it")]
    TermDecreases {
        /// The entry's index.
        index: Index,
        /// Its term.
        term: Term,
        /// The term of the entry before it.
        previous_term: Term,
    },
    /// Entries would replace an entry the durable hard state calls committed.
    #[error("entries from index {first_index} would overwrite committed entries (commit index {commit_index})")]
    OverwritesCommitted {
        /// The first index of the entries.
        first_index: Index,
        /// The commit index in force.
        commit_index: Index,
    },
    /// A hard state whose term is lower than the one before it.
    #[error("hard state term {term} is below the earlier term {previous_term}")]
    HardStateTermDecreases {
        /// The new term.
        term: Term,
        /// The term it follows.
        previous_term: Term,
    },
    /// A commit index past the durable log.
    #[error("commit index {commit_index} is past the last index {last_index}")]
    CommitBeyondLog {
        /// The commit index.
        commit_index: Index,
        /// The last index of the log.
        last_index: Index,
    },
    /// The log holds an entry from a term later than the node's current term.
    #[error("last entry {last_index} has term {last_term}, above the hard state term {hard_state_term}")]
    EntryTermAboveHardState {
        /// The last index of the log.
        last_index: Index,
        /// Its term.
        last_term: Term,
        /// The hard state's term.
        hard_state_term: Term,
    },
    /// A hard state record says its batch holds more entries records than precede it.
    #[error("hard state record closes a batch of {declared} entries records, but only {present} precede it")]
    BatchShort {
        /// The count in the hard state record.
        declared: u32,
        /// Entries records since the previous batch.
        present: usize,
    },
}
