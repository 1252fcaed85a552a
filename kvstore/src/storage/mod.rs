//! Durable storage: the [`Disk`] trait, the segmented write-ahead log, the hard state
//! file and the snapshot files.
//!
//! Code map:
//! - [`disk`]: the [`Disk`] trait and its durability contract, [`DiskError`].
//! - [`fs_disk`]: [`FsDisk`], the real file system.
//! - [`mem_disk`]: [`MemDisk`], the simulated disk; its fault model is documented there.
//! - [`record`]: framing of one WAL record (length, CRC32C, type, payload).
//! - [`segment`]: segment names, headers and scanning.
//! - [`wal`]: [`Wal`]: group commit, segment roll, recovery, compaction.
//! - [`hard_state`]: the atomically replaced hard state file.
//! - [`snapshot_file`]: snapshot files (position, metadata, state machine data): write,
//!   load the newest, remove the older ones.
//!
//! On-disk layout of a data directory:
//! ```text
//! hard_state                      written by write_hard_state (hard_state.tmp on the way)
//! wal/00000000000000000001.log    segments, named by the sequence of their first record
//! wal/00000000000000004711.log
//! snapshots/00000000000000004096-00000000000000000007.snap
//!                                 snapshots, named by index and term (.snap.tmp on the way)
//! ```
//!
//! **Architecture Invariant:** this module is synchronous and deterministic: no threads,
//! no clocks, no statics, no hash maps. The same code runs under the simulator with a
//! [`MemDisk`] and in production with an [`FsDisk`].
//!
//! **Architecture Invariant:** a failed fsync is fatal. The WAL poisons itself and the
//! caller must stop and recover from disk; nothing here retries a sync.

pub mod disk;
pub mod fs_disk;
pub mod hard_state;
pub mod mem_disk;
pub mod record;
pub mod segment;
pub mod snapshot_file;
pub mod wal;
pub mod wal_error;

#[cfg(test)]
mod tests;

pub use disk::{Disk, DiskError, DiskErrorKind, DiskOperation};
pub use fs_disk::FsDisk;
pub use hard_state::{read_hard_state, write_hard_state, HardStateError};
pub use mem_disk::{MemDisk, MemDiskStatistics, TornWrite};
pub use snapshot_file::{
    load_latest_snapshot, remove_snapshots_before, write_snapshot, SnapshotDefect, SnapshotFileError, StoredSnapshot,
    SNAPSHOT_DIRECTORY,
};
pub use wal::{Record, Recovery, TornTail, Wal, WalConfig};
pub use wal_error::{WalOpenError, WalWriteError};
