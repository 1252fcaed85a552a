//! A disk that stops working after a number of mutating operations, to crash an atomic
//! file replacement (hard state, snapshot) at every step.

use crate::storage::disk::{Disk, DiskError, DiskErrorKind, DiskOperation};
use crate::storage::MemDisk;

/// Fails every mutating operation after the first `operations_left`; reads always work.
#[derive(Debug)]
pub(super) struct StoppingDisk {
    pub(super) inner: MemDisk,
    pub(super) operations_left: usize,
}

impl StoppingDisk {
    fn step(&mut self, operation: DiskOperation) -> Result<(), DiskError> {
        if self.operations_left == 0 {
            return Err(DiskError::new(operation, "", DiskErrorKind::Other, "crashed"));
        }
        self.operations_left -= 1;
        Ok(())
    }
}

impl Disk for StoppingDisk {
    fn create_directory(&mut self, path: &str) -> Result<(), DiskError> {
        self.step(DiskOperation::CreateDirectory)?;
        self.inner.create_directory(path)
    }
    fn create(&mut self, path: &str) -> Result<(), DiskError> {
        self.step(DiskOperation::Create)?;
        self.inner.create(path)
    }
    fn append(&mut self, path: &str, bytes: &[u8]) -> Result<(), DiskError> {
        self.step(DiskOperation::Append)?;
        self.inner.append(path, bytes)
    }
    fn sync(&mut self, path: &str) -> Result<(), DiskError> {
        self.step(DiskOperation::Sync)?;
        self.inner.sync(path)
    }
    fn sync_directory(&mut self, directory: &str) -> Result<(), DiskError> {
        self.step(DiskOperation::SyncDirectory)?;
        self.inner.sync_directory(directory)
    }
    fn read(&self, path: &str) -> Result<Vec<u8>, DiskError> {
        self.inner.read(path)
    }
    fn read_range(&self, path: &str, offset: u64, length: u64) -> Result<Vec<u8>, DiskError> {
        self.inner.read_range(path, offset, length)
    }
    fn truncate(&mut self, path: &str, length_bytes: u64) -> Result<(), DiskError> {
        self.step(DiskOperation::Truncate)?;
        self.inner.truncate(path, length_bytes)
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        self.step(DiskOperation::Rename)?;
        self.inner.rename(from, to)
    }
    fn remove(&mut self, path: &str) -> Result<(), DiskError> {
        self.step(DiskOperation::Remove)?;
        self.inner.remove(path)
    }
    fn list(&self, directory: &str) -> Result<Vec<String>, DiskError> {
        self.inner.list(directory)
    }
    fn length(&self, path: &str) -> Result<u64, DiskError> {
        self.inner.length(path)
    }
}
