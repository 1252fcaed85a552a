//! Snapshots in the store: compaction after the node's own snapshot, installing the leader's
//! snapshot, and recovery from a snapshot plus the log after it, through crashes.

use bytes::Bytes;
use engine::{Snapshot, SnapshotMeta};

use super::*;
use crate::raft_store::write_snapshot_file;
use crate::storage::{load_latest_snapshot, SnapshotFileError};

fn snapshot(index: Index, term: Term, data: &str) -> Snapshot {
    let meta = SnapshotMeta { index, term, membership: membership() };
    Snapshot { meta, data: Bytes::from(data.to_string()) }
}

/// Small segments, so that compaction has whole segments to remove.
fn small_segments() -> WalConfig {
    WalConfig { segment_size_bytes_max: 256, ..WalConfig::default() }
}

/// A store holding entries 2..=`last` of term 1, all committed.
fn store_with_entries(disk: &MemDisk, last: Index) -> RaftStore<MemDisk> {
    let (mut store, _) = open_with(disk, identity(), small_segments()).expect("opens");
    for index in 2..=last {
        store.persist(Some(hard_state(1, None, index)), &[entry(index, 1, "some value")]).expect("persists");
    }
    store
}

#[test]
fn compaction_after_a_snapshot_removes_segments_and_recovery_starts_from_the_snapshot() {
    let disk = MemDisk::new();
    let mut store = store_with_entries(&disk, 40);
    let segments_before = store.wal().segment_paths().len();
    let taken = snapshot(30, 1, "image at 30");
    write_snapshot_file(&mut disk.clone(), &taken).expect("written");
    store.snapshot_saved(&taken.meta, 28).expect("compacted");
    let segments_after = store.wal().segment_paths().len();
    assert!(segments_after < segments_before, "{segments_before} segments, then {segments_after}");
    drop(store);

    let (store, recovered) = open_with(&disk, identity(), small_segments()).expect("reopens");
    assert_eq!(recovered.state.snapshot, Some(taken));
    assert_eq!(recovered.state.applied_index, 30);
    let indexes: Vec<Index> = recovered.state.entries.iter().map(|entry| entry.index).collect();
    assert_eq!(indexes, (31..=40).collect::<Vec<_>>(), "the log after the snapshot, nothing before");
    assert_eq!(recovered.state.hard_state, hard_state(1, None, 40));
    assert!(!recovered.bootstrapped);
    assert_eq!(store.last_index(), 40);
}

#[test]
fn an_installed_snapshot_replaces_a_conflicting_log_and_survives_a_restart() {
    let disk = MemDisk::new();
    let mut store = store_with_entries(&disk, 5);
    // Uncommitted entries of term 2 that the new leader's snapshot does not hold.
    store.persist(Some(hard_state(3, None, 5)), &[entry(6, 2, "lost"), entry(7, 2, "lost")]).expect("persists");
    let leaders = snapshot(9, 3, "leader image at 9");
    store.install_snapshot(&leaders, true).expect("installed");
    store.persist(Some(hard_state(3, None, 10)), &[entry(10, 3, "after")]).expect("the log goes on after it");
    drop(store);

    let (_, recovered) = open(&disk);
    assert_eq!(recovered.state.snapshot, Some(leaders));
    assert_eq!(recovered.state.entries, vec![entry(10, 3, "after")]);
    assert_eq!(recovered.state.hard_state, hard_state(3, None, 10));
}

#[test]
fn an_installed_snapshot_keeps_the_entries_after_it_when_the_log_holds_its_last_entry() {
    let disk = MemDisk::new();
    let mut store = store_with_entries(&disk, 8);
    store.install_snapshot(&snapshot(6, 1, "image at 6"), true).expect("installed");
    drop(store);
    let (_, recovered) = open(&disk);
    let indexes: Vec<Index> = recovered.state.entries.iter().map(|entry| entry.index).collect();
    assert_eq!(indexes, vec![7, 8]);
}

#[test]
fn a_crash_between_the_snapshot_file_and_its_record_recovers_the_snapshot_and_no_stale_log() {
    let disk = MemDisk::new();
    let mut store = store_with_entries(&disk, 5);
    store.persist(Some(hard_state(2, None, 5)), &[entry(6, 2, "stale")]).expect("persists");
    // The leader of term 3 is heard from (the term change is durable first, as the driver
    // persists a Ready before installing its snapshot); the snapshot file is durable; the
    // node dies before it writes the snapshot record.
    store.persist(Some(hard_state(3, None, 5)), &[]).expect("persists");
    write_snapshot_file(&mut disk.clone(), &snapshot(9, 3, "leader image")).expect("written");
    drop(store);
    disk.crash_losing_unsynced();

    let (mut store, recovered) = open(&disk);
    assert_eq!(recovered.state.snapshot.map(|snapshot| snapshot.meta.index), Some(9));
    assert!(recovered.state.entries.is_empty(), "the stale entry 6 of term 2 must not come back");
    store.persist(Some(hard_state(3, None, 10)), &[entry(10, 3, "next")]).expect("the log goes on after it");
    drop(store);
    disk.crash_losing_unsynced();
    let (_, recovered) = open(&disk);
    assert_eq!(recovered.state.entries, vec![entry(10, 3, "next")]);
}

#[test]
fn a_damaged_snapshot_stops_the_node_with_the_file_named() {
    let disk = MemDisk::new();
    let mut store = store_with_entries(&disk, 10);
    let taken = snapshot(10, 1, "image at 10");
    write_snapshot_file(&mut disk.clone(), &taken).expect("written");
    store.snapshot_saved(&taken.meta, 11).expect("compacted");
    drop(store);
    let stored = load_latest_snapshot(&disk).expect("reads").expect("present");
    assert_eq!(stored.index, 10);
    let path = crate::storage::snapshot_file::snapshot_path(10, 1);
    disk.flip_bit(&path, 50, 3);
    match open_with(&disk, identity(), small_segments()) {
        Err(StoreError::Snapshot(SnapshotFileError::Corrupt { path: named, .. })) => assert_eq!(named, path),
        other => panic!("expected a corrupt snapshot error, got {other:?}"),
    }
}

#[test]
fn an_older_snapshot_reported_after_an_install_is_ignored() {
    let disk = MemDisk::new();
    let mut store = store_with_entries(&disk, 5);
    store.persist(Some(hard_state(2, None, 5)), &[]).expect("persists");
    store.install_snapshot(&snapshot(9, 2, "leader"), false).expect("installed");
    let older = snapshot(4, 1, "own, older");
    write_snapshot_file(&mut disk.clone(), &older).expect("written");
    store.snapshot_saved(&older.meta, 3).expect("ignored");
    drop(store);
    let (_, recovered) = open(&disk);
    assert_eq!(recovered.state.snapshot.map(|snapshot| snapshot.meta.index), Some(9));
}

/// Found by the simulator (a joined node restarted after an fsync failure refused to start):
/// the WAL's first hard state records predate the snapshot the replay starts from, and their
/// terms are below the snapshot's. That is no defect.
#[test]
fn a_joined_node_whose_wal_begins_before_its_snapshot_recovers() {
    let disk = MemDisk::new();
    let (mut store, _) = RaftStore::open(disk.clone(), identity(), None, WalConfig::default()).unwrap();
    store.persist(Some(hard_state(2, None, 0)), &[]).expect("the first leader's term");
    store.persist(Some(hard_state(5, None, 0)), &[]).expect("a later leader's term");
    store.install_snapshot(&snapshot(579, 5, "the leader's image"), true).expect("installed");
    store.persist(Some(hard_state(5, None, 580)), &[entry(580, 5, "next")]).expect("the log goes on");
    drop(store);
    disk.crash_losing_unsynced();
    let (_, recovered) = RaftStore::open(disk, identity(), None, WalConfig::default()).expect("recovers");
    assert_eq!(recovered.state.snapshot.map(|snapshot| snapshot.meta.index), Some(579));
    assert_eq!(recovered.state.entries, vec![entry(580, 5, "next")]);
}
