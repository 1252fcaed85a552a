//! [`FsDisk`] on a real temporary directory, alone and under the WAL and hard state.

use std::path::PathBuf;

use crate::storage::record::framed_size_bytes;
use crate::storage::{read_hard_state, write_hard_state, Disk, FsDisk, Wal, WalConfig};

/// A fresh directory under the system temporary directory, removed when dropped.
struct TemporaryDirectory {
    path: PathBuf,
}

impl TemporaryDirectory {
    fn new(test_name: &str) -> Self {
        let name = format!("tally-storage-{}-{test_name}", std::process::id());
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
fn file_operations_round_trip_on_the_real_file_system() {
    let directory = TemporaryDirectory::new("operations");
    let mut disk = FsDisk::open(&directory.path).unwrap();
    disk.create_directory("nested/deeper").unwrap();
    disk.create("nested/a").unwrap();
    disk.append("nested/a", b"hello ").unwrap();
    disk.append("nested/a", b"world").unwrap();
    disk.sync("nested/a").unwrap();
    disk.sync_directory("nested").unwrap();
    assert_eq!(disk.read("nested/a").unwrap(), b"hello world");
    assert_eq!(disk.read_range("nested/a", 6, 5).unwrap(), b"world");
    assert!(disk.read_range("nested/a", 8, 5).is_err());
    assert_eq!(disk.length("nested/a").unwrap(), 11);

    disk.truncate("nested/a", 5).unwrap();
    disk.append("nested/a", b"!").unwrap();
    assert_eq!(disk.read("nested/a").unwrap(), b"hello!");

    disk.create("nested/b").unwrap();
    disk.append("nested/b", b"replacement").unwrap();
    disk.rename("nested/b", "nested/a").unwrap();
    disk.append("nested/a", b".").unwrap();
    assert_eq!(disk.read("nested/a").unwrap(), b"replacement.");
    assert_eq!(disk.list("nested").unwrap(), vec!["a".to_string()], "directories are not files");

    disk.create("nested/a").unwrap();
    assert_eq!(disk.length("nested/a").unwrap(), 0, "create truncates");
    disk.remove("nested/a").unwrap();
    assert!(disk.read("nested/a").unwrap_err().is_not_found());
    assert!(disk.remove("nested/a").unwrap_err().is_not_found());
}

#[test]
fn paths_that_escape_the_data_directory_are_refused() {
    let directory = TemporaryDirectory::new("escape");
    let mut disk = FsDisk::open(&directory.path).unwrap();
    assert!(disk.create("../outside").is_err());
    assert!(disk.create("/tmp/absolute").is_err());
    assert!(disk.read("a/../../outside").is_err());
}

#[test]
fn the_wal_and_hard_state_recover_from_the_real_file_system() {
    let directory = TemporaryDirectory::new("wal");
    let config = WalConfig { segment_size_bytes_max: 80, ..WalConfig::default() };
    let (mut wal, recovery) = Wal::open(FsDisk::open(&directory.path).unwrap(), config.clone()).unwrap();
    assert!(recovery.records.is_empty());
    for index in 0..10u8 {
        wal.append(1 + index % 3, &[index; 25]).unwrap();
    }
    wal.sync().unwrap();
    let segments = wal.segment_paths();
    assert!(segments.len() > 1, "{segments:?}");
    let mut disk = wal.into_disk();
    write_hard_state(&mut disk, b"term 3").unwrap();

    // Tear the last record in half, as a crash mid-write would.
    let last = segments.last().unwrap();
    let length = disk.length(last).unwrap();
    disk.truncate(last, length - framed_size_bytes(25) as u64 / 2).unwrap();

    let reopened = FsDisk::open(&directory.path).unwrap();
    assert_eq!(read_hard_state(&reopened).unwrap(), Some(b"term 3".to_vec()));
    let (_, recovery) = Wal::open(reopened, config).unwrap();
    let recovered: Vec<(u64, u8, Vec<u8>)> =
        recovery.records.iter().map(|record| (record.sequence, record.record_type, record.payload.to_vec())).collect();
    let expected: Vec<(u64, u8, Vec<u8>)> =
        (0..9u8).map(|index| (u64::from(index) + 1, 1 + index % 3, vec![index; 25])).collect();
    assert_eq!(recovered, expected);
    let torn = recovery.torn_tail.expect("torn record reported");
    assert_eq!(&torn.path, last);
    assert_eq!(torn.bytes_dropped, framed_size_bytes(25) as u64 - framed_size_bytes(25) as u64 / 2);
}
