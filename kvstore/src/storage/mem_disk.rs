//! [`MemDisk`]: an in-memory [`Disk`] for the simulator and tests, with crashes and faults.
//!
//! # Fault model
//!
//! The simulated disk is as unkind as a real one is allowed to be, and no unkinder, so
//! that recovery code tested against it is neither fooled nor over-fitted.
//!
//! - **Unsynced data is lost on a crash.** Each file keeps its content and the length
//!   that is durable. [`MemDisk::crash`] cuts every file back to its durable length,
//!   optionally keeping a *torn prefix* of the unsynced tail ([`TornWrite::bytes_kept`]),
//!   optionally followed by zeros ([`TornWrite::bytes_zeroed`]: the file length reached
//!   the disk but the data blocks did not). Torn writes are prefixes: a crash never
//!   persists a later unsynced byte while losing an earlier one, other than as zeros.
//!   Outside this model, recovery reports corruption rather than guessing.
//! - **Unsynced truncation is lost on a crash.** A file truncated below its durable
//!   length and not synced comes back with its durable content, whole.
//! - **Names are durable only after a directory sync.** Creating, renaming or removing a
//!   file changes only the current namespace; [`Disk::sync_directory`] commits the
//!   changes of that directory; a crash restores the last committed namespace. A file
//!   whose name was never committed vanishes with its content. Directories themselves
//!   are durable as soon as [`Disk::create_directory`] returns (it syncs the parent).
//! - **A failed fsync** ([`MemDisk::fail_next_sync`]) returns an error and makes nothing
//!   durable. As on Linux after a writeback error, the unsynced bytes stay readable but
//!   are marked lost: even if a later sync succeeds, a crash turns them into zeros. This
//!   is why a failed sync must be fatal to its caller (see the WAL's poisoning).
//! - **A full disk** ([`MemDisk::set_append_budget_bytes`]) makes an append that exceeds
//!   the remaining budget write the prefix that fits and then fail with
//!   [`DiskErrorKind::StorageFull`], like a short `write` followed by `ENOSPC`. Only
//!   appends consume the budget; creating, renaming or truncating files never fails.
//! - **Bit rot** ([`MemDisk::flip_bit`]) flips one bit of a file's content, durable or
//!   not, as media corruption would.
//!
//! The disk is a cheap [`Clone`] handle over shared state (an `Arc<Mutex<..>>`, so it is
//! `Send` for a simulated node's task; nothing contends for the lock). The harness keeps
//! one clone per node across restarts; no statics are involved.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::disk::{parent_directory, Disk, DiskError, DiskErrorKind, DiskOperation};

/// How much of a file's unsynced tail survives a crash; see the fault model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TornWrite {
    /// Bytes of the unsynced tail kept intact, from its start.
    pub bytes_kept: u64,
    /// Bytes after the kept ones that survive as zeros.
    pub bytes_zeroed: u64,
}

/// Counters of what the disk was asked to do, for tests of group commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemDiskStatistics {
    /// Successful [`Disk::sync`] calls.
    pub file_syncs: u64,
    /// Successful [`Disk::sync_directory`] calls.
    pub directory_syncs: u64,
    /// Bytes written by [`Disk::append`].
    pub bytes_appended: u64,
}

/// An in-memory [`Disk`] that can crash and inject faults. Clones share one disk.
#[derive(Debug, Clone, Default)]
pub struct MemDisk {
    state: Arc<Mutex<MemDiskState>>,
}

#[derive(Debug, Default)]
struct MemDiskState {
    inodes: BTreeMap<u64, Inode>,
    inode_id_next: u64,
    /// The namespace as the running program sees it.
    names: BTreeMap<String, u64>,
    /// The namespace a crash restores.
    durable_names: BTreeMap<String, u64>,
    /// Directories other than the root; always durable (see the fault model).
    directories: BTreeSet<String>,
    sync_failures_pending: u32,
    append_budget_bytes: Option<u64>,
    statistics: MemDiskStatistics,
}

#[derive(Debug, Default)]
struct Inode {
    content: Vec<u8>,
    /// `content[..durable_length]` survives a crash, unless a truncation is pending.
    durable_length: usize,
    /// The durable content, saved when an unsynced truncation cut into it.
    durable_before_truncation: Option<Vec<u8>>,
    /// Ranges whose sync failed; they read back as zeros after a crash.
    lost_ranges: Vec<Range<usize>>,
}

impl Inode {
    fn unsynced_bytes(&self) -> u64 {
        if self.durable_before_truncation.is_some() {
            return 0;
        }
        (self.content.len() - self.durable_length) as u64
    }

    fn mark_synced(&mut self) {
        self.durable_length = self.content.len();
        self.durable_before_truncation = None;
    }

    fn crash(&mut self, torn_write: TornWrite) {
        if let Some(durable) = self.durable_before_truncation.take() {
            self.content = durable;
        } else {
            let unsynced = self.content.len() - self.durable_length;
            let kept = clamp_to(torn_write.bytes_kept, unsynced);
            let zeroed = clamp_to(torn_write.bytes_zeroed, unsynced - kept);
            self.content.truncate(self.durable_length + kept + zeroed);
            self.content[self.durable_length + kept..].fill(0);
        }
        for range in self.lost_ranges.drain(..) {
            let end = range.end.min(self.content.len());
            let start = range.start.min(end);
            self.content[start..end].fill(0);
        }
        self.durable_length = self.content.len();
    }
}

fn clamp_to(value: u64, limit: usize) -> usize {
    usize::try_from(value).map_or(limit, |value| value.min(limit))
}

impl MemDisk {
    /// An empty disk with only the root directory.
    pub fn new() -> Self {
        MemDisk::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemDiskState> {
        // A panic elsewhere while holding the lock cannot leave the maps half-updated in a
        // way that matters to a test that is already failing; keep going.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the next [`Disk::sync`] or [`Disk::sync_directory`] fail with an I/O error.
    pub fn fail_next_sync(&self) {
        self.lock().sync_failures_pending += 1;
    }

    /// How many injected sync failures have not fired yet.
    pub fn sync_failures_pending(&self) -> u32 {
        self.lock().sync_failures_pending
    }

    /// Withdraws the injected sync failures that have not fired yet.
    pub fn cancel_sync_failures(&self) {
        self.lock().sync_failures_pending = 0;
    }

    /// The files of `directory` and their lengths, in path order.
    pub fn file_lengths(&self, directory: &str) -> Vec<(String, u64)> {
        let state = self.lock();
        state
            .names
            .iter()
            .filter(|(path, _)| parent_directory(path) == directory)
            .filter_map(|(path, inode_id)| Some((path.clone(), state.inodes.get(inode_id)?.content.len() as u64)))
            .collect()
    }

    /// Limits the bytes that appends may still write before failing with
    /// [`DiskErrorKind::StorageFull`]; `None` removes the limit (space returns).
    pub fn set_append_budget_bytes(&self, budget_bytes: Option<u64>) {
        self.lock().append_budget_bytes = budget_bytes;
    }

    /// Flips bit `bit` (0..8) of the byte at `offset_bytes` in the file `path`.
    ///
    /// Panics if the file does not exist or is too short: that is a harness bug.
    pub fn flip_bit(&self, path: &str, offset_bytes: u64, bit: u8) {
        assert!(bit < 8, "bit index {bit} out of a byte");
        let mut state = self.lock();
        let inode_id = *state.names.get(path).expect("flip_bit on a missing file");
        let inode = state.inodes.get_mut(&inode_id).expect("named inode exists");
        let offset = usize::try_from(offset_bytes).expect("offset fits in memory");
        assert!(offset < inode.content.len(), "flip_bit past the end of {path}");
        inode.content[offset] ^= 1 << bit;
        if let Some(durable) = inode.durable_before_truncation.as_mut() {
            if let Some(byte) = durable.get_mut(offset) {
                *byte ^= 1 << bit;
            }
        }
    }

    /// Simulates power loss: keeps only what was synced, plus for each file with an
    /// unsynced tail whatever `choose_torn_write(path, unsynced_bytes)` says survives.
    ///
    /// Files are visited in path order, so a seeded chooser gives a deterministic result.
    pub fn crash(&self, mut choose_torn_write: impl FnMut(&str, u64) -> TornWrite) {
        let mut state = self.lock();
        let state = &mut *state;
        state.names = state.durable_names.clone();
        let live: BTreeSet<u64> = state.names.values().copied().collect();
        state.inodes.retain(|inode_id, _| live.contains(inode_id));
        let mut visited = BTreeSet::new();
        for (path, inode_id) in &state.names {
            if !visited.insert(*inode_id) {
                continue;
            }
            let inode = state.inodes.get_mut(inode_id).expect("named inode exists");
            let unsynced_bytes = inode.unsynced_bytes();
            let torn_write =
                if unsynced_bytes > 0 { choose_torn_write(path, unsynced_bytes) } else { TornWrite::default() };
            inode.crash(torn_write);
        }
        state.sync_failures_pending = 0;
    }

    /// Simulates power loss that keeps nothing unsynced.
    pub fn crash_losing_unsynced(&self) {
        self.crash(|_, _| TornWrite::default());
    }

    /// What the disk has done so far.
    pub fn statistics(&self) -> MemDiskStatistics {
        self.lock().statistics
    }
}

impl MemDiskState {
    fn directory_exists(&self, directory: &str) -> bool {
        directory.is_empty() || self.directories.contains(directory)
    }

    fn require_parent(&self, operation: DiskOperation, path: &str) -> Result<(), DiskError> {
        if self.directory_exists(parent_directory(path)) {
            Ok(())
        } else {
            Err(not_found(operation, path))
        }
    }

    fn inode(&self, operation: DiskOperation, path: &str) -> Result<&Inode, DiskError> {
        self.names.get(path).and_then(|inode_id| self.inodes.get(inode_id)).ok_or_else(|| not_found(operation, path))
    }

    fn inode_mut(&mut self, operation: DiskOperation, path: &str) -> Result<&mut Inode, DiskError> {
        self.names
            .get(path)
            .and_then(|inode_id| self.inodes.get_mut(inode_id))
            .ok_or_else(|| not_found(operation, path))
    }

    /// Consumes a pending injected sync failure, if any.
    fn take_sync_failure(&mut self) -> bool {
        if self.sync_failures_pending == 0 {
            return false;
        }
        self.sync_failures_pending -= 1;
        true
    }

    /// Drops inodes that no name, current or durable, refers to any more.
    fn collect_garbage(&mut self) {
        let live: BTreeSet<u64> = self.names.values().chain(self.durable_names.values()).copied().collect();
        self.inodes.retain(|inode_id, _| live.contains(inode_id));
    }
}

fn not_found(operation: DiskOperation, path: &str) -> DiskError {
    DiskError::new(operation, path, DiskErrorKind::NotFound, "no such file or directory")
}

fn sync_failure(operation: DiskOperation, path: &str) -> DiskError {
    let message = "input/output error (injected sync failure)";
    DiskError::new(operation, path, DiskErrorKind::Other, message)
}

impl Disk for MemDisk {
    fn create_directory(&mut self, path: &str) -> Result<(), DiskError> {
        let mut state = self.lock();
        let mut directory = path;
        while !directory.is_empty() {
            state.directories.insert(directory.to_string());
            directory = parent_directory(directory);
        }
        Ok(())
    }

    fn create(&mut self, path: &str) -> Result<(), DiskError> {
        let mut state = self.lock();
        state.require_parent(DiskOperation::Create, path)?;
        // A new inode, so that the old content stays reachable through the durable
        // namespace until the directory is synced.
        let inode_id = state.inode_id_next;
        state.inode_id_next += 1;
        state.inodes.insert(inode_id, Inode::default());
        state.names.insert(path.to_string(), inode_id);
        Ok(())
    }

    fn append(&mut self, path: &str, bytes: &[u8]) -> Result<(), DiskError> {
        let mut state = self.lock();
        let state = &mut *state;
        let budget_bytes = state.append_budget_bytes;
        let inode = state.inode_mut(DiskOperation::Append, path)?;
        let fitting = budget_bytes.map_or(bytes.len(), |budget| clamp_to(budget, bytes.len()));
        inode.content.extend_from_slice(&bytes[..fitting]);
        state.statistics.bytes_appended += fitting as u64;
        if let Some(budget) = state.append_budget_bytes.as_mut() {
            *budget -= fitting as u64;
        }
        if fitting < bytes.len() {
            let message = "no space left on device (simulated full disk)";
            return Err(DiskError::new(DiskOperation::Append, path, DiskErrorKind::StorageFull, message));
        }
        Ok(())
    }

    fn sync(&mut self, path: &str) -> Result<(), DiskError> {
        let mut state = self.lock();
        let failed = state.take_sync_failure();
        let inode = state.inode_mut(DiskOperation::Sync, path)?;
        if failed {
            let unsynced = inode.durable_length..inode.content.len();
            if !unsynced.is_empty() {
                inode.lost_ranges.push(unsynced);
            }
            return Err(sync_failure(DiskOperation::Sync, path));
        }
        inode.mark_synced();
        state.statistics.file_syncs += 1;
        Ok(())
    }

    fn sync_directory(&mut self, directory: &str) -> Result<(), DiskError> {
        let mut state = self.lock();
        if !state.directory_exists(directory) {
            return Err(not_found(DiskOperation::SyncDirectory, directory));
        }
        if state.take_sync_failure() {
            return Err(sync_failure(DiskOperation::SyncDirectory, directory));
        }
        let in_directory = |path: &String| parent_directory(path) == directory;
        state.durable_names.retain(|path, _| !in_directory(path));
        let committed: Vec<(String, u64)> = state
            .names
            .iter()
            .filter(|(path, _)| in_directory(path))
            .map(|(path, inode_id)| (path.clone(), *inode_id))
            .collect();
        state.durable_names.extend(committed);
        state.collect_garbage();
        state.statistics.directory_syncs += 1;
        Ok(())
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, DiskError> {
        let state = self.lock();
        Ok(state.inode(DiskOperation::Read, path)?.content.clone())
    }

    fn read_range(&self, path: &str, offset_bytes: u64, length_bytes: u64) -> Result<Vec<u8>, DiskError> {
        let state = self.lock();
        let content = &state.inode(DiskOperation::Read, path)?.content;
        let range = usize::try_from(offset_bytes)
            .ok()
            .zip(usize::try_from(length_bytes).ok())
            .and_then(|(start, length)| Some(start..start.checked_add(length)?))
            .filter(|range| range.end <= content.len());
        match range {
            Some(range) => Ok(content[range].to_vec()),
            None => {
                let message = "read past the end of the file";
                let kind = DiskErrorKind::Other;
                Err(DiskError::new(DiskOperation::Read, path, kind, message))
            }
        }
    }

    fn truncate(&mut self, path: &str, length_bytes: u64) -> Result<(), DiskError> {
        let mut state = self.lock();
        let inode = state.inode_mut(DiskOperation::Truncate, path)?;
        let length = clamp_to(length_bytes, usize::MAX);
        if length < inode.durable_length && inode.durable_before_truncation.is_none() {
            inode.durable_before_truncation = Some(inode.content[..inode.durable_length].to_vec());
        }
        inode.content.resize(length, 0);
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        let mut state = self.lock();
        let both = format!("{from} -> {to}");
        state.require_parent(DiskOperation::Rename, to)?;
        let inode_id = state.names.remove(from).ok_or_else(|| not_found(DiskOperation::Rename, &both))?;
        state.names.insert(to.to_string(), inode_id);
        Ok(())
    }

    fn remove(&mut self, path: &str) -> Result<(), DiskError> {
        let mut state = self.lock();
        match state.names.remove(path) {
            Some(_) => Ok(()),
            None => Err(not_found(DiskOperation::Remove, path)),
        }
    }

    fn list(&self, directory: &str) -> Result<Vec<String>, DiskError> {
        let state = self.lock();
        if !state.directory_exists(directory) {
            return Err(not_found(DiskOperation::List, directory));
        }
        let names = state
            .names
            .keys()
            .filter(|path| parent_directory(path) == directory)
            .map(|path| path.rsplit('/').next().unwrap_or(path).to_string())
            .collect();
        Ok(names)
    }

    fn length(&self, path: &str) -> Result<u64, DiskError> {
        let state = self.lock();
        Ok(state.inode(DiskOperation::Length, path)?.content.len() as u64)
    }
}
