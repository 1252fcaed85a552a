//! The [`Disk`] trait: the few file operations durable storage needs.
//!
//! Files are named by relative paths with `/` separators inside one data directory
//! (`"hard_state"`, `"wal/00000000000000000001.log"`). The root directory is `""`.
//! Two implementations exist: [`FsDisk`](super::FsDisk) on the real file system, and
//! [`MemDisk`](super::MemDisk), an in-memory disk for the simulator that loses unsynced
//! writes on a crash and injects faults.
//!
//! Durability contract, shared by both implementations and relied on by the WAL and the
//! hard state file:
//! - bytes appended to a file are durable only after [`Disk::sync`] of that file returns;
//! - a name created, renamed or removed is durable only after [`Disk::sync_directory`] of
//!   the directory holding it returns;
//! - an error from either sync means the state on disk is unknown; the caller must stop
//!   using what it wrote and never retry the sync as if nothing happened.

use std::fmt;
use std::io;

/// Storage operations on files named by relative path inside one data directory.
///
/// Mutating methods take `&mut self` so an implementation may cache open file handles.
pub trait Disk {
    /// Creates the directory `path` (and its missing parents) if it does not exist, and
    /// makes its name durable.
    fn create_directory(&mut self, path: &str) -> Result<(), DiskError>;

    /// Creates the file `path`, or truncates it to empty if it exists. The name is durable
    /// only after [`Disk::sync_directory`] of its parent.
    fn create(&mut self, path: &str) -> Result<(), DiskError>;

    /// Appends `bytes` at the end of the existing file `path`. On a full disk this fails
    /// with [`DiskErrorKind::StorageFull`], possibly after writing a prefix of `bytes`.
    fn append(&mut self, path: &str, bytes: &[u8]) -> Result<(), DiskError>;

    /// Makes the content and length of the file `path` durable (fsync).
    fn sync(&mut self, path: &str) -> Result<(), DiskError>;

    /// Makes the names in `directory` durable (fsync of the directory). `""` is the root.
    fn sync_directory(&mut self, directory: &str) -> Result<(), DiskError>;

    /// Reads the whole file `path`.
    fn read(&self, path: &str) -> Result<Vec<u8>, DiskError>;

    /// Reads `length_bytes` bytes of `path` starting at `offset_bytes`; fails if the file
    /// is shorter than `offset_bytes + length_bytes`.
    fn read_range(&self, path: &str, offset_bytes: u64, length_bytes: u64) -> Result<Vec<u8>, DiskError>;

    /// Sets the length of the file `path`, dropping bytes past `length_bytes` (or
    /// extending with zeros). Durable only after [`Disk::sync`].
    fn truncate(&mut self, path: &str, length_bytes: u64) -> Result<(), DiskError>;

    /// Renames `from` to `to`, atomically replacing `to` if it exists. Durable only after
    /// [`Disk::sync_directory`].
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError>;

    /// Removes the file `path`. Durable only after [`Disk::sync_directory`].
    fn remove(&mut self, path: &str) -> Result<(), DiskError>;

    /// Lists the names (not paths) of the regular files directly inside `directory`,
    /// sorted.
    fn list(&self, directory: &str) -> Result<Vec<String>, DiskError>;

    /// Returns the current length of the file `path`.
    fn length(&self, path: &str) -> Result<u64, DiskError>;
}

/// Which [`Disk`] operation failed, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskOperation {
    /// [`Disk::create_directory`].
    CreateDirectory,
    /// [`Disk::create`].
    Create,
    /// [`Disk::append`].
    Append,
    /// [`Disk::sync`].
    Sync,
    /// [`Disk::sync_directory`].
    SyncDirectory,
    /// [`Disk::read`] or [`Disk::read_range`].
    Read,
    /// [`Disk::truncate`].
    Truncate,
    /// [`Disk::rename`].
    Rename,
    /// [`Disk::remove`].
    Remove,
    /// [`Disk::list`].
    List,
    /// [`Disk::length`].
    Length,
}

impl fmt::Display for DiskOperation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self {
            DiskOperation::CreateDirectory => "create directory",
            DiskOperation::Create => "create",
            DiskOperation::Append => "append to",
            DiskOperation::Sync => "sync",
            DiskOperation::SyncDirectory => "sync directory",
            DiskOperation::Read => "read",
            DiskOperation::Truncate => "truncate",
            DiskOperation::Rename => "rename",
            DiskOperation::Remove => "remove",
            DiskOperation::List => "list",
            DiskOperation::Length => "get length of",
        };
        formatter.write_str(verb)
    }
}

/// The class of a [`DiskError`], for callers that react differently to each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskErrorKind {
    /// The file or directory does not exist.
    NotFound,
    /// The disk is full (ENOSPC).
    StorageFull,
    /// Anything else, including I/O errors from a sync.
    Other,
}

/// A failed [`Disk`] operation, naming the operation and the path.
#[derive(Debug, thiserror::Error)]
#[error("{operation} {path:?}: {source}")]
pub struct DiskError {
    /// The operation that failed.
    pub operation: DiskOperation,
    /// The relative path it acted on (`"from -> to"` for a rename).
    pub path: String,
    /// The class of the failure.
    pub kind: DiskErrorKind,
    /// The underlying error.
    pub source: io::Error,
}

/// `ENOSPC` on Linux and macOS; `std::io::ErrorKind::StorageFull` needs Rust 1.83, newer
/// than this workspace's minimum.
const ERROR_CODE_NO_SPACE: i32 = 28;

impl DiskError {
    /// Wraps an error from the operating system, classifying it by its error code.
    pub fn from_io(operation: DiskOperation, path: &str, source: io::Error) -> Self {
        let kind = if source.kind() == io::ErrorKind::NotFound {
            DiskErrorKind::NotFound
        } else if source.raw_os_error() == Some(ERROR_CODE_NO_SPACE) {
            DiskErrorKind::StorageFull
        } else {
            DiskErrorKind::Other
        };
        DiskError { operation, path: path.to_string(), kind, source }
    }

    /// Builds an error of a known kind with a message, for simulated disks.
    pub fn new(operation: DiskOperation, path: &str, kind: DiskErrorKind, message: &str) -> Self {
        let io_kind = match kind {
            DiskErrorKind::NotFound => io::ErrorKind::NotFound,
            DiskErrorKind::StorageFull | DiskErrorKind::Other => io::ErrorKind::Other,
        };
        DiskError { operation, path: path.to_string(), kind, source: io::Error::new(io_kind, message.to_string()) }
    }

    /// True if the file or directory does not exist.
    pub fn is_not_found(&self) -> bool {
        self.kind == DiskErrorKind::NotFound
    }

    /// True if the disk is full.
    pub fn is_storage_full(&self) -> bool {
        self.kind == DiskErrorKind::StorageFull
    }
}

/// Returns the directory part of a relative path: `"wal"` for `"wal/1.log"`, `""` for
/// `"hard_state"`.
pub fn parent_directory(path: &str) -> &str {
    match path.rfind('/') {
        Some(position) => &path[..position],
        None => "",
    }
}

/// Joins a directory and a name into a relative path.
pub fn join_path(directory: &str, name: &str) -> String {
    if directory.is_empty() {
        name.to_string()
    } else {
        format!("{directory}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_directory_of_nested_and_root_paths() {
        assert_eq!(parent_directory("wal/00000000000000000001.log"), "wal");
        assert_eq!(parent_directory("a/b/c"), "a/b");
        assert_eq!(parent_directory("hard_state"), "");
    }

    #[test]
    fn join_path_round_trips_with_parent_directory() {
        assert_eq!(join_path("", "hard_state"), "hard_state");
        assert_eq!(join_path("wal", "1.log"), "wal/1.log");
        assert_eq!(parent_directory(&join_path("wal", "1.log")), "wal");
    }

    #[test]
    fn operating_system_no_space_error_is_storage_full() {
        let error =
            DiskError::from_io(DiskOperation::Append, "wal/1.log", io::Error::from_raw_os_error(ERROR_CODE_NO_SPACE));
        assert!(error.is_storage_full());
        assert!(error.to_string().starts_with("append to \"wal/1.log\": "));
    }
}
