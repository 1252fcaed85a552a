//! [`FsDisk`]: the [`Disk`] trait on the real file system, rooted at one data directory.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};

use super::disk::{parent_directory, Disk, DiskError, DiskOperation};

/// A [`Disk`] on the real file system. Relative paths resolve under `root`; paths that
/// would escape it (absolute, `..`) are refused.
///
/// Append handles are cached per path so a batch of appends costs one `open`.
#[derive(Debug)]
pub struct FsDisk {
    root: PathBuf,
    append_handles: BTreeMap<String, File>,
}

/// Another handle on the same directory, e.g. for writing a snapshot file from another task
/// while the WAL goes on through this one. Append handles are a per-handle cache.
impl Clone for FsDisk {
    fn clone(&self) -> Self {
        FsDisk { root: self.root.clone(), append_handles: BTreeMap::new() }
    }
}

impl FsDisk {
    /// Opens (creating if missing) the data directory `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, DiskError> {
        let root = root.into();
        fs::create_dir_all(&root)
            .map_err(|error| DiskError::from_io(DiskOperation::CreateDirectory, &root.display().to_string(), error))?;
        Ok(FsDisk { root, append_handles: BTreeMap::new() })
    }

    /// The data directory this disk is rooted at.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves a relative path, refusing anything that is not a plain relative path.
    fn resolve(&self, operation: DiskOperation, path: &str) -> Result<PathBuf, DiskError> {
        let relative = Path::new(path);
        // The root itself is `""`, which has no components and so passes.
        let plain = relative.components().all(|component| matches!(component, Component::Normal(_)));
        if !plain {
            let error = io::Error::new(io::ErrorKind::InvalidInput, "not a plain relative path");
            return Err(DiskError::from_io(operation, path, error));
        }
        Ok(self.root.join(relative))
    }

    fn append_handle(&mut self, path: &str) -> Result<&mut File, DiskError> {
        if !self.append_handles.contains_key(path) {
            let full_path = self.resolve(DiskOperation::Append, path)?;
            let file = OpenOptions::new()
                .append(true)
                .open(full_path)
                .map_err(|error| DiskError::from_io(DiskOperation::Append, path, error))?;
            self.append_handles.insert(path.to_string(), file);
        }
        Ok(self.append_handles.get_mut(path).expect("handle inserted above"))
    }
}

impl Disk for FsDisk {
    fn create_directory(&mut self, path: &str) -> Result<(), DiskError> {
        let operation = DiskOperation::CreateDirectory;
        let full_path = self.resolve(operation, path)?;
        fs::create_dir_all(full_path).map_err(|error| DiskError::from_io(operation, path, error))?;
        // Each new directory entry lives in its parent, so every ancestor (from the root
        // down to the parent of `path`) needs a sync for the whole chain to be durable.
        let mut directory = path;
        while !directory.is_empty() {
            directory = parent_directory(directory);
            self.sync_directory(directory)?;
        }
        Ok(())
    }

    fn create(&mut self, path: &str) -> Result<(), DiskError> {
        let full_path = self.resolve(DiskOperation::Create, path)?;
        // A cached append handle still points at the old content's inode if the file was
        // replaced; drop it so the next append opens the new file.
        self.append_handles.remove(path);
        File::create(full_path).map_err(|error| DiskError::from_io(DiskOperation::Create, path, error))?;
        Ok(())
    }

    fn append(&mut self, path: &str, bytes: &[u8]) -> Result<(), DiskError> {
        let file = self.append_handle(path)?;
        file.write_all(bytes).map_err(|error| DiskError::from_io(DiskOperation::Append, path, error))
    }

    fn sync(&mut self, path: &str) -> Result<(), DiskError> {
        // `sync_data` also flushes the file length, which is the only metadata a reader of
        // an appended or truncated file needs.
        if let Some(file) = self.append_handles.get(path) {
            return file.sync_data().map_err(|error| DiskError::from_io(DiskOperation::Sync, path, error));
        }
        let full_path = self.resolve(DiskOperation::Sync, path)?;
        File::open(full_path)
            .and_then(|file| file.sync_data())
            .map_err(|error| DiskError::from_io(DiskOperation::Sync, path, error))
    }

    fn sync_directory(&mut self, directory: &str) -> Result<(), DiskError> {
        let operation = DiskOperation::SyncDirectory;
        let full_path = self.resolve(operation, directory)?;
        File::open(full_path)
            .and_then(|handle| handle.sync_all())
            .map_err(|error| DiskError::from_io(operation, directory, error))
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, DiskError> {
        let full_path = self.resolve(DiskOperation::Read, path)?;
        fs::read(full_path).map_err(|error| DiskError::from_io(DiskOperation::Read, path, error))
    }

    fn read_range(&self, path: &str, offset_bytes: u64, length_bytes: u64) -> Result<Vec<u8>, DiskError> {
        let full_path = self.resolve(DiskOperation::Read, path)?;
        let read = || -> io::Result<Vec<u8>> {
            let mut file = File::open(full_path)?;
            file.seek(SeekFrom::Start(offset_bytes))?;
            let length = usize::try_from(length_bytes)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "range too long"))?;
            let mut bytes = vec![0; length];
            file.read_exact(&mut bytes)?;
            Ok(bytes)
        };
        read().map_err(|error| DiskError::from_io(DiskOperation::Read, path, error))
    }

    fn truncate(&mut self, path: &str, length_bytes: u64) -> Result<(), DiskError> {
        let full_path = self.resolve(DiskOperation::Truncate, path)?;
        OpenOptions::new()
            .write(true)
            .open(full_path)
            .and_then(|file| file.set_len(length_bytes))
            .map_err(|error| DiskError::from_io(DiskOperation::Truncate, path, error))
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        let both = format!("{from} -> {to}");
        let from_path = self.resolve(DiskOperation::Rename, from)?;
        let to_path = self.resolve(DiskOperation::Rename, to)?;
        self.append_handles.remove(from);
        self.append_handles.remove(to);
        fs::rename(from_path, to_path).map_err(|error| DiskError::from_io(DiskOperation::Rename, &both, error))
    }

    fn remove(&mut self, path: &str) -> Result<(), DiskError> {
        let full_path = self.resolve(DiskOperation::Remove, path)?;
        self.append_handles.remove(path);
        fs::remove_file(full_path).map_err(|error| DiskError::from_io(DiskOperation::Remove, path, error))
    }

    fn list(&self, directory: &str) -> Result<Vec<String>, DiskError> {
        let full_path = self.resolve(DiskOperation::List, directory)?;
        let list = || -> io::Result<Vec<String>> {
            let mut names = Vec::new();
            for entry in fs::read_dir(full_path)? {
                let entry = entry?;
                if entry.file_type()?.is_file() {
                    // Names that are not UTF-8 cannot be ours; skip them rather than fail.
                    if let Ok(name) = entry.file_name().into_string() {
                        names.push(name);
                    }
                }
            }
            names.sort();
            Ok(names)
        };
        list().map_err(|error| DiskError::from_io(DiskOperation::List, directory, error))
    }

    fn length(&self, path: &str) -> Result<u64, DiskError> {
        let full_path = self.resolve(DiskOperation::Length, path)?;
        fs::metadata(full_path)
            .map(|metadata| metadata.len())
            .map_err(|error| DiskError::from_io(DiskOperation::Length, path, error))
    }
}
