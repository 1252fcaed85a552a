//! The identity file: refusing another node's data, and finishing an interrupted bootstrap.

use super::*;
use crate::raft_store::identity::{frame, IdentityPayload};
use crate::raft_store::records::{encode_entries, RECORD_TYPE_ENTRIES};
use crate::raft_store::{write_identity, DATA_FORMAT_VERSION, IDENTITY_PATH};
use crate::storage::{Disk, Wal};

#[test]
fn a_directory_of_another_cluster_is_refused_naming_both_identities() {
    let disk = MemDisk::new();
    drop(open(&disk));
    let other = Identity { cluster_id: "beta".to_string(), node_id: 1 };
    let error = open_with(&disk, other, WalConfig::default()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "data directory belongs to cluster \"alpha\" node 1, but this node is cluster \"beta\" node 1"
    );
}

#[test]
fn a_directory_of_another_node_is_refused_before_the_wal_is_touched() {
    let disk = MemDisk::new();
    drop(open(&disk));
    let before = disk.statistics();
    let other = Identity { cluster_id: "alpha".to_string(), node_id: 2 };
    let error = open_with(&disk, other, WalConfig::default()).unwrap_err();
    assert!(matches!(error, StoreError::IdentityMismatch { found_node_id: 1, expected_node_id: 2, .. }));
    assert_eq!(disk.statistics(), before, "refusing writes nothing");
}

#[test]
fn a_wal_without_an_identity_file_is_refused() {
    let disk = MemDisk::new();
    let (mut wal, _) = Wal::open(disk.clone(), WalConfig::default()).unwrap();
    wal.append(1, b"someone's log").unwrap();
    wal.sync().unwrap();
    drop(wal);
    let error = open_with(&disk, identity(), WalConfig::default()).unwrap_err();
    assert!(matches!(error, StoreError::MissingIdentity { .. }), "{error}");
    assert!(error.to_string().contains("no identity file \"identity\""), "{error}");
}

#[test]
fn a_corrupt_identity_file_is_refused() {
    let disk = MemDisk::new();
    drop(open(&disk));
    disk.flip_bit(IDENTITY_PATH, 14, 3);
    let error = open_with(&disk, identity(), WalConfig::default()).unwrap_err();
    assert_eq!(error.to_string(), "corrupt identity file \"identity\": checksum mismatch");
}

#[test]
fn an_identity_of_another_data_format_is_refused() {
    let mut disk = MemDisk::new();
    let payload = IdentityPayload { data_format_version: 99, cluster_id: "alpha".to_string(), node_id: 1 };
    disk.create(IDENTITY_PATH).unwrap();
    disk.append(IDENTITY_PATH, &frame(&postcard::to_allocvec(&payload).unwrap())).unwrap();
    let error = open_with(&disk, identity(), WalConfig::default()).unwrap_err();
    assert!(
        matches!(error, StoreError::UnsupportedFormat { found: 99, supported: DATA_FORMAT_VERSION, .. }),
        "{error}"
    );
}

#[test]
fn a_bootstrap_interrupted_after_the_identity_file_is_completed() {
    let mut disk = MemDisk::new();
    write_identity(&mut disk, &identity()).unwrap();
    let (_, recovered) = open(&disk);
    assert!(recovered.bootstrapped);
    assert_eq!(recovered.state.entries, engine::PersistedState::bootstrap(membership()).entries);
}

#[test]
fn a_bootstrap_torn_before_its_hard_state_record_is_abandoned_and_redone() {
    let mut disk = MemDisk::new();
    write_identity(&mut disk, &identity()).unwrap();
    let bootstrap = engine::PersistedState::bootstrap(membership());
    let (mut wal, _) = Wal::open(disk.clone(), WalConfig::default()).unwrap();
    for payload in encode_entries(&bootstrap.entries, usize::MAX).unwrap() {
        wal.append(RECORD_TYPE_ENTRIES, &payload).unwrap();
    }
    wal.sync().unwrap();
    drop(wal);

    let (store, recovered) = open(&disk);
    assert!(recovered.bootstrapped);
    assert_eq!(recovered.abandoned_records, 1);
    drop(store);
    let (_, reopened) = open(&disk);
    assert!(!reopened.bootstrapped);
    assert_eq!(reopened.abandoned_records, 1, "the abandoned record stays, skipped on every replay");
    assert_eq!(reopened.state.entries, bootstrap.entries);
    assert_eq!(reopened.state.hard_state, bootstrap.hard_state);
}
