//! The identity file: which cluster and node a data directory belongs to, and the data
//! format it was written in, so a node never adopts another node's log.
//!
//! ```text
//! offset  size  field
//! 0       8     magic "TALLYIDN"
//! 8       4     payload length in bytes, u32 little-endian
//! 12      n     payload: postcard IdentityPayload { data_format_version: u32, cluster_id: String, node_id: u64 }
//! 12+n    4     CRC32C of bytes 0..12+n, u32 little-endian
//! ```
//!
//! It is replaced atomically as the hard state file is (see
//! [`storage::hard_state`](crate::storage::hard_state)): write `identity.tmp`, fsync,
//! rename over `identity`, fsync the directory. It is written once, before the WAL
//! exists, so a WAL without an identity file is never the result of a crash.

use engine::NodeId;
use serde::{Deserialize, Serialize};

use super::error::StoreError;
use crate::storage::segment::{parse_segment_name, WAL_DIRECTORY};
use crate::storage::Disk;

/// The identity file, relative to the data directory.
pub const IDENTITY_PATH: &str = "identity";

/// Where a new identity file is written before it is renamed into place.
const IDENTITY_TEMPORARY_PATH: &str = "identity.tmp";

/// The layout of the identity file and of the Raft store's WAL records. A build refuses a
/// data directory with another version rather than misreading it.
/// Version 2: memberships carry learners, joint voters and member metadata; snapshot records.
pub const DATA_FORMAT_VERSION: u32 = 2;

const IDENTITY_MAGIC: [u8; 8] = *b"TALLYIDN";
const IDENTITY_HEADER_SIZE_BYTES: usize = 12;
const IDENTITY_CHECKSUM_SIZE_BYTES: usize = 4;

/// Which node of which cluster a data directory belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The cluster's name, shared by all its nodes.
    pub cluster_id: String,
    /// This node's id in the cluster (never 0).
    pub node_id: NodeId,
}

/// The identity file's payload.
#[derive(Serialize, Deserialize)]
pub(super) struct IdentityPayload {
    pub(super) data_format_version: u32,
    pub(super) cluster_id: String,
    pub(super) node_id: NodeId,
}

/// Makes sure the data directory belongs to `expected`: checks the identity file if there
/// is one, or writes it durably into a directory that holds no WAL yet.
pub(super) fn establish_identity<D: Disk>(disk: &mut D, expected: &Identity) -> Result<(), StoreError> {
    match read_identity(disk)? {
        Some(found) => check_identity(&found, expected),
        None => {
            if wal_exists(disk)? {
                return Err(StoreError::MissingIdentity { path: IDENTITY_PATH.to_string() });
            }
            write_identity(disk, expected)
        }
    }
}

fn check_identity(found: &Identity, expected: &Identity) -> Result<(), StoreError> {
    if found == expected {
        return Ok(());
    }
    Err(StoreError::IdentityMismatch {
        found_cluster_id: found.cluster_id.clone(),
        found_node_id: found.node_id,
        expected_cluster_id: expected.cluster_id.clone(),
        expected_node_id: expected.node_id,
    })
}

fn wal_exists<D: Disk>(disk: &D) -> Result<bool, StoreError> {
    match disk.list(WAL_DIRECTORY) {
        Ok(names) => Ok(names.iter().any(|name| parse_segment_name(name).is_some())),
        Err(error) if error.is_not_found() => Ok(false),
        Err(error) => Err(error.into()),
    }
}

/// Reads the identity file: `None` if there is none.
pub fn read_identity<D: Disk>(disk: &D) -> Result<Option<Identity>, StoreError> {
    let bytes = match disk.read(IDENTITY_PATH) {
        Ok(bytes) => bytes,
        Err(error) if error.is_not_found() => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let payload = unframe(&bytes).map_err(corrupt)?;
    let decoded: IdentityPayload = postcard::from_bytes(payload).map_err(|error| corrupt(&error.to_string()))?;
    if decoded.data_format_version != DATA_FORMAT_VERSION {
        let (found, supported) = (decoded.data_format_version, DATA_FORMAT_VERSION);
        return Err(StoreError::UnsupportedFormat { path: IDENTITY_PATH.to_string(), found, supported });
    }
    Ok(Some(Identity { cluster_id: decoded.cluster_id, node_id: decoded.node_id }))
}

/// Writes the identity file atomically and durably.
pub fn write_identity<D: Disk>(disk: &mut D, identity: &Identity) -> Result<(), StoreError> {
    let payload = IdentityPayload {
        data_format_version: DATA_FORMAT_VERSION,
        cluster_id: identity.cluster_id.clone(),
        node_id: identity.node_id,
    };
    let payload = postcard::to_allocvec(&payload).expect("an identity always serializes into a Vec");
    replace_atomically(disk, IDENTITY_PATH, IDENTITY_TEMPORARY_PATH, &frame(&payload))
}

/// Replaces `path` with `bytes` so that a crash leaves the old content or the new, never a
/// mix: the data is durable before the rename makes it visible, and the rename is durable
/// before this returns.
fn replace_atomically<D: Disk>(disk: &mut D, path: &str, temporary_path: &str, bytes: &[u8]) -> Result<(), StoreError> {
    disk.create(temporary_path)?;
    disk.append(temporary_path, bytes)?;
    disk.sync(temporary_path)?;
    disk.rename(temporary_path, path)?;
    disk.sync_directory(crate::storage::disk::parent_directory(path))?;
    Ok(())
}

/// Frames a payload as the identity file's content.
pub(super) fn frame(payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).expect("an identity is a few bytes");
    let mut bytes = Vec::with_capacity(IDENTITY_HEADER_SIZE_BYTES + payload.len() + IDENTITY_CHECKSUM_SIZE_BYTES);
    bytes.extend_from_slice(&IDENTITY_MAGIC);
    bytes.extend_from_slice(&length.to_le_bytes());
    bytes.extend_from_slice(payload);
    let checksum = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());
    bytes
}

fn unframe(bytes: &[u8]) -> Result<&[u8], &'static str> {
    if bytes.len() < IDENTITY_HEADER_SIZE_BYTES + IDENTITY_CHECKSUM_SIZE_BYTES {
        return Err("shorter than the header and checksum");
    }
    let (body, stored) = bytes.split_at(bytes.len() - IDENTITY_CHECKSUM_SIZE_BYTES);
    let stored = u32::from_le_bytes(stored.try_into().expect("four bytes"));
    if stored != crc32c::crc32c(body) {
        return Err("checksum mismatch");
    }
    if body[..8] != IDENTITY_MAGIC {
        return Err("bad magic number");
    }
    let length = u32::from_le_bytes(body[8..12].try_into().expect("four bytes"));
    let payload = &body[IDENTITY_HEADER_SIZE_BYTES..];
    if payload.len() != length as usize {
        return Err("payload length disagrees with the file length");
    }
    Ok(payload)
}

fn corrupt(reason: &str) -> StoreError {
    StoreError::CorruptIdentity { path: IDENTITY_PATH.to_string(), reason: reason.to_string() }
}
