//! The simulated disk keeps its fault model: what survives a crash, and each fault.

use crate::storage::disk::{parent_directory, DiskOperation};
use crate::storage::{Disk, MemDisk, TornWrite};

fn disk_with_file(path: &str, durable: &[u8], unsynced: &[u8]) -> MemDisk {
    let mut disk = MemDisk::new();
    disk.create_directory(parent_directory(path)).unwrap();
    disk.create(path).unwrap();
    disk.sync_directory(parent_directory(path)).unwrap();
    disk.append(path, durable).unwrap();
    disk.sync(path).unwrap();
    disk.append(path, unsynced).unwrap();
    disk
}

#[test]
fn crash_keeps_synced_bytes_and_drops_unsynced_ones() {
    let disk = disk_with_file("wal/a", b"durable", b" pending");
    assert_eq!(disk.read("wal/a").unwrap(), b"durable pending");
    disk.crash_losing_unsynced();
    assert_eq!(disk.read("wal/a").unwrap(), b"durable");
}

#[test]
fn crash_keeps_the_chosen_torn_prefix_then_zeros() {
    let disk = disk_with_file("a", b"durable", b"12345678");
    let mut asked = Vec::new();
    disk.crash(|path, unsynced_bytes| {
        asked.push((path.to_string(), unsynced_bytes));
        TornWrite { bytes_kept: 3, bytes_zeroed: 2 }
    });
    assert_eq!(asked, vec![("a".to_string(), 8)]);
    assert_eq!(disk.read("a").unwrap(), b"durable123\0\0");
}

#[test]
fn a_created_file_is_lost_unless_its_directory_is_synced() {
    let mut disk = MemDisk::new();
    disk.create("kept").unwrap();
    disk.sync_directory("").unwrap();
    disk.create("lost").unwrap();
    disk.append("lost", b"synced data").unwrap();
    disk.sync("lost").unwrap();
    disk.crash_losing_unsynced();
    assert_eq!(disk.list("").unwrap(), vec!["kept".to_string()]);
    assert!(disk.read("lost").unwrap_err().is_not_found());
}

#[test]
fn an_unsynced_rename_is_undone_by_a_crash() {
    let mut disk = disk_with_file("target", b"old", b"");
    disk.create("temporary").unwrap();
    disk.append("temporary", b"new").unwrap();
    disk.sync("temporary").unwrap();
    disk.rename("temporary", "target").unwrap();
    assert_eq!(disk.read("target").unwrap(), b"new");
    disk.crash_losing_unsynced();
    assert_eq!(disk.read("target").unwrap(), b"old");
    assert!(disk.read("temporary").unwrap_err().is_not_found());
}

#[test]
fn an_unsynced_truncation_is_undone_by_a_crash() {
    let mut disk = disk_with_file("a", b"0123456789", b"");
    disk.truncate("a", 4).unwrap();
    disk.append("a", b"xy").unwrap();
    assert_eq!(disk.read("a").unwrap(), b"0123xy");
    disk.crash(|_, _| unreachable!("a pending truncation has no torn tail to choose"));
    assert_eq!(disk.read("a").unwrap(), b"0123456789");
}

#[test]
fn data_whose_sync_failed_reads_back_as_zeros_after_a_crash_even_if_resynced() {
    let mut disk = disk_with_file("a", b"ok", b"lost");
    disk.fail_next_sync();
    let error = disk.sync("a").unwrap_err();
    assert_eq!(error.operation, DiskOperation::Sync);
    assert_eq!(disk.read("a").unwrap(), b"oklost", "still readable before a crash");
    disk.append("a", b"later").unwrap();
    disk.sync("a").unwrap();
    disk.crash_losing_unsynced();
    assert_eq!(disk.read("a").unwrap(), b"ok\0\0\0\0later");
}

#[test]
fn full_disk_writes_the_prefix_that_fits_then_fails() {
    let mut disk = disk_with_file("a", b"", b"");
    disk.set_append_budget_bytes(Some(3));
    let error = disk.append("a", b"abcdef").unwrap_err();
    assert!(error.is_storage_full());
    assert_eq!(disk.read("a").unwrap(), b"abc");
    assert!(disk.append("a", b"g").unwrap_err().is_storage_full());
    disk.set_append_budget_bytes(None);
    disk.append("a", b"g").unwrap();
    assert_eq!(disk.read("a").unwrap(), b"abcg");
}

#[test]
fn a_flipped_bit_survives_a_crash_in_durable_data() {
    let disk = disk_with_file("a", &[0b0000_0000, 0b1111_1111], b"");
    disk.flip_bit("a", 1, 3);
    disk.crash_losing_unsynced();
    assert_eq!(disk.read("a").unwrap(), vec![0b0000_0000, 0b1111_0111]);
}

#[test]
fn clones_share_one_disk_and_count_syncs() {
    let mut disk = MemDisk::new();
    let clone = disk.clone();
    disk.create("a").unwrap();
    disk.append("a", b"xyz").unwrap();
    disk.sync("a").unwrap();
    assert_eq!(clone.read("a").unwrap(), b"xyz");
    let statistics = clone.statistics();
    assert_eq!(statistics.file_syncs, 1);
    assert_eq!(statistics.bytes_appended, 3);
}

#[test]
fn read_range_refuses_to_read_past_the_end() {
    let disk = disk_with_file("a", b"0123456789", b"");
    assert_eq!(disk.read_range("a", 2, 3).unwrap(), b"234");
    assert!(disk.read_range("a", 8, 3).is_err());
    assert!(disk.read_range("a", u64::MAX, 1).is_err());
}

#[test]
fn operations_in_a_missing_directory_fail_as_not_found() {
    let mut disk = MemDisk::new();
    assert!(disk.create("missing/a").unwrap_err().is_not_found());
    assert!(disk.list("missing").unwrap_err().is_not_found());
    assert!(disk.append("a", b"x").unwrap_err().is_not_found());
}
