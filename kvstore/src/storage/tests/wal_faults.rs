//! Injected disk faults: a failed fsync poisons the log, a full disk fails cleanly, and
//! neither loses a record that was synced before it.

use super::*;
use crate::storage::record::encode_record;
use crate::storage::segment::{SegmentDefect, SEGMENT_HEADER_SIZE_BYTES};
use crate::storage::{Disk, TornWrite, WalOpenError, WalWriteError};

#[test]
fn a_failed_fsync_poisons_the_log_and_synced_records_survive() {
    let disk = MemDisk::new();
    let (mut wal, _) = open(&disk, WalConfig::default());
    append_synced(&mut wal, &[b"durable"]);
    wal.append(1, b"doomed").unwrap();
    disk.fail_next_sync();
    let error = wal.sync().unwrap_err();
    assert!(matches!(error, WalWriteError::Disk(_)), "{error}");
    assert!(wal.is_poisoned());
    assert_eq!(wal.last_synced_sequence(), 1);

    let syncs_before = disk.statistics().file_syncs;
    let append_error = wal.append(1, b"after").unwrap_err();
    assert!(matches!(append_error, WalWriteError::Poisoned { .. }), "{append_error}");
    assert!(append_error.to_string().contains("injected sync failure"));
    assert!(matches!(wal.sync().unwrap_err(), WalWriteError::Poisoned { .. }));
    assert!(matches!(wal.remove_segments_before(1).unwrap_err(), WalWriteError::Poisoned { .. }));
    assert_eq!(disk.statistics().file_syncs, syncs_before, "no sync is retried");

    disk.crash_losing_unsynced();
    let (mut wal, recovery) = open(&disk, WalConfig::default());
    assert_eq!(payloads(&recovery), to_vecs(&[b"durable"]));
    append_synced(&mut wal, &[b"after restart"]);
}

/// Shows why the log must not retry: after a failed fsync the kernel may drop the dirty
/// pages and report later fsyncs as successful, leaving a hole. Written without the WAL
/// (which refuses to retry), the hole is found by recovery as corruption.
#[test]
fn retrying_a_failed_fsync_would_leave_a_hole_that_recovery_refuses() {
    let disk = MemDisk::new();
    let (wal, _) = open(&disk, WalConfig::default());
    let path = wal.segment_paths()[0].clone();
    drop(wal);
    let mut raw = disk.clone();
    let mut frames = Vec::new();
    encode_record(&mut frames, 1, b"lost by the failed fsync");
    raw.append(&path, &frames).unwrap();
    disk.fail_next_sync();
    assert!(raw.sync(&path).is_err());
    let mut later = Vec::new();
    encode_record(&mut later, 1, b"synced by the retry");
    raw.append(&path, &later).unwrap();
    raw.sync(&path).unwrap();
    disk.crash_losing_unsynced();
    let error = Wal::open(disk.clone(), WalConfig::default()).unwrap_err();
    let WalOpenError::Corrupt { offset_bytes, defect, .. } = error else {
        panic!("expected corruption, got {error}");
    };
    assert_eq!(offset_bytes, SEGMENT_HEADER_SIZE_BYTES as u64);
    assert!(matches!(defect, SegmentDefect::Record(_)));
}

#[test]
fn a_full_disk_fails_with_a_clear_error_and_loses_nothing_synced() {
    let disk = MemDisk::new();
    let (mut wal, _) = open(&disk, WalConfig::default());
    append_synced(&mut wal, &[b"one", b"two"]);
    disk.set_append_budget_bytes(Some(10));
    wal.append(1, b"does not fit on the disk").unwrap();
    let error = wal.sync().unwrap_err();
    assert!(error.is_storage_full(), "{error}");
    assert!(error.to_string().contains("no space left on device"), "{error}");
    let again = wal.append(1, b"x").unwrap_err();
    assert!(matches!(again, WalWriteError::Poisoned { .. }));
    assert!(again.is_storage_full(), "the poison remembers why");

    // Space returns; the node restarts. The short write is a torn tail.
    disk.set_append_budget_bytes(None);
    drop(wal);
    disk.crash(|_, unsynced_bytes| TornWrite { bytes_kept: unsynced_bytes, bytes_zeroed: 0 });
    let (mut wal, recovery) = open(&disk, WalConfig::default());
    assert_eq!(payloads(&recovery), to_vecs(&[b"one", b"two"]));
    assert_eq!(recovery.torn_tail.map(|torn| torn.bytes_dropped), Some(10));
    append_synced(&mut wal, &[b"three"]);
    disk.crash_losing_unsynced();
    let (_, recovery) = open(&disk, WalConfig::default());
    assert_eq!(payloads(&recovery), to_vecs(&[b"one", b"two", b"three"]));
}

#[test]
fn a_full_disk_during_a_roll_loses_nothing_synced() {
    let disk = MemDisk::new();
    let config = small_segments(50);
    let (mut wal, _) = open(&disk, config.clone());
    append_synced(&mut wal, &[b"first record"]);
    disk.set_append_budget_bytes(Some(0));
    let mut failure = None;
    for _ in 0..3 {
        if let Err(error) = wal.append(1, b"needs a new segment").and_then(|_| wal.sync()) {
            failure = Some(error);
            break;
        }
    }
    assert!(failure.expect("the disk is full").is_storage_full());
    disk.set_append_budget_bytes(None);
    disk.crash_losing_unsynced();
    let (_, recovery) = open(&disk, config);
    assert_eq!(payloads(&recovery), to_vecs(&[b"first record"]));
}

#[test]
fn an_oversized_payload_is_refused_without_poisoning() {
    let disk = MemDisk::new();
    let (mut wal, _) = open(&disk, WalConfig::default());
    let huge = vec![0; 64 * 1024 * 1024 + 1];
    let error = wal.append(1, &huge).unwrap_err();
    assert!(matches!(error, WalWriteError::PayloadTooLarge { .. }), "{error}");
    assert!(!wal.is_poisoned());
    append_synced(&mut wal, &[b"still fine"]);
}
