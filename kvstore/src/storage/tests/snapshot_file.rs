//! Snapshot files: round trip, the newest wins, crashes at every step of a write, and
//! damage (bit flips, truncation, misnaming) that is refused with the file's name instead
//! of falling back to an older snapshot.

use proptest::prelude::*;

use super::stopping_disk::StoppingDisk;
use crate::storage::disk::Disk;
use crate::storage::snapshot_file::{snapshot_path, SNAPSHOT_HEADER_SIZE_BYTES};
use crate::storage::{
    load_latest_snapshot, remove_snapshots_before, write_snapshot, MemDisk, SnapshotDefect, SnapshotFileError,
    StoredSnapshot, TornWrite, SNAPSHOT_DIRECTORY,
};

fn load(disk: &MemDisk) -> Option<StoredSnapshot> {
    load_latest_snapshot(disk).expect("the snapshot loads")
}

/// The (index, term, data) of the snapshot that loads, if any.
fn loaded_position_and_data(disk: &MemDisk) -> Option<(u64, u64, Vec<u8>)> {
    load(disk).map(|snapshot| (snapshot.index, snapshot.term, snapshot.data.to_vec()))
}

/// The path and defect of a [`SnapshotFileError::Corrupt`], panicking on anything else.
fn corruption(error: SnapshotFileError) -> (String, SnapshotDefect) {
    match error {
        SnapshotFileError::Corrupt { path, defect } => (path, defect),
        other => panic!("expected corruption, got {other}"),
    }
}

/// Replaces the content of `path` through the [`Disk`] trait, durably.
fn rewrite(disk: &mut MemDisk, path: &str, bytes: &[u8]) {
    disk.create(path).unwrap();
    disk.append(path, bytes).unwrap();
    disk.sync(path).unwrap();
    disk.sync_directory(SNAPSHOT_DIRECTORY).unwrap();
}

/// Recomputes the checksum at the end of `bytes`, so that a test can forge a header defect
/// the checksum would otherwise mask.
fn with_checksum_fixed(mut bytes: Vec<u8>) -> Vec<u8> {
    let checksum_offset = bytes.len() - 4;
    let checksum = crc32c::crc32c(&bytes[..checksum_offset]);
    bytes[checksum_offset..].copy_from_slice(&checksum.to_le_bytes());
    bytes
}

fn names_in_snapshot_directory(disk: &MemDisk) -> Vec<String> {
    disk.list(SNAPSHOT_DIRECTORY).unwrap()
}

#[test]
fn a_written_snapshot_reads_back_with_its_position_metadata_and_data() {
    let mut disk = MemDisk::new();
    let path = write_snapshot(&mut disk, 4096, 7, b"membership 1 2 3", b"the state machine").unwrap();
    assert_eq!(path, "snapshots/00000000000000004096-00000000000000000007.snap");
    disk.crash_losing_unsynced();
    let snapshot = load(&disk).expect("a snapshot exists");
    assert_eq!((snapshot.index, snapshot.term), (4096, 7));
    assert_eq!(snapshot.meta, b"membership 1 2 3");
    assert_eq!(&snapshot.data[..], b"the state machine");
}

#[test]
fn empty_metadata_and_data_round_trip() {
    let mut disk = MemDisk::new();
    write_snapshot(&mut disk, 0, 0, b"", b"").unwrap();
    let snapshot = load(&disk).expect("a snapshot exists");
    assert_eq!(snapshot, StoredSnapshot { index: 0, term: 0, meta: Vec::new(), data: Default::default() });
}

#[test]
fn a_missing_or_empty_directory_or_one_without_snapshots_gives_none() {
    let mut disk = MemDisk::new();
    assert_eq!(load(&disk), None);
    assert_eq!(remove_snapshots_before(&mut disk, 10).unwrap(), 0);
    disk.create_directory(SNAPSHOT_DIRECTORY).unwrap();
    assert_eq!(load(&disk), None);
    rewrite(&mut disk, "snapshots/README.txt", b"an operator's note");
    rewrite(&mut disk, "snapshots/00000000000000000005-00000000000000000001.snap.tmp", b"half written");
    assert_eq!(load(&disk), None);
}

#[test]
fn the_snapshot_with_the_highest_index_and_term_wins() {
    let mut disk = MemDisk::new();
    for (index, term) in [(9, 2), (5, 1), (9, 3), (7, 3)] {
        write_snapshot(&mut disk, index, term, b"meta", format!("at {index}.{term}").as_bytes()).unwrap();
    }
    assert_eq!(loaded_position_and_data(&disk), Some((9, 3, b"at 9.3".to_vec())));
}

#[test]
fn writing_the_same_position_again_replaces_the_snapshot() {
    let mut disk = MemDisk::new();
    write_snapshot(&mut disk, 5, 1, b"meta", b"first").unwrap();
    write_snapshot(&mut disk, 5, 1, b"meta", b"second").unwrap();
    disk.crash_losing_unsynced();
    assert_eq!(loaded_position_and_data(&disk), Some((5, 1, b"second".to_vec())));
    assert_eq!(names_in_snapshot_directory(&disk), vec!["00000000000000000005-00000000000000000001.snap"]);
}

/// Mutating operations of a write into an existing directory: create, four appends
/// (header, metadata, data, checksum), sync, rename, sync directory.
const WRITE_STEPS: usize = 8;
const STEPS_BEFORE_RENAME: usize = 6;

/// Starts a write of (9, 2) over a disk holding (5, 1), letting it do
/// `operations_allowed` mutating operations; returns whether it finished.
fn interrupted_write(memory: &MemDisk, operations_allowed: usize) -> bool {
    let mut disk = StoppingDisk { inner: memory.clone(), operations_left: operations_allowed };
    write_snapshot(&mut disk, 9, 2, b"meta", b"new").is_ok()
}

fn disk_with_old_snapshot() -> MemDisk {
    let mut memory = MemDisk::new();
    write_snapshot(&mut memory, 5, 1, b"meta", b"old").unwrap();
    memory
}

#[test]
fn a_crash_at_every_step_of_a_write_leaves_the_previous_snapshot_or_the_new_one() {
    let old = Some((5, 1, b"old".to_vec()));
    let new = Some((9, 2, b"new".to_vec()));
    let torn_choices = [
        TornWrite::default(),
        TornWrite { bytes_kept: 7, bytes_zeroed: 0 },
        TornWrite { bytes_kept: u64::MAX, bytes_zeroed: 0 },
        TornWrite { bytes_kept: 0, bytes_zeroed: u64::MAX },
    ];
    let mut steps_to_finish = None;
    for operations_allowed in 0..=WRITE_STEPS {
        for torn_write in torn_choices {
            let mut memory = disk_with_old_snapshot();
            let finished = interrupted_write(&memory, operations_allowed);
            if finished {
                steps_to_finish.get_or_insert(operations_allowed);
            }
            memory.crash(|_, _| torn_write);
            let recovered = loaded_position_and_data(&memory);
            if finished {
                assert_eq!(recovered, new, "a completed write is durable");
            } else {
                assert!(recovered == old || recovered == new, "step {operations_allowed}: {recovered:?}");
            }
            // Cleaning up and writing again still work over whatever the crash left.
            remove_snapshots_before(&mut memory, 9).unwrap();
            assert_eq!(loaded_position_and_data(&memory), recovered);
            write_snapshot(&mut memory, 12, 2, b"meta", b"next").unwrap();
            assert_eq!(loaded_position_and_data(&memory), Some((12, 2, b"next".to_vec())));
        }
    }
    assert_eq!(steps_to_finish, Some(WRITE_STEPS));
}

#[test]
fn a_write_stopped_before_the_rename_leaves_a_temporary_file_that_is_ignored_then_removed() {
    let mut memory = disk_with_old_snapshot();
    assert!(!interrupted_write(&memory, STEPS_BEFORE_RENAME));
    let temporary = "00000000000000000009-00000000000000000002.snap.tmp";
    assert!(names_in_snapshot_directory(&memory).contains(&temporary.to_string()));
    // The process lives on: the synced temporary file is whole, but not a snapshot yet.
    assert_eq!(loaded_position_and_data(&memory), Some((5, 1, b"old".to_vec())));
    assert_eq!(remove_snapshots_before(&mut memory, 0).unwrap(), 1);
    assert_eq!(names_in_snapshot_directory(&memory), vec!["00000000000000000005-00000000000000000001.snap"]);
    assert_eq!(loaded_position_and_data(&memory), Some((5, 1, b"old".to_vec())));
}

#[test]
fn a_temporary_file_whose_name_survived_a_crash_is_ignored_then_removed() {
    // MemDisk drops a name never committed by a directory sync, but a real file system may
    // keep it; commit it by hand, as if some other directory sync had.
    let mut memory = disk_with_old_snapshot();
    assert!(!interrupted_write(&memory, STEPS_BEFORE_RENAME - 1));
    memory.sync_directory(SNAPSHOT_DIRECTORY).unwrap();
    memory.crash(|_, unsynced_bytes| TornWrite { bytes_kept: unsynced_bytes / 2, bytes_zeroed: 3 });
    assert_eq!(names_in_snapshot_directory(&memory).len(), 2);
    assert_eq!(loaded_position_and_data(&memory), Some((5, 1, b"old".to_vec())));
    assert_eq!(remove_snapshots_before(&mut memory, 5).unwrap(), 1);
    memory.crash_losing_unsynced();
    assert_eq!(names_in_snapshot_directory(&memory), vec!["00000000000000000005-00000000000000000001.snap"]);
}

/// MemDisk models a rename as durable only after the directory sync, so a crash between
/// the two restores the namespace before the rename: the previous snapshot.
#[test]
fn a_crash_after_the_rename_but_before_the_directory_sync_brings_back_the_previous_snapshot() {
    let memory = disk_with_old_snapshot();
    assert!(!interrupted_write(&memory, WRITE_STEPS - 1));
    assert_eq!(loaded_position_and_data(&memory), Some((9, 2, b"new".to_vec())), "visible before the crash");
    memory.crash_losing_unsynced();
    assert_eq!(loaded_position_and_data(&memory), Some((5, 1, b"old".to_vec())));
    assert_eq!(names_in_snapshot_directory(&memory).len(), 1);
}

#[test]
fn a_crash_before_the_directory_sync_of_a_same_name_replacement_keeps_the_old_content() {
    let memory = disk_with_old_snapshot();
    let mut disk = StoppingDisk { inner: memory.clone(), operations_left: WRITE_STEPS - 1 };
    assert!(write_snapshot(&mut disk, 5, 1, b"meta", b"replacement").is_err());
    memory.crash_losing_unsynced();
    assert_eq!(loaded_position_and_data(&memory), Some((5, 1, b"old".to_vec())));
}

#[test]
fn a_flipped_bit_anywhere_is_reported_as_corruption_naming_the_file() {
    let mut disk = MemDisk::new();
    let path = write_snapshot(&mut disk, 3, 1, b"meta", b"some data").unwrap();
    let length = disk.length(&path).unwrap();
    for offset in 0..length {
        for bit in 0..8 {
            disk.flip_bit(&path, offset, bit);
            let error = load_latest_snapshot(&disk).unwrap_err();
            let message = error.to_string();
            assert!(message.starts_with(&format!("corrupt snapshot file {path}: ")), "{message}");
            assert_eq!(corruption(error).0, path);
            disk.flip_bit(&path, offset, bit);
        }
    }
    assert_eq!(loaded_position_and_data(&disk), Some((3, 1, b"some data".to_vec())));
}

#[test]
fn a_damaged_newest_snapshot_is_refused_not_replaced_by_an_older_one() {
    let mut disk = MemDisk::new();
    write_snapshot(&mut disk, 3, 1, b"meta", b"older").unwrap();
    let newest = write_snapshot(&mut disk, 8, 2, b"meta", b"newest").unwrap();
    let data_offset = (SNAPSHOT_HEADER_SIZE_BYTES + b"meta".len()) as u64;
    disk.flip_bit(&newest, data_offset, 0);
    let (path, defect) = corruption(load_latest_snapshot(&disk).unwrap_err());
    assert_eq!(path, newest);
    assert!(matches!(defect, SnapshotDefect::ChecksumMismatch { .. }), "{defect}");
}

#[test]
fn a_truncated_or_extended_file_is_corruption() {
    let mut disk = MemDisk::new();
    let path = write_snapshot(&mut disk, 3, 1, b"meta", b"some data").unwrap();
    let length = disk.length(&path).unwrap();
    for truncated_length in 0..length {
        disk.truncate(&path, truncated_length).unwrap();
        let (_, defect) = corruption(load_latest_snapshot(&disk).unwrap_err());
        let expected = matches!(defect, SnapshotDefect::Truncated { .. } | SnapshotDefect::LengthMismatch { .. });
        assert!(expected, "{truncated_length} bytes: {defect}");
        disk.crash_losing_unsynced();
    }
    disk.append(&path, b"\0").unwrap();
    let (_, defect) = corruption(load_latest_snapshot(&disk).unwrap_err());
    assert_eq!(
        defect,
        SnapshotDefect::LengthMismatch {
            metadata_length_bytes: 4,
            data_length_bytes: 9,
            file_length_bytes: length + 1
        }
    );
    assert!(defect.to_string().contains("a file of 57 bytes, but the file has 58 bytes"), "{defect}");
}

#[test]
fn a_wrong_magic_version_or_position_is_named_in_the_error() {
    let mut disk = MemDisk::new();
    let path = write_snapshot(&mut disk, 3, 1, b"meta", b"data").unwrap();
    let original = disk.read(&path).unwrap();

    let mut foreign = original.clone();
    foreign[0..8].copy_from_slice(b"TALLYHST");
    rewrite(&mut disk, &path, &with_checksum_fixed(foreign));
    assert_eq!(corruption(load_latest_snapshot(&disk).unwrap_err()).1, SnapshotDefect::BadMagic);

    let mut future = original.clone();
    future[8..12].copy_from_slice(&2u32.to_le_bytes());
    rewrite(&mut disk, &path, &with_checksum_fixed(future));
    let error = load_latest_snapshot(&disk).unwrap_err();
    assert!(error.to_string().ends_with("unsupported format version 2 at offset 8 (this build reads version 1)"));

    rewrite(&mut disk, &path, &original);
    disk.rename(&path, &snapshot_path(4, 1)).unwrap();
    let (renamed, defect) = corruption(load_latest_snapshot(&disk).unwrap_err());
    assert_eq!(renamed, snapshot_path(4, 1));
    assert_eq!(defect, SnapshotDefect::PositionMismatch { index_in_header: 3, term_in_header: 1 });
}

#[test]
fn a_snap_name_that_does_not_parse_is_refused_and_other_names_are_ignored() {
    let mut disk = MemDisk::new();
    write_snapshot(&mut disk, 3, 1, b"meta", b"data").unwrap();
    rewrite(&mut disk, "snapshots/notes.txt", b"ignored");
    rewrite(&mut disk, "snapshots/stray.tmp", b"ignored, and not ours to remove");
    assert_eq!(loaded_position_and_data(&disk), Some((3, 1, b"data".to_vec())));
    assert_eq!(remove_snapshots_before(&mut disk, 100).unwrap(), 0);
    let unparsable = [
        "latest.snap",
        "3-1.snap",
        "00000000000000000003.snap",
        "0000000000000000003-00000000000000000001.snap",
        "99999999999999999999-00000000000000000001.snap",
        "+0000000000000000003-00000000000000000001.snap",
    ];
    for name in unparsable {
        let path = format!("{SNAPSHOT_DIRECTORY}/{name}");
        rewrite(&mut disk, &path, b"");
        assert_eq!(
            corruption(load_latest_snapshot(&disk).unwrap_err()),
            (path.clone(), SnapshotDefect::UnrecognizedName)
        );
        assert!(remove_snapshots_before(&mut disk, 100).is_err());
        disk.remove(&path).unwrap();
    }
}

#[test]
fn removal_deletes_older_snapshots_and_keeps_the_newest() {
    let mut disk = MemDisk::new();
    for index in [3, 5, 7] {
        write_snapshot(&mut disk, index, 1, b"meta", b"data").unwrap();
    }
    let directory_syncs = disk.statistics().directory_syncs;
    assert_eq!(remove_snapshots_before(&mut disk, 3).unwrap(), 0);
    assert_eq!(disk.statistics().directory_syncs, directory_syncs, "nothing removed, nothing synced");
    assert_eq!(remove_snapshots_before(&mut disk, 6).unwrap(), 2);
    disk.crash_losing_unsynced();
    assert_eq!(names_in_snapshot_directory(&disk), vec!["00000000000000000007-00000000000000000001.snap"]);
    // Even asked to remove everything before a later index, the newest snapshot stays.
    assert_eq!(remove_snapshots_before(&mut disk, 100).unwrap(), 0);
    assert_eq!(loaded_position_and_data(&disk), Some((7, 1, b"data".to_vec())));
}

proptest! {
    #[test]
    fn any_single_bit_flip_is_detected(
        index in any::<u64>(),
        term in any::<u64>(),
        meta in prop::collection::vec(any::<u8>(), 0..32),
        data in prop::collection::vec(any::<u8>(), 0..256),
        bit_choice in any::<prop::sample::Index>(),
    ) {
        let mut disk = MemDisk::new();
        let path = write_snapshot(&mut disk, index, term, &meta, &data).unwrap();
        let length = disk.length(&path).unwrap();
        let bit_index = bit_choice.index(usize::try_from(length).unwrap() * 8) as u64;
        disk.flip_bit(&path, bit_index / 8, (bit_index % 8) as u8);
        let error = load_latest_snapshot(&disk).unwrap_err();
        prop_assert_eq!(corruption(error).0, path);
    }
}
