//! Damaged data: a flipped bit before the tail, and intact records that do not form a
//! valid Raft log. Each is an error that names the file, never a panic.

use engine::PersistedState;

use super::*;
use crate::raft_store::records::{
    encode_entries, encode_hard_state, HardStateRecord, RECORD_TYPE_ENTRIES, RECORD_TYPE_HARD_STATE,
};
use crate::raft_store::{write_identity, LogDefect};
use crate::storage::{Wal, WalOpenError};

const FIRST_SEGMENT: &str = "wal/00000000000000000001.log";

/// Bytes of segment header before the first record.
const FIRST_RECORD_OFFSET_BYTES: u64 = 24;

#[test]
fn a_flipped_bit_in_an_early_record_is_an_error_naming_the_file_and_offset() {
    let disk = MemDisk::new();
    let (mut store, _) = open(&disk);
    store.persist(Some(hard_state(2, Some(1), 1)), &[entry(2, 2, "later"), entry(3, 2, "records")]).unwrap();
    drop(store);
    disk.flip_bit(FIRST_SEGMENT, FIRST_RECORD_OFFSET_BYTES + 12, 0);

    let error = open_with(&disk, identity(), WalConfig::default()).unwrap_err();
    let corrupt = matches!(
        &error,
        StoreError::Recover(WalOpenError::Corrupt { path, offset_bytes: FIRST_RECORD_OFFSET_BYTES, .. })
            if path == FIRST_SEGMENT
    );
    assert!(corrupt, "{error:?}");
    let message = error.to_string();
    assert!(message.contains(FIRST_SEGMENT) && message.contains("offset 24"), "{message}");
}

type RawRecord = (u8, Vec<u8>);

fn entries_record(entries: &[Entry]) -> RawRecord {
    let mut payloads = encode_entries(entries, usize::MAX).unwrap();
    assert_eq!(payloads.len(), 1);
    (RECORD_TYPE_ENTRIES, payloads.remove(0))
}

fn hard_state_record(hard_state: HardState, entries_records: u32) -> RawRecord {
    (RECORD_TYPE_HARD_STATE, encode_hard_state(&HardStateRecord { hard_state, entries_records }))
}

/// Records 1 and 2: the bootstrap batch, as the store writes it.
fn bootstrap_records() -> Vec<RawRecord> {
    let bootstrap = PersistedState::bootstrap(membership());
    vec![entries_record(&bootstrap.entries), hard_state_record(bootstrap.hard_state, 1)]
}

/// Writes the identity and then `records` after the bootstrap batch, and opens the store.
fn open_crafted(records: Vec<RawRecord>) -> StoreError {
    let mut disk = MemDisk::new();
    write_identity(&mut disk, &identity()).unwrap();
    let (mut wal, _) = Wal::open(disk.clone(), WalConfig::default()).unwrap();
    for (record_type, payload) in bootstrap_records().into_iter().chain(records) {
        wal.append(record_type, &payload).unwrap();
    }
    wal.sync().unwrap();
    drop(wal);
    open_with(&disk, identity(), WalConfig::default()).expect_err("the crafted log is refused")
}

fn assert_corrupt_at(error: StoreError, expected_sequence: u64, expected: LogDefect) {
    match error {
        StoreError::Corrupt { path, sequence, defect } => {
            assert_eq!((path.as_str(), sequence, defect), (FIRST_SEGMENT, expected_sequence, expected));
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn the_crafted_logs_are_valid_without_their_defect() {
    let mut disk = MemDisk::new();
    write_identity(&mut disk, &identity()).unwrap();
    let (mut wal, _) = Wal::open(disk.clone(), WalConfig::default()).unwrap();
    let records = bootstrap_records()
        .into_iter()
        .chain([entries_record(&[entry(2, 1, "ok")]), hard_state_record(hard_state(1, None, 2), 1)]);
    for (record_type, payload) in records {
        wal.append(record_type, &payload).unwrap();
    }
    wal.sync().unwrap();
    drop(wal);
    let (_, recovered) = open(&disk);
    assert_eq!(recovered.state.entries.len(), 2);
    assert_eq!(recovered.state.hard_state.commit_index, 2);
}

#[test]
fn an_unknown_record_type_is_corruption() {
    let error = open_crafted(vec![(7, vec![1, 2, 3])]);
    assert_corrupt_at(error, 3, LogDefect::UnknownRecordType { record_type: 7 });
}

#[test]
fn entries_after_a_gap_are_corruption_naming_their_record() {
    let error = open_crafted(vec![
        entries_record(&[entry(3, 1, "hole before me")]),
        hard_state_record(hard_state(1, None, 1), 1),
    ]);
    assert_corrupt_at(error, 3, LogDefect::Gap { first_index: 3, last_index: 1 });
}

#[test]
fn decreasing_terms_are_corruption() {
    let error =
        open_crafted(vec![entries_record(&[entry(2, 0, "old term")]), hard_state_record(hard_state(1, None, 1), 1)]);
    assert_corrupt_at(error, 3, LogDefect::TermDecreases { index: 2, term: 0, previous_term: 1 });
}

#[test]
fn a_commit_index_past_the_log_is_corruption() {
    let error = open_crafted(vec![hard_state_record(hard_state(1, None, 5), 0)]);
    assert_corrupt_at(error, 3, LogDefect::CommitBeyondLog { commit_index: 5, last_index: 1 });
}

#[test]
fn overwriting_a_committed_entry_is_corruption() {
    let error = open_crafted(vec![
        entries_record(&[entry(1, 2, "rewrites history")]),
        hard_state_record(hard_state(2, None, 1), 1),
    ]);
    assert_corrupt_at(error, 3, LogDefect::OverwritesCommitted { first_index: 1, commit_index: 1 });
}

#[test]
fn a_batch_claiming_more_records_than_precede_it_is_corruption() {
    let error = open_crafted(vec![entries_record(&[entry(2, 1, "a")]), hard_state_record(hard_state(1, None, 1), 2)]);
    assert_corrupt_at(error, 4, LogDefect::BatchShort { declared: 2, present: 1 });
}

#[test]
fn undecodable_payloads_are_corruption() {
    let error = open_crafted(vec![(RECORD_TYPE_HARD_STATE, vec![0xff, 0xff, 0xff])]);
    assert!(
        matches!(error, StoreError::Corrupt { sequence: 3, defect: LogDefect::Undecodable { .. }, .. }),
        "{error:?}"
    );
    let error = open_crafted(vec![(RECORD_TYPE_ENTRIES, vec![0xff; 4]), hard_state_record(hard_state(1, None, 1), 1)]);
    assert!(
        matches!(error, StoreError::Corrupt { sequence: 3, defect: LogDefect::Undecodable { .. }, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with("corrupt Raft log in wal/00000000000000000001.log at record sequence 3: "),
        "{message}"
    );
}
