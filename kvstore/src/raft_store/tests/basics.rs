//! Round trips, group commit, refused batches and write failures.

use std::path::PathBuf;

use engine::PersistedState;

use super::*;
use crate::raft_store::LogDefect;
use crate::storage::{Disk, FsDisk};

fn assert_same_state(recovered: &PersistedState, expected: &PersistedState) {
    assert_eq!(recovered.hard_state, expected.hard_state);
    assert_eq!(recovered.entries, expected.entries);
    assert_eq!(recovered.applied_index, 0);
}

#[test]
fn bootstrap_then_reopen_recovers_the_same_state() {
    let disk = MemDisk::new();
    let (store, recovered) = open(&disk);
    let bootstrap = PersistedState::bootstrap(membership());
    assert!(recovered.bootstrapped);
    assert_same_state(&recovered.state, &bootstrap);
    assert_eq!((store.last_index(), store.hard_state()), (1, bootstrap.hard_state));
    drop(store);
    disk.crash_losing_unsynced();

    let (_store, reopened) = open(&disk);
    assert!(!reopened.bootstrapped);
    assert_eq!((reopened.torn_tail, reopened.abandoned_records), (None, 0));
    assert_same_state(&reopened.state, &bootstrap);
}

#[test]
fn batches_round_trip_and_a_later_batch_replaces_the_suffix_it_overlaps() {
    let disk = MemDisk::new();
    let (mut store, recovered) = open(&disk);
    let mut expected = recovered.state.entries;
    let appended = [entry(2, 2, "a"), entry(3, 2, "b"), entry(4, 2, "c"), entry(5, 2, "d")];
    store.persist(Some(hard_state(2, Some(2), 1)), &appended).unwrap();
    store.persist(Some(hard_state(2, Some(2), 3)), &[]).unwrap();
    // A new leader of term 3 overwrites the uncommitted entries 4 and 5 with its own.
    let overwriting = [entry(4, 3, "x"), entry(5, 3, "y"), entry(6, 3, "z")];
    store.persist(Some(hard_state(3, None, 3)), &overwriting).unwrap();
    store.persist(None, &[entry(7, 3, "w")]).unwrap();
    expected.extend_from_slice(&appended[..2]);
    expected.extend_from_slice(&overwriting);
    expected.push(entry(7, 3, "w"));
    assert_eq!((store.last_index(), store.term_at(4), store.term_at(3)), (7, Some(3), Some(2)));
    drop(store);
    disk.crash_losing_unsynced();

    let (store, reopened) = open(&disk);
    assert_eq!(reopened.state.entries, expected);
    assert_eq!(reopened.state.hard_state, hard_state(3, None, 3));
    assert_eq!((store.last_index(), store.term_at(7)), (7, Some(3)));
}

#[test]
fn the_batch_sequence_of_each_entry_points_at_the_batch_that_wrote_it() {
    let disk = MemDisk::new();
    let (mut store, _) = open(&disk);
    assert_eq!(store.batch_sequence_at(1), Some(1), "the bootstrap batch is the first record");
    let second = store.wal().next_sequence();
    store.persist(None, &[entry(2, 1, "a"), entry(3, 1, "b")]).unwrap();
    let third = store.wal().next_sequence();
    store.persist(None, &[entry(3, 1, "c")]).unwrap();
    let sequences: Vec<_> = (1..=4).map(|index| store.batch_sequence_at(index)).collect();
    assert_eq!(sequences, [Some(1), Some(second), Some(third), None]);
    drop(store);
    let (store, _) = open(&disk);
    let reopened: Vec<_> = (1..=4).map(|index| store.batch_sequence_at(index)).collect();
    assert_eq!(reopened, sequences, "replay rebuilds the same mapping");
}

#[test]
fn each_persist_costs_exactly_one_file_sync_and_no_directory_sync() {
    let disk = MemDisk::new();
    let (mut store, _) = open(&disk);
    store.entries_record_size_bytes_max = 40;
    let many: Vec<_> = (2..30).map(|index| entry(index, 2, "some command bytes")).collect();
    let batches: [(Option<HardState>, Vec<Entry>); 4] = [
        (Some(hard_state(2, Some(1), 1)), many),
        (None, vec![entry(30, 2, "one more")]),
        (Some(hard_state(2, Some(1), 20)), Vec::new()),
        (Some(hard_state(3, None, 20)), vec![entry(25, 3, "overwrite")]),
    ];
    for (hard_state, entries) in batches {
        let before = disk.statistics();
        store.persist(hard_state, &entries).unwrap();
        let after = disk.statistics();
        assert_eq!(after.file_syncs - before.file_syncs, 1);
        assert_eq!(after.directory_syncs, before.directory_syncs);
    }
}

#[test]
fn persist_with_nothing_to_write_does_no_io() {
    let disk = MemDisk::new();
    let (mut store, _) = open(&disk);
    let before = disk.statistics();
    store.persist(None, &[]).unwrap();
    assert_eq!(disk.statistics(), before);
}

#[test]
fn a_batch_split_into_several_records_recovers_whole() {
    let disk = MemDisk::new();
    let (mut store, _) = open(&disk);
    store.entries_record_size_bytes_max = 50;
    let entries: Vec<_> = (2..22).map(|index| entry(index, 1, "twenty bytes of data")).collect();
    let first_sequence = store.wal().next_sequence();
    store.persist(None, &entries).unwrap();
    let records = store.wal().next_sequence() - first_sequence;
    assert!(records > 5, "only {records} records: the batch was not split");
    drop(store);

    let (_, reopened) = open(&disk);
    assert_eq!(&reopened.state.entries[1..], &entries[..]);
}

#[test]
fn invalid_batches_are_refused_before_anything_is_written() {
    let disk = MemDisk::new();
    let (mut store, _) = open(&disk);
    store.persist(Some(hard_state(2, None, 1)), &[entry(2, 2, "a"), entry(3, 2, "b")]).unwrap();
    store.entries_record_size_bytes_max = 64;
    let before = disk.statistics();
    let refusals = [
        (None, vec![entry(5, 2, "gap")]),
        (Some(hard_state(2, None, 4)), vec![]),
        (Some(hard_state(1, None, 1)), vec![]),
        (None, vec![entry(1, 2, "overwrites the committed entry 1")]),
        (None, vec![entry(4, 1, "term below the entry before it")]),
        (None, vec![entry(4, 3, "term above the hard state")]),
    ];
    for (hard_state, entries) in refusals {
        let error = store.persist(hard_state, &entries).unwrap_err();
        assert!(matches!(error, StoreError::InvalidBatch(_)), "{error}");
    }
    let error = store.persist(None, &[entry(4, 2, &"x".repeat(100))]).unwrap_err();
    assert!(matches!(error, StoreError::EntryTooLarge { index: 4, .. }), "{error}");
    assert_eq!(disk.statistics(), before, "a refused batch writes nothing");
    let gap = store.persist(None, &[entry(9, 2, "x")]).unwrap_err();
    assert_eq!(
        gap.to_string(),
        "invalid batch refused, nothing written: entries start at index 9 but the log ends at index 3"
    );
    assert!(matches!(gap, StoreError::InvalidBatch(LogDefect::Gap { first_index: 9, last_index: 3 })));

    store.persist(None, &[entry(4, 2, "fine")]).unwrap();
    assert_eq!(store.last_index(), 4);
}

#[test]
fn a_failed_sync_poisons_the_store_and_loses_nothing_acknowledged() {
    let disk = MemDisk::new();
    let (mut store, _) = open(&disk);
    store.persist(None, &[entry(2, 1, "acknowledged")]).unwrap();
    disk.fail_next_sync();
    let error = store.persist(None, &[entry(3, 1, "never acknowledged")]).unwrap_err();
    assert!(matches!(error, StoreError::Write(_)));
    assert!(error.to_string().contains("poisoned"), "{error}");
    assert!(store.is_poisoned());
    assert_eq!(store.last_index(), 2, "memory never runs ahead of the disk");
    let later = store.persist(None, &[entry(3, 1, "retry")]).unwrap_err();
    assert!(later.to_string().contains("poisoned"), "{later}");
    drop(store);
    disk.crash_losing_unsynced();

    let (_, reopened) = open(&disk);
    let last = reopened.state.entries.last().unwrap();
    assert_eq!(last, &entry(2, 1, "acknowledged"));
}

/// A fresh directory under the system temporary directory, removed when dropped.
struct TemporaryDirectory {
    path: PathBuf,
}

impl TemporaryDirectory {
    fn new(test_name: &str) -> Self {
        let name = format!("tally-raft-store-{}-{test_name}", std::process::id());
        let path = std::env::temp_dir().join(name);
        // A leftover from an earlier run with the same process id would skew the test.
        let _ignored_if_absent = std::fs::remove_dir_all(&path);
        TemporaryDirectory { path }
    }
}

impl Drop for TemporaryDirectory {
    fn drop(&mut self) {
        let _best_effort_cleanup = std::fs::remove_dir_all(&self.path);
    }
}

#[test]
fn batches_round_trip_on_the_real_file_system() {
    let directory = TemporaryDirectory::new("round-trip");
    let open_fs = || {
        let disk = FsDisk::open(&directory.path).unwrap();
        RaftStore::open(disk, identity(), Some(membership()), WalConfig::default()).unwrap()
    };
    let (mut store, recovered) = open_fs();
    assert!(recovered.bootstrapped);
    store.persist(Some(hard_state(2, Some(1), 1)), &[entry(2, 2, "a"), entry(3, 2, "b")]).unwrap();
    store.persist(Some(hard_state(3, Some(3), 2)), &[entry(3, 3, "c")]).unwrap();
    assert!(store.wal().disk().read(crate::raft_store::IDENTITY_PATH).is_ok());
    drop(store);

    let (store, reopened) = open_fs();
    assert!(!reopened.bootstrapped);
    assert_eq!(reopened.state.hard_state, hard_state(3, Some(3), 2));
    assert_eq!(&reopened.state.entries[1..], &[entry(2, 2, "a"), entry(3, 3, "c")]);
    drop(store);
    let other = Identity { cluster_id: "alpha".to_string(), node_id: 2 };
    let disk = FsDisk::open(&directory.path).unwrap();
    assert!(RaftStore::open(disk, other, Some(membership()), WalConfig::default()).is_err());
}

#[test]
fn a_commit_only_hard_state_is_written_without_an_fsync_and_made_durable_by_the_next_batch() {
    let disk = MemDisk::new();
    let (mut store, _) = open(&disk);
    store.persist(Some(hard_state(2, Some(2), 1)), &[entry(2, 2, "a")]).unwrap();
    let syncs = disk.statistics().file_syncs;
    store.record_commit(hard_state(2, Some(2), 2)).unwrap();
    assert_eq!(disk.statistics().file_syncs, syncs, "a commit-only change costs no fsync");
    assert_eq!(store.hard_state(), hard_state(2, Some(2), 1), "not durable yet");

    // Lost in a crash before the next batch: harmless, the commit index promises nothing.
    drop(store);
    disk.crash_losing_unsynced();
    let (mut store, reopened) = open(&disk);
    assert_eq!(reopened.state.hard_state, hard_state(2, Some(2), 1));

    // Made durable by the next batch, even one that carries no hard state of its own.
    store.record_commit(hard_state(2, Some(2), 2)).unwrap();
    store.persist(None, &[entry(3, 2, "b")]).unwrap();
    assert_eq!(store.hard_state(), hard_state(2, Some(2), 2));
    drop(store);
    disk.crash_losing_unsynced();
    let (_, reopened) = open(&disk);
    assert_eq!(reopened.state.hard_state, hard_state(2, Some(2), 2));
    assert_eq!(reopened.state.entries.len(), 3);
}

#[test]
fn a_hard_state_with_a_new_term_or_vote_is_always_synced() {
    let disk = MemDisk::new();
    let (mut store, _) = open(&disk);
    let syncs = disk.statistics().file_syncs;
    store.record_commit(hard_state(5, None, 1)).unwrap();
    assert!(disk.statistics().file_syncs > syncs, "a new term is a promise: synced");
    drop(store);
    disk.crash_losing_unsynced();
    let (_, reopened) = open(&disk);
    assert_eq!(reopened.state.hard_state, hard_state(5, None, 1));
}

#[test]
fn a_joining_node_starts_empty_and_is_not_bootstrapped() {
    let disk = MemDisk::new();
    let (mut store, recovered) = RaftStore::open(disk.clone(), identity(), None, WalConfig::default()).unwrap();
    assert!(!recovered.bootstrapped);
    assert!(recovered.state.entries.is_empty() && recovered.state.snapshot.is_none());
    // What the leader sends it becomes its log, and survives a restart.
    store.persist(Some(hard_state(3, None, 0)), &[entry(1, 1, "config"), entry(2, 3, "a")]).unwrap();
    drop(store);
    let (_, recovered) = RaftStore::open(disk, identity(), None, WalConfig::default()).unwrap();
    assert_eq!(recovered.state.entries.len(), 2);
}
