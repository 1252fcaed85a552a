//! [`RaftStore`]: a node's durable Raft state (log entries and hard state) on top of the
//! [`Wal`], plus the identity file that ties a data directory to one node of one cluster.
//!
//! # Records and batches
//!
//! Each [`RaftStore::persist`] call (one engine `Ready`) writes one *batch*: zero or more
//! entries records, then exactly one hard state record, then one [`Wal::sync`]. Record
//! payloads are postcard (see `records.rs`):
//!
//! ```text
//! type  name        payload
//! 1     entries     one or more engine::Entry, back to back, contiguous
//! 2     hard state  HardStateRecord { hard_state: engine::HardState, entries_records: u32 }
//! ```
//!
//! An entries record replaces the log from its first index on, exactly as the Ready
//! contract says, so a follower's truncation of a conflicting suffix needs no record of
//! its own.
//!
//! [`RaftStore::record_commit`] appends a batch of just a hard state record whose term and
//! vote are unchanged (only the commit index moved) *without* syncing: it becomes durable
//! with the next batch's fsync. Every write moves the commit index right after its entry is
//! durable, on the leader and on each follower; syncing that too would double the fsyncs.
//!
//! The hard state record closes its batch and says how many entries records before it
//! belong to the batch. Replay applies a batch only when it meets that record, so a batch
//! is recovered whole or not at all: a crash that tears the WAL between an entries record
//! and its hard state (which the WAL's prefix rule allows) loses the whole unacknowledged
//! batch rather than recovering new entries beside an old term. Entries records left
//! without their hard state stay in the WAL and are skipped on every replay (counted in
//! [`Recovered::abandoned_records`]); the next batch's count tells where it starts. When
//! `persist` has entries but no new hard state, the record repeats the current one.
//!
//! # Why the hard state lives in the WAL
//!
//! The hard state is not kept in the atomically replaced
//! [`hard_state`](crate::storage::hard_state) file: replacing a file costs three
//! fsyncs (data, rename, directory) on top of the WAL's, for every Ready that changes the
//! term, the vote or the commit index, and most do. As a WAL record it rides in the same
//! group commit as the entries, so a Ready costs one fsync, and it becomes durable
//! atomically with its batch.
//!
//! # Recovery
//!
//! [`RaftStore::open`] checks (or, on a fresh data directory, writes) the identity file,
//! recovers the WAL, and replays it. A WAL that ends in a torn record is cut back by the
//! WAL and reported in [`Recovered::torn_tail`]; a bad record before the tail is an error
//! naming the segment file and offset. Replay then checks every batch: entries
//! contiguous and starting within the log, terms non-decreasing, no committed entry
//! overwritten, hard state terms non-decreasing, the commit index within the log, no
//! entry of a term above the hard state's. A violation is [`StoreError::Corrupt`], never
//! a panic. A data directory with an identity file but no complete batch was interrupted
//! while bootstrapping, before anything was acknowledged, and is bootstrapped again.
//!
//! # Compaction
//!
//! Not yet: [`engine::PersistedState`] must hold the log from index 1 until snapshots
//! exist, so no segment can be dropped. The store already keeps, per entry, the WAL
//! sequence of the batch that wrote it ([`RaftStore::batch_sequence_at`]). A later
//! `compact(through_index)` will call [`Wal::remove_segments_before`] with the batch
//! sequence of entry `through_index + 1` (or of the last batch, if there is none), which
//! keeps batches whole and keeps the latest hard state record; replay will then have to
//! start from the snapshot's index instead of 1.
//!
//! # Failure
//!
//! Any disk error while writing poisons the WAL, and with it the store: every later call
//! fails, and the node must stop and recover from disk. In-memory state is updated only
//! after the sync returns, so it never runs ahead of the disk.

mod error;
mod identity;
mod metrics;
mod records;
mod replay;
mod shape;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use engine::{Entry, HardState, Index, Membership, PersistedState};

pub use error::{LogDefect, StoreError};
pub use identity::{read_identity, write_identity, Identity, DATA_FORMAT_VERSION, IDENTITY_PATH};
pub use metrics::{StorageMetrics, StorageMetricsSnapshot, SYNC_DURATION_BUCKET_BOUNDS_MICROS};

use identity::establish_identity;
use records::{encode_entries, encode_hard_state, HardStateRecord, RECORD_TYPE_ENTRIES, RECORD_TYPE_HARD_STATE};
use replay::replay;
use shape::LogShape;

use crate::storage::record::framed_size_bytes;
use crate::storage::segment::RECORD_PAYLOAD_SIZE_BYTES_MAX;
use crate::storage::{Disk, TornTail, Wal, WalConfig};

/// What [`RaftStore::open`] recovered, for the node to start from and to log.
#[derive(Debug)]
pub struct Recovered {
    /// The hard state and the log, contiguous from index 1; `applied_index` is 0.
    pub state: PersistedState,
    /// The torn tail the WAL cut off, if any.
    pub torn_tail: Option<TornTail>,
    /// Entries records skipped because their batch never completed.
    pub abandoned_records: usize,
    /// True if the data directory was new (or its bootstrap was interrupted) and was
    /// bootstrapped with the given membership.
    pub bootstrapped: bool,
}

/// A node's durable Raft state. See the module documentation for its format and rules.
#[derive(Debug)]
pub struct RaftStore<D: Disk> {
    wal: Wal<D>,
    shape: LogShape,
    /// The largest entries record payload; below the WAL's maximum only in tests.
    entries_record_size_bytes_max: usize,
    metrics: Arc<StorageMetrics>,
    /// A commit-only hard state appended by [`RaftStore::record_commit`] and not yet synced.
    unsynced_hard_state: Option<HardState>,
}

/// Records encoded for one batch, ready to append.
struct EncodedBatch {
    records: Vec<(u8, Vec<u8>)>,
    hard_state: HardState,
}

impl<D: Disk> RaftStore<D> {
    /// Opens the data directory on `disk` for the node `identity`.
    ///
    /// On a fresh directory, writes the identity file, then bootstraps the log with
    /// [`PersistedState::bootstrap`]`(membership)` and makes it durable. On an existing one,
    /// refuses an identity that differs, recovers, and ignores `membership`: the log's
    /// own configuration entries rule.
    pub fn open(
        mut disk: D,
        identity: Identity,
        membership: Membership,
        wal_config: WalConfig,
    ) -> Result<(Self, Recovered), StoreError> {
        // Before the WAL is opened: its recovery writes, and must not touch another node's log.
        establish_identity(&mut disk, &identity)?;
        let (wal, recovery) = Wal::open(disk, wal_config)?;
        let replayed = replay(&recovery.records, &wal.segment_paths())?;
        let mut store = RaftStore {
            wal,
            shape: replayed.shape,
            entries_record_size_bytes_max: RECORD_PAYLOAD_SIZE_BYTES_MAX as usize,
            metrics: Arc::default(),
            unsynced_hard_state: None,
        };
        let mut state = PersistedState {
            hard_state: store.shape.hard_state(),
            snapshot: None,
            entries: replayed.entries,
            applied_index: 0,
        };
        let bootstrapped = replayed.batches == 0;
        if bootstrapped {
            state = PersistedState::bootstrap(membership);
            store.persist(Some(state.hard_state), &state.entries)?;
        }
        let abandoned_records = replayed.abandoned_records;
        Ok((store, Recovered { state, torn_tail: recovery.torn_tail, abandoned_records, bootstrapped }))
    }

    /// Makes `entries` and then `hard_state` durable with one fsync, as one batch that a
    /// crash keeps whole or loses whole. `entries` replace everything stored from the
    /// first one's index on. Once this returns `Ok`, report `on_persisted` to the engine.
    ///
    /// A call with nothing to persist does nothing. A batch that breaks the Ready contract
    /// is refused before anything is written ([`StoreError::InvalidBatch`]). Any write
    /// error is fatal: the WAL is poisoned, the store refuses every later call, and the
    /// node must stop and recover from disk.
    pub fn persist(&mut self, hard_state: Option<HardState>, entries: &[Entry]) -> Result<(), StoreError> {
        if hard_state.is_none() && entries.is_empty() {
            return Ok(());
        }
        let batch = self.encode_batch(hard_state, entries)?;
        let batch_sequence = self.append_batch(batch.records)?;
        let sync_started = tokio::time::Instant::now();
        let synced = self.wal.sync();
        self.metrics.record_sync(sync_started.elapsed());
        synced?;
        self.unsynced_hard_state = None;
        self.shape.apply_entries(entries, batch_sequence);
        self.shape.apply_hard_state(batch.hard_state);
        Ok(())
    }

    /// Records a hard state that differs from the latest only in its commit index, without
    /// an fsync of its own: it becomes durable with the next [`RaftStore::persist`]. The
    /// commit index promises nothing to anyone (a restarted node learns it again from the
    /// leader), so a crash that loses it is harmless, while syncing it would double the
    /// fsyncs of every write: one for the entry, one for the commit that follows. A change of
    /// term or vote is a promise, and is persisted (synced) as usual.
    pub fn record_commit(&mut self, hard_state: HardState) -> Result<(), StoreError> {
        let latest = self.unsynced_hard_state.unwrap_or(self.shape.hard_state());
        if (hard_state.term, hard_state.voted_for) != (latest.term, latest.voted_for) {
            return self.persist(Some(hard_state), &[]);
        }
        let batch = self.encode_batch(Some(hard_state), &[])?;
        self.append_batch(batch.records)?;
        self.unsynced_hard_state = Some(hard_state);
        Ok(())
    }

    /// Checks a batch and encodes its records, writing nothing.
    fn encode_batch(&self, hard_state: Option<HardState>, entries: &[Entry]) -> Result<EncodedBatch, StoreError> {
        let hard_state = hard_state.or(self.unsynced_hard_state).unwrap_or(self.shape.hard_state());
        self.shape.check_batch(&hard_state, entries).map_err(StoreError::InvalidBatch)?;
        let payloads = encode_entries(entries, self.entries_record_size_bytes_max)?;
        let entries_records = u32::try_from(payloads.len()).expect("a batch fits in memory, so its records in a u32");
        let mut records: Vec<(u8, Vec<u8>)> =
            payloads.into_iter().map(|payload| (RECORD_TYPE_ENTRIES, payload)).collect();
        let closing = HardStateRecord { hard_state, entries_records };
        records.push((RECORD_TYPE_HARD_STATE, encode_hard_state(&closing)));
        Ok(EncodedBatch { records, hard_state })
    }

    /// Appends a batch's records without syncing and returns the sequence of the first.
    /// Split from [`Self::persist`] so tests can crash between the appends and the sync.
    fn append_batch(&mut self, records: Vec<(u8, Vec<u8>)>) -> Result<u64, StoreError> {
        let batch_sequence = self.wal.next_sequence();
        for (record_type, payload) in records {
            self.wal.append(record_type, &payload)?;
            self.metrics.record_wal_bytes(framed_size_bytes(payload.len()));
        }
        Ok(batch_sequence)
    }

    /// The last index of the durable log.
    pub fn last_index(&self) -> Index {
        self.shape.last_index()
    }

    /// The durable hard state.
    pub fn hard_state(&self) -> HardState {
        self.shape.hard_state()
    }

    /// The term of the durable entry at `index`, or `None` outside the log.
    pub fn term_at(&self, index: Index) -> Option<engine::Term> {
        self.shape.term_at(index)
    }

    /// The WAL sequence of the first record of the batch that wrote the durable entry at
    /// `index`: every record a replay needs to rebuild the log from `index` on has this
    /// sequence or a later one. For compaction; see the module documentation.
    pub fn batch_sequence_at(&self, index: Index) -> Option<u64> {
        self.shape.batch_sequence_at(index)
    }

    /// True once a write error has made the store refuse every later write.
    pub fn is_poisoned(&self) -> bool {
        self.wal.is_poisoned()
    }

    /// The store's write counters, shared: they keep counting after this call.
    pub fn metrics(&self) -> Arc<StorageMetrics> {
        Arc::clone(&self.metrics)
    }

    /// The underlying write-ahead log, for inspection.
    pub fn wal(&self) -> &Wal<D> {
        &self.wal
    }

    /// Gives the disk back, dropping anything not yet synced.
    pub fn into_disk(self) -> D {
        self.wal.into_disk()
    }
}
