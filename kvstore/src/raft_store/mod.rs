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
//! # Snapshots and compaction
//!
//! Snapshots live beside the WAL in `snapshots/` ([`crate::storage::snapshot_file`]: one
//! file per snapshot, checksummed, written to a temporary name, synced and renamed). The
//! file's metadata is the postcard-encoded [`engine::SnapshotMeta`]; its data is the state
//! machine's image, opaque here.
//!
//! - **The node's own snapshot** is written by [`write_snapshot_file`] (off the node loop,
//!   on its own disk handle). Then [`RaftStore::snapshot_saved`] moves the log's base to it
//!   and removes every WAL segment all of whose records come before the batch that wrote
//!   the first entry the engine still keeps, and every older snapshot file. Batches stay
//!   whole, and the latest hard state record, which closes the newest batch, always stays.
//! - **A snapshot from the leader** is installed by [`RaftStore::install_snapshot`]: the
//!   file first, then a batch of a snapshot record (type 3) and a hard state record, synced.
//!   On replay the snapshot record applies the engine's rule: entries after the snapshot
//!   stay if the log held its last entry, otherwise the log restarts empty after it. Then
//!   every segment before the snapshot record goes.
//!
//! Recovery loads the newest snapshot file (a damaged one is an error: the log before it may
//! be gone, so there is nothing to fall back to), replays the WAL onto a log that starts
//! after it (the first surviving batches may start before it), and applies the same rule
//! once more: if the WAL does not hold the snapshot's last entry (a crash after the file was
//! written and before the snapshot record), a snapshot record is written now.
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

use engine::{Entry, HardState, Index, Membership, PersistedState, Snapshot, SnapshotMeta};

pub use error::{LogDefect, StoreError};
pub use identity::{read_identity, write_identity, Identity, DATA_FORMAT_VERSION, IDENTITY_PATH};
pub use metrics::{StorageMetrics, StorageMetricsSnapshot, SYNC_DURATION_BUCKET_BOUNDS_MICROS};

use identity::establish_identity;
use records::{
    encode_entries, encode_hard_state, encode_snapshot_record, HardStateRecord, SnapshotRecord, RECORD_TYPE_ENTRIES,
    RECORD_TYPE_HARD_STATE, RECORD_TYPE_SNAPSHOT,
};
use replay::{replay, reset_to_snapshot};
use shape::LogShape;

use crate::storage::record::framed_size_bytes;
use crate::storage::segment::RECORD_PAYLOAD_SIZE_BYTES_MAX;
use crate::storage::{load_latest_snapshot, remove_snapshots_before, Disk, TornTail, Wal, WalConfig};

/// What [`RaftStore::open`] recovered, for the node to start from and to log.
#[derive(Debug)]
pub struct Recovered {
    /// The hard state, the latest snapshot and the log after it; `applied_index` is the
    /// snapshot's index (0 without one).
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
    /// On a fresh directory, writes the identity file, then, given a `bootstrap` membership,
    /// bootstraps the log with [`PersistedState::bootstrap`] and makes it durable (without
    /// one, for a node joining a running cluster, the log starts empty). On an existing one,
    /// refuses an identity that differs, recovers, and ignores `bootstrap`: the log's own
    /// configuration entries rule.
    pub fn open(
        mut disk: D,
        identity: Identity,
        bootstrap: Option<Membership>,
        wal_config: WalConfig,
    ) -> Result<(Self, Recovered), StoreError> {
        // Before the WAL is opened: its recovery writes, and must not touch another node's log.
        establish_identity(&mut disk, &identity)?;
        let snapshot = load_snapshot(&disk)?;
        let base = snapshot.as_ref().map(|snapshot| (snapshot.meta.index, snapshot.meta.term));
        let (wal, recovery) = Wal::open(disk, wal_config)?;
        let mut replayed = replay(&recovery.records, &wal.segment_paths(), base)?;
        let mut store = RaftStore {
            wal,
            shape: replayed.shape.clone(),
            entries_record_size_bytes_max: RECORD_PAYLOAD_SIZE_BYTES_MAX as usize,
            metrics: Arc::default(),
            unsynced_hard_state: None,
        };
        if let Some((index, term)) = base {
            if !replayed.shape.holds(index, term) {
                // The snapshot was installed but its record never made it: write it now.
                store.append_snapshot_record(index, term)?;
                reset_to_snapshot(&mut replayed, index, term);
            }
            // The engine starts from the snapshot; entries it covers are not needed.
            replayed.entries.retain(|entry| entry.index > index);
        }
        let mut state = PersistedState {
            hard_state: store.shape.hard_state(),
            snapshot,
            entries: replayed.entries,
            applied_index: base.map_or(0, |(index, _)| index),
        };
        let fresh = replayed.batches == 0 && base.is_none();
        let bootstrapped = fresh && bootstrap.is_some();
        if let (true, Some(membership)) = (fresh, bootstrap) {
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

    /// The node's own snapshot, written with [`write_snapshot_file`], covers `meta`: the log's
    /// base moves to it, WAL segments before the batch holding `first_kept_index` are removed
    /// (the engine keeps entries from there on), and so are older snapshot files.
    /// A snapshot older than the latest (one installed from the leader meanwhile) is ignored.
    pub fn snapshot_saved(&mut self, meta: &SnapshotMeta, first_kept_index: Index) -> Result<(), StoreError> {
        if meta.index <= self.shape.snapshot_index() {
            return Ok(());
        }
        self.shape.reset_to_snapshot(meta.index, meta.term);
        if let Some(sequence) = self.shape.batch_sequence_at(first_kept_index) {
            self.wal.remove_segments_before(sequence)?;
        }
        remove_snapshots_before(self.wal.disk_mut(), meta.index)?;
        Ok(())
    }

    /// Installs a snapshot from the leader: the file, then a synced snapshot record, then
    /// the WAL segments before it are removed, and with `remove_older` older snapshot files
    /// (not while the node writes one of its own, whose temporary file would go too). Once
    /// this returns the engine may be told (`on_snapshot_installed`).
    pub fn install_snapshot(&mut self, snapshot: &Snapshot, remove_older: bool) -> Result<(), StoreError> {
        write_snapshot_file(self.wal.disk_mut(), snapshot)?;
        let (index, term) = (snapshot.meta.index, snapshot.meta.term);
        // Entries after the snapshot stay if the log holds its last entry: keep their batches.
        let suffix_sequence = self.shape.holds(index, term).then(|| self.shape.batch_sequence_at(index + 1)).flatten();
        let record_sequence = self.append_snapshot_record(index, term)?;
        self.wal.remove_segments_before(suffix_sequence.unwrap_or(record_sequence))?;
        if remove_older {
            remove_snapshots_before(self.wal.disk_mut(), snapshot.meta.index)?;
        }
        Ok(())
    }

    /// Appends and syncs a snapshot record and a hard state record after it (whose commit
    /// index the snapshot raises), and applies the snapshot to the log's shape. Returns the
    /// snapshot record's sequence.
    fn append_snapshot_record(&mut self, index: Index, term: engine::Term) -> Result<u64, StoreError> {
        let mut hard_state = self.unsynced_hard_state.unwrap_or(self.shape.hard_state());
        hard_state.commit_index = hard_state.commit_index.max(index);
        let record = encode_snapshot_record(&SnapshotRecord { index, term });
        let sequence = self.wal.append(RECORD_TYPE_SNAPSHOT, &record)?;
        self.metrics.record_wal_bytes(framed_size_bytes(record.len()));
        let closing = encode_hard_state(&HardStateRecord { hard_state, entries_records: 0 });
        self.wal.append(RECORD_TYPE_HARD_STATE, &closing)?;
        self.metrics.record_wal_bytes(framed_size_bytes(closing.len()));
        self.wal.sync()?;
        self.unsynced_hard_state = None;
        self.shape.reset_to_snapshot(index, term);
        self.shape.apply_hard_state(hard_state);
        Ok(sequence)
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

    /// The disk, for writing snapshot files beside the WAL.
    pub fn disk(&self) -> &D {
        self.wal.disk()
    }

    /// Gives the disk back, dropping anything not yet synced.
    pub fn into_disk(self) -> D {
        self.wal.into_disk()
    }
}

/// Writes `snapshot` durably as a snapshot file (see [`crate::storage::snapshot_file`]). Safe
/// to call on another handle of the store's disk while the store goes on writing its WAL.
pub fn write_snapshot_file<D: Disk>(disk: &mut D, snapshot: &Snapshot) -> Result<(), StoreError> {
    let meta = postcard::to_allocvec(&snapshot.meta).expect("snapshot metadata always serializes");
    crate::storage::write_snapshot(disk, snapshot.meta.index, snapshot.meta.term, &meta, &snapshot.data)?;
    Ok(())
}

/// Loads the newest snapshot file, if any, and decodes its metadata.
fn load_snapshot<D: Disk>(disk: &D) -> Result<Option<Snapshot>, StoreError> {
    let Some(stored) = load_latest_snapshot(disk)? else { return Ok(None) };
    let path = crate::storage::snapshot_file::snapshot_path(stored.index, stored.term);
    let meta: SnapshotMeta = postcard::from_bytes(&stored.meta)
        .map_err(|error| StoreError::SnapshotMeta { path: path.clone(), message: error.to_string() })?;
    if (meta.index, meta.term) != (stored.index, stored.term) {
        let message = format!("names {}/{} but the file is {}/{}", meta.index, meta.term, stored.index, stored.term);
        return Err(StoreError::SnapshotMeta { path, message });
    }
    Ok(Some(Snapshot { meta, data: stored.data }))
}
