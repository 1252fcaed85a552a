//! The hard state file: round trip, atomic replacement under a crash at every step, and
//! corruption that is reported with the file name.

use super::stopping_disk::StoppingDisk;
use crate::storage::disk::Disk;
use crate::storage::hard_state::{HARD_STATE_PATH, HARD_STATE_TEMPORARY_PATH};
use crate::storage::{read_hard_state, write_hard_state, HardStateError, MemDisk, TornWrite};

#[test]
fn a_fresh_disk_has_no_hard_state_and_writes_read_back() {
    let mut disk = MemDisk::new();
    assert_eq!(read_hard_state(&disk).unwrap(), None);
    write_hard_state(&mut disk, b"term 1").unwrap();
    assert_eq!(read_hard_state(&disk).unwrap(), Some(b"term 1".to_vec()));
    write_hard_state(&mut disk, b"").unwrap();
    disk.crash_losing_unsynced();
    assert_eq!(read_hard_state(&disk).unwrap(), Some(Vec::new()));
}

#[test]
fn a_crash_at_every_step_of_a_replacement_leaves_the_old_or_the_new_state() {
    let old = b"term 4 vote 2".to_vec();
    let new = b"term 5 vote 3".to_vec();
    let torn_choices = [
        TornWrite::default(),
        TornWrite { bytes_kept: 7, bytes_zeroed: 0 },
        TornWrite { bytes_kept: u64::MAX, bytes_zeroed: 0 },
        TornWrite { bytes_kept: 0, bytes_zeroed: u64::MAX },
    ];
    let mut steps_to_finish = None;
    for operations_allowed in 0..8 {
        for torn_write in torn_choices {
            let mut memory = MemDisk::new();
            write_hard_state(&mut memory, &old).unwrap();
            let mut disk = StoppingDisk { inner: memory.clone(), operations_left: operations_allowed };
            let finished = write_hard_state(&mut disk, &new).is_ok();
            if finished {
                steps_to_finish.get_or_insert(operations_allowed);
            }
            memory.crash(|_, _| torn_write);
            let recovered = read_hard_state(&memory).unwrap().expect("a hard state exists");
            if finished {
                assert_eq!(recovered, new, "a completed write is durable");
            } else {
                assert!(recovered == old || recovered == new, "step {operations_allowed}: {recovered:?}");
            }
            // The next write still succeeds over whatever the crash left behind.
            write_hard_state(&mut memory, b"next").unwrap();
            assert_eq!(read_hard_state(&memory).unwrap(), Some(b"next".to_vec()));
        }
    }
    assert_eq!(steps_to_finish, Some(5), "create, append, sync, rename, sync directory");
}

#[test]
fn a_crash_during_the_first_write_leaves_no_state_or_the_new_one() {
    for operations_allowed in 0..6 {
        let memory = MemDisk::new();
        let mut disk = StoppingDisk { inner: memory.clone(), operations_left: operations_allowed };
        let finished = write_hard_state(&mut disk, b"first").is_ok();
        memory.crash(|_, unsynced_bytes| TornWrite { bytes_kept: unsynced_bytes, bytes_zeroed: 0 });
        let recovered = read_hard_state(&memory).unwrap();
        if finished {
            assert_eq!(recovered, Some(b"first".to_vec()));
        } else {
            assert!(recovered.is_none() || recovered == Some(b"first".to_vec()));
        }
    }
}

#[test]
fn a_flipped_bit_anywhere_is_reported_as_corruption_naming_the_file() {
    let mut disk = MemDisk::new();
    write_hard_state(&mut disk, b"term 9").unwrap();
    let length = disk.length(HARD_STATE_PATH).unwrap();
    for offset in 0..length {
        disk.flip_bit(HARD_STATE_PATH, offset, 6);
        let error = read_hard_state(&disk).unwrap_err();
        assert!(matches!(error, HardStateError::Corrupt { .. }), "{error}");
        assert!(error.to_string().starts_with("corrupt hard state file hard_state: "), "{error}");
        disk.flip_bit(HARD_STATE_PATH, offset, 6);
    }
    assert_eq!(read_hard_state(&disk).unwrap(), Some(b"term 9".to_vec()));
}

#[test]
fn a_truncated_file_is_corruption_and_a_leftover_temporary_file_is_ignored() {
    let mut disk = MemDisk::new();
    write_hard_state(&mut disk, b"term 2").unwrap();
    disk.create(HARD_STATE_TEMPORARY_PATH).unwrap();
    disk.append(HARD_STATE_TEMPORARY_PATH, b"half-written garbage").unwrap();
    assert_eq!(read_hard_state(&disk).unwrap(), Some(b"term 2".to_vec()));
    let length = disk.length(HARD_STATE_PATH).unwrap();
    disk.truncate(HARD_STATE_PATH, length - 1).unwrap();
    assert!(matches!(read_hard_state(&disk).unwrap_err(), HardStateError::Corrupt { .. }));
}
