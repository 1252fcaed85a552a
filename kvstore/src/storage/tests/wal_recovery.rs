//! Recovery: round trips, torn tails that are cut off, corruption that is refused.

use super::*;
use crate::storage::record::{encode_record, framed_size_bytes, RecordDefect};
use crate::storage::segment::{
    encode_segment_header, segment_path, HeaderDefect, SegmentDefect, SEGMENT_HEADER_SIZE_BYTES,
};
use crate::storage::{Disk, TornWrite, WalOpenError};

const FIRST_SEGMENT: &str = "wal/00000000000000000001.log";

#[test]
fn synced_records_come_back_in_order_with_their_sequences() {
    let disk = MemDisk::new();
    let (mut wal, recovery) = open(&disk, WalConfig::default());
    assert_eq!(recovery, Recovery::default());
    let first = wal.append(3, b"alpha").unwrap();
    let second = wal.append(4, b"").unwrap();
    let third = wal.append(5, b"gamma").unwrap();
    wal.sync().unwrap();
    assert_eq!((first, second, third), (1, 2, 3));
    assert_eq!(wal.last_synced_sequence(), 3);
    disk.crash_losing_unsynced();
    let (wal, recovery) = open(&disk, WalConfig::default());
    let summary: Vec<(u64, u8, &[u8])> =
        recovery.records.iter().map(|record| (record.sequence, record.record_type, &record.payload[..])).collect();
    assert_eq!(summary, vec![(1, 3, &b"alpha"[..]), (2, 4, &b""[..]), (3, 5, &b"gamma"[..])]);
    assert_eq!(recovery.torn_tail, None);
    assert_eq!(wal.next_sequence(), 4);
}

#[test]
fn a_batch_of_appends_costs_one_fsync() {
    let disk = MemDisk::new();
    let (mut wal, _) = open(&disk, WalConfig::default());
    let before = disk.statistics();
    for index in 0..100u32 {
        wal.append(1, &index.to_le_bytes()).unwrap();
    }
    assert_eq!(disk.statistics(), before, "appends are buffered, not written");
    wal.sync().unwrap();
    let after = disk.statistics();
    assert_eq!(after.file_syncs, before.file_syncs + 1);
    assert_eq!(after.directory_syncs, before.directory_syncs);
    wal.sync().unwrap();
    assert_eq!(disk.statistics().file_syncs, after.file_syncs, "nothing new to sync");
}

#[test]
fn unsynced_records_are_lost_and_synced_ones_kept() {
    let disk = MemDisk::new();
    let (mut wal, _) = open(&disk, WalConfig::default());
    append_synced(&mut wal, &[b"one", b"two"]);
    wal.append(1, b"three").unwrap();
    disk.crash_losing_unsynced();
    let (_, recovery) = open(&disk, WalConfig::default());
    assert_eq!(payloads(&recovery), to_vecs(&[b"one", b"two"]));
}

#[test]
fn segments_roll_past_the_size_limit_and_recover_as_one_log() {
    let disk = MemDisk::new();
    let config = small_segments(100);
    let (mut wal, _) = open(&disk, config.clone());
    let written: Vec<Vec<u8>> = (0..20u8).map(|index| vec![index; 20]).collect();
    for payload in &written {
        wal.append(7, payload).unwrap();
    }
    wal.sync().unwrap();
    let paths = wal.segment_paths();
    assert!(paths.len() >= 5, "20 records of 29 bytes in 100-byte segments: {paths:?}");
    for path in &paths {
        assert!(disk.length(path).unwrap() <= 100, "{path} over the limit");
    }
    disk.crash_losing_unsynced();
    let (wal, recovery) = open(&disk, config);
    assert_eq!(payloads(&recovery), written);
    assert_eq!(wal.segment_paths(), paths);
}

#[test]
fn a_record_larger_than_a_segment_gets_a_segment_of_its_own() {
    let disk = MemDisk::new();
    let config = small_segments(64);
    let (mut wal, _) = open(&disk, config.clone());
    append_synced(&mut wal, &[b"small", &[9; 200], b"after"]);
    assert_eq!(wal.segment_paths().len(), 3);
    disk.crash_losing_unsynced();
    let (_, recovery) = open(&disk, config);
    assert_eq!(payloads(&recovery), to_vecs(&[b"small", &[9; 200], b"after"]));
}

#[test]
fn a_torn_final_record_is_cut_off_and_later_appends_recover() {
    let disk = MemDisk::new();
    let (mut wal, _) = open(&disk, unbuffered());
    append_synced(&mut wal, &[b"one", b"two"]);
    let synced_length = disk.length(FIRST_SEGMENT).unwrap();
    wal.append(1, b"torn record").unwrap();
    disk.crash(|_, unsynced_bytes| {
        assert_eq!(unsynced_bytes, framed_size_bytes(11) as u64);
        TornWrite { bytes_kept: 12, bytes_zeroed: 0 }
    });

    let (mut wal, recovery) = open(&disk, unbuffered());
    assert_eq!(payloads(&recovery), to_vecs(&[b"one", b"two"]));
    let torn = recovery.torn_tail.expect("torn tail reported");
    assert_eq!(torn.path, FIRST_SEGMENT);
    assert_eq!(torn.offset_bytes, synced_length);
    assert_eq!(torn.bytes_dropped, 12);
    let truncated = RecordDefect::PayloadTruncated { length_bytes: 11, bytes_present: 3 };
    assert_eq!(torn.defect, SegmentDefect::Record(truncated));
    assert_eq!(disk.length(FIRST_SEGMENT).unwrap(), synced_length);

    assert_eq!(wal.append(1, b"three").unwrap(), 3);
    wal.sync().unwrap();
    disk.crash_losing_unsynced();
    let (_, recovery) = open(&disk, unbuffered());
    assert_eq!(payloads(&recovery), to_vecs(&[b"one", b"two", b"three"]));
    assert_eq!(recovery.torn_tail, None);
}

#[test]
fn a_zero_filled_tail_is_cut_off_as_torn() {
    let disk = MemDisk::new();
    let (mut wal, _) = open(&disk, unbuffered());
    append_synced(&mut wal, &[b"kept"]);
    wal.append(1, b"never synced").unwrap();
    wal.append(1, b"nor this").unwrap();
    disk.crash(|_, unsynced_bytes| TornWrite { bytes_kept: 0, bytes_zeroed: unsynced_bytes });
    let (_, recovery) = open(&disk, unbuffered());
    assert_eq!(payloads(&recovery), to_vecs(&[b"kept"]));
    let torn = recovery.torn_tail.expect("zeros reported as a torn tail");
    assert_eq!(torn.bytes_dropped, framed_size_bytes(12) as u64 + framed_size_bytes(8) as u64);
}

#[test]
fn process_crash_keeps_flushed_records_and_open_makes_them_durable() {
    let disk = MemDisk::new();
    let (mut wal, _) = open(&disk, unbuffered());
    wal.append(1, b"flushed, not synced").unwrap();
    drop(wal);
    let (_, recovery) = open(&disk, unbuffered());
    assert_eq!(payloads(&recovery), to_vecs(&[b"flushed, not synced"]));
    disk.crash_losing_unsynced();
    let (_, recovery) = open(&disk, unbuffered());
    assert_eq!(payloads(&recovery), to_vecs(&[b"flushed, not synced"]), "open synced it");
}

#[test]
fn a_huge_declared_length_at_the_tail_is_torn_not_allocated() {
    let disk = MemDisk::new();
    let (mut wal, _) = open(&disk, WalConfig::default());
    append_synced(&mut wal, &[b"one"]);
    drop(wal);
    let mut raw = disk.clone();
    let mut bogus = u32::MAX.to_le_bytes().to_vec();
    bogus.extend_from_slice(&[0xEE; 20]);
    raw.append(FIRST_SEGMENT, &bogus).unwrap();
    let (_, recovery) = open(&disk, WalConfig::default());
    assert_eq!(payloads(&recovery), to_vecs(&[b"one"]));
    let torn = recovery.torn_tail.expect("torn tail reported");
    let too_large = RecordDefect::LengthTooLarge { length_bytes: u32::MAX };
    assert_eq!(torn.defect, SegmentDefect::Record(too_large));
    assert_eq!(torn.bytes_dropped, 24);
}

#[test]
fn a_bit_flip_in_the_middle_of_a_segment_is_corruption_naming_file_and_offset() {
    let disk = MemDisk::new();
    let (mut wal, _) = open(&disk, WalConfig::default());
    append_synced(&mut wal, &[b"first", b"second", b"third"]);
    drop(wal);
    let second_offset = (SEGMENT_HEADER_SIZE_BYTES + framed_size_bytes(5)) as u64;
    let length = disk.length(FIRST_SEGMENT).unwrap();
    disk.flip_bit(FIRST_SEGMENT, second_offset + 10, 4);
    let error = Wal::open(disk.clone(), WalConfig::default()).unwrap_err();
    let WalOpenError::Corrupt { path, offset_bytes, defect } = &error else {
        panic!("expected corruption, got {error}");
    };
    assert_eq!(path, FIRST_SEGMENT);
    assert_eq!(*offset_bytes, second_offset);
    assert!(matches!(defect, SegmentDefect::Record(RecordDefect::ChecksumMismatch { .. })));
    let message = error.to_string();
    let expected = format!("corrupt WAL record in {FIRST_SEGMENT} at offset {second_offset}: checksum mismatch");
    assert!(message.starts_with(&expected), "{message}");
    // Refusing must not have repaired anything: the same error comes back.
    assert_eq!(disk.length(FIRST_SEGMENT).unwrap(), length);
    assert!(Wal::open(disk.clone(), WalConfig::default()).is_err());
}

#[test]
fn a_flipped_length_field_before_the_tail_is_corruption_not_a_torn_tail() {
    let disk = MemDisk::new();
    let (mut wal, _) = open(&disk, WalConfig::default());
    append_synced(&mut wal, &[b"first", b"second", b"third"]);
    drop(wal);
    let second_offset = (SEGMENT_HEADER_SIZE_BYTES + framed_size_bytes(5)) as u64;
    disk.flip_bit(FIRST_SEGMENT, second_offset + 3, 7);
    let error = Wal::open(disk.clone(), WalConfig::default()).unwrap_err();
    let WalOpenError::Corrupt { offset_bytes, defect, .. } = error else {
        panic!("expected corruption, got {error}");
    };
    assert_eq!(offset_bytes, second_offset);
    assert!(matches!(defect, SegmentDefect::Record(RecordDefect::LengthTooLarge { .. })));
}

#[test]
fn a_bad_last_record_of_an_earlier_segment_is_corruption() {
    let disk = MemDisk::new();
    let config = small_segments(60);
    let (mut wal, _) = open(&disk, config.clone());
    append_synced(&mut wal, &[b"first record", b"second record"]);
    let paths = wal.segment_paths();
    assert_eq!(paths.len(), 2);
    drop(wal);
    let last_byte = disk.length(&paths[0]).unwrap() - 1;
    disk.flip_bit(&paths[0], last_byte, 0);
    let error = Wal::open(disk.clone(), config).unwrap_err();
    let WalOpenError::Corrupt { path, offset_bytes, .. } = error else {
        panic!("expected corruption, got {error}");
    };
    assert_eq!(path, paths[0]);
    assert_eq!(offset_bytes, SEGMENT_HEADER_SIZE_BYTES as u64);
}

#[test]
fn a_corrupt_header_with_records_after_it_is_corruption_at_offset_zero() {
    let disk = MemDisk::new();
    let (mut wal, _) = open(&disk, WalConfig::default());
    append_synced(&mut wal, &[b"a record"]);
    drop(wal);
    disk.flip_bit(FIRST_SEGMENT, 2, 1);
    let error = Wal::open(disk.clone(), WalConfig::default()).unwrap_err();
    let WalOpenError::Corrupt { offset_bytes, defect, .. } = error else {
        panic!("expected corruption, got {error}");
    };
    assert_eq!(offset_bytes, 0);
    assert_eq!(defect, SegmentDefect::Header(HeaderDefect::ChecksumMismatch));
}

#[test]
fn a_torn_header_of_the_last_segment_is_rewritten() {
    let disk = MemDisk::new();
    let (mut wal, _) = open(&disk, WalConfig::default());
    append_synced(&mut wal, &[b"one", b"two"]);
    drop(wal);
    // A segment whose name reached the disk before its header did.
    let mut raw = disk.clone();
    let path = "wal/00000000000000000003.log";
    raw.create(path).unwrap();
    raw.append(path, &encode_segment_header(3)[..10]).unwrap();
    raw.sync_directory("wal").unwrap();
    disk.crash_losing_unsynced();
    let (mut wal, recovery) = open(&disk, WalConfig::default());
    assert_eq!(payloads(&recovery), to_vecs(&[b"one", b"two"]));
    let torn = recovery.torn_tail.expect("torn header reported");
    assert_eq!(torn.path, path);
    assert_eq!(torn.defect, SegmentDefect::Header(HeaderDefect::Truncated { bytes_present: 0 }));
    assert_eq!(wal.append(1, b"three").unwrap(), 3);
    wal.sync().unwrap();
    disk.crash_losing_unsynced();
    let (_, recovery) = open(&disk, WalConfig::default());
    assert_eq!(payloads(&recovery), to_vecs(&[b"one", b"two", b"three"]));
}

#[test]
fn a_missing_segment_is_a_gap_not_a_shorter_log() {
    let disk = MemDisk::new();
    let config = small_segments(40);
    let (mut wal, _) = open(&disk, config.clone());
    append_synced(&mut wal, &[b"first", b"second", b"third"]);
    let paths = wal.segment_paths();
    assert_eq!(paths.len(), 3);
    drop(wal);
    let mut raw = disk.clone();
    raw.remove(&paths[1]).unwrap();
    let error = Wal::open(disk.clone(), config).unwrap_err();
    let WalOpenError::SequenceGap { path, expected, found } = error else {
        panic!("expected a gap, got {error}");
    };
    assert_eq!((path, expected, found), (paths[2].clone(), 2, 3));
}

#[test]
fn removing_old_segments_keeps_the_active_one_and_recovery_starts_after_them() {
    let disk = MemDisk::new();
    let config = small_segments(40);
    let (mut wal, _) = open(&disk, config.clone());
    append_synced(&mut wal, &[b"first", b"second", b"third", b"fourth"]);
    assert_eq!(wal.segment_paths().len(), 4);
    assert_eq!(wal.remove_segments_before(3).unwrap(), 2);
    assert_eq!(wal.first_sequence(), 3);
    assert_eq!(wal.remove_segments_before(u64::MAX).unwrap(), 1, "the active one stays");
    assert_eq!(wal.segment_paths(), vec!["wal/00000000000000000004.log".to_string()]);
    disk.crash_losing_unsynced();
    let (wal, recovery) = open(&disk, config);
    assert_eq!(payloads(&recovery), to_vecs(&[b"fourth"]));
    assert_eq!(recovery.records[0].sequence, 4);
    assert_eq!(wal.next_sequence(), 5);
}

#[test]
fn foreign_files_in_the_wal_directory_are_ignored() {
    let disk = MemDisk::new();
    let (mut wal, _) = open(&disk, WalConfig::default());
    append_synced(&mut wal, &[b"one"]);
    drop(wal);
    let mut raw = disk.clone();
    raw.create("wal/notes.txt").unwrap();
    raw.append("wal/notes.txt", b"not a segment").unwrap();
    let (_, recovery) = open(&disk, WalConfig::default());
    assert_eq!(payloads(&recovery), to_vecs(&[b"one"]));
}

/// Found by the `wal_recover` fuzz target (input: one byte, `0x0a`, which names an empty
/// segment 0): sequences start at 1, and counting down from a segment starting at 0
/// underflowed.
#[test]
fn a_file_named_for_sequence_zero_is_not_a_segment() {
    let disk = MemDisk::new();
    let mut raw = disk.clone();
    raw.create_directory("wal").unwrap();
    raw.create("wal/00000000000000000000.log").unwrap();
    raw.sync_directory("wal").unwrap();
    let (mut wal, recovery) = open(&disk, WalConfig::default());
    assert_eq!(recovery, Recovery::default());
    assert_eq!(wal.append(1, b"first").unwrap(), 1);
}

/// The same bound at the other end: a segment named for sequence `u64::MAX`, with a valid
/// header and record, overflowed the count of its records.
#[test]
fn a_file_named_for_a_sequence_at_the_top_of_the_range_is_not_a_segment() {
    let disk = MemDisk::new();
    let mut raw = disk.clone();
    raw.create_directory("wal").unwrap();
    let path = segment_path(u64::MAX);
    let mut content = encode_segment_header(u64::MAX).to_vec();
    encode_record(&mut content, 1, b"a record");
    raw.create(&path).unwrap();
    raw.append(&path, &content).unwrap();
    raw.sync(&path).unwrap();
    raw.sync_directory("wal").unwrap();
    let (_, recovery) = open(&disk, WalConfig::default());
    assert_eq!(recovery, Recovery::default());
}
