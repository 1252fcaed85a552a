//! Tests of the storage module as a whole: WAL recovery under crashes and faults, the
//! hard state file, snapshot files, and the real file system.

mod fs_disk;
mod hard_state;
mod mem_disk;
mod snapshot_file;
mod stopping_disk;
mod wal_faults;
mod wal_properties;
mod wal_recovery;

use super::{MemDisk, Recovery, Wal, WalConfig};

/// A configuration with small segments, so a few records roll.
fn small_segments(segment_size_bytes_max: u64) -> WalConfig {
    WalConfig { segment_size_bytes_max, ..WalConfig::default() }
}

/// A configuration that hands every record to the disk at once (still unsynced), so a
/// crash can tear it.
fn unbuffered() -> WalConfig {
    WalConfig { write_buffer_size_bytes_max: 1, ..WalConfig::default() }
}

fn open(disk: &MemDisk, config: WalConfig) -> (Wal<MemDisk>, Recovery) {
    Wal::open(disk.clone(), config).expect("recovery succeeds")
}

/// Appends one record per payload (type 1) and syncs once.
fn append_synced(wal: &mut Wal<MemDisk>, payloads: &[&[u8]]) {
    for payload in payloads {
        wal.append(1, payload).expect("append");
    }
    wal.sync().expect("sync");
}

fn payloads(recovery: &Recovery) -> Vec<Vec<u8>> {
    let records = recovery.records.iter();
    records.map(|record| record.payload.to_vec()).collect()
}

fn to_vecs(payloads: &[&[u8]]) -> Vec<Vec<u8>> {
    payloads.iter().map(|payload| payload.to_vec()).collect()
}
