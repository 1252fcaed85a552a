//! The hard state file: a small blob (the caller's postcard-encoded Raft hard state:
//! term, vote, commit) replaced atomically.
//!
//! ```text
//! offset  size  field
//! 0       8     magic "TALLYHST"
//! 8       4     format version, u32 little-endian (1)
//! 12      4     payload length in bytes, u32 little-endian
//! 16      n     payload
//! 16+n    4     CRC32C of bytes 0..16+n, u32 little-endian
//! ```
//!
//! A write goes to `hard_state.tmp`, is fsynced, renamed over `hard_state`, and the
//! directory is fsynced. A crash at any point leaves either the old file or the new one
//! under the name `hard_state`, never a mix: the rename is the commit point, and the data
//! it points to was durable before it.

use super::disk::{Disk, DiskError};

/// The hard state file, relative to the data directory.
pub const HARD_STATE_PATH: &str = "hard_state";

/// Where a new hard state is written before it replaces the old one. A leftover from a
/// crash is ignored and overwritten by the next write.
pub const HARD_STATE_TEMPORARY_PATH: &str = "hard_state.tmp";

const HARD_STATE_MAGIC: [u8; 8] = *b"TALLYHST";
const HARD_STATE_FORMAT_VERSION: u32 = 1;
const HARD_STATE_HEADER_SIZE_BYTES: usize = 16;
const HARD_STATE_CHECKSUM_SIZE_BYTES: usize = 4;

/// Why the hard state could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum HardStateError {
    /// The disk failed. After a failed write the caller must treat the failure as fatal,
    /// like a failed WAL sync: whether the new state is durable is unknown.
    #[error("hard state: {0}")]
    Disk(#[from] DiskError),
    /// The file exists but is damaged; the node must not start from it.
    #[error("corrupt hard state file {path}: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The payload does not fit the format.
    #[error("hard state payload of {length_bytes} bytes is too large")]
    PayloadTooLarge {
        /// The payload's length.
        length_bytes: usize,
    },
}

/// Encodes `payload` in the hard state file format.
fn encode(payload: &[u8]) -> Result<Vec<u8>, HardStateError> {
    let length =
        u32::try_from(payload.len()).map_err(|_| HardStateError::PayloadTooLarge { length_bytes: payload.len() })?;
    let mut bytes = Vec::with_capacity(HARD_STATE_HEADER_SIZE_BYTES + payload.len() + HARD_STATE_CHECKSUM_SIZE_BYTES);
    bytes.extend_from_slice(&HARD_STATE_MAGIC);
    bytes.extend_from_slice(&HARD_STATE_FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&length.to_le_bytes());
    bytes.extend_from_slice(payload);
    let checksum = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());
    Ok(bytes)
}

/// Decodes the file content, returning the payload or what is wrong with it.
fn decode(bytes: &[u8]) -> Result<&[u8], &'static str> {
    let minimum = HARD_STATE_HEADER_SIZE_BYTES + HARD_STATE_CHECKSUM_SIZE_BYTES;
    if bytes.len() < minimum {
        return Err("shorter than the header and checksum");
    }
    let (body, stored) = bytes.split_at(bytes.len() - HARD_STATE_CHECKSUM_SIZE_BYTES);
    let stored = u32::from_le_bytes(stored.try_into().expect("four bytes"));
    if stored != crc32c::crc32c(body) {
        return Err("checksum mismatch");
    }
    if body[0..8] != HARD_STATE_MAGIC {
        return Err("bad magic number");
    }
    let version = u32::from_le_bytes(body[8..12].try_into().expect("four bytes"));
    if version != HARD_STATE_FORMAT_VERSION {
        return Err("unsupported format version");
    }
    let length = u32::from_le_bytes(body[12..16].try_into().expect("four bytes"));
    let payload = &body[HARD_STATE_HEADER_SIZE_BYTES..];
    if payload.len() != length as usize {
        return Err("payload length disagrees with the file length");
    }
    Ok(payload)
}

/// Replaces the hard state with `payload`, atomically and durably: when this returns
/// `Ok`, a crash recovers `payload`; if it fails or crashes midway, a crash recovers
/// either `payload` or the previous state.
pub fn write_hard_state<D: Disk>(disk: &mut D, payload: &[u8]) -> Result<(), HardStateError> {
    let bytes = encode(payload)?;
    disk.create(HARD_STATE_TEMPORARY_PATH)?;
    disk.append(HARD_STATE_TEMPORARY_PATH, &bytes)?;
    // The data must be durable before the rename can make it visible under the real name.
    disk.sync(HARD_STATE_TEMPORARY_PATH)?;
    disk.rename(HARD_STATE_TEMPORARY_PATH, HARD_STATE_PATH)?;
    disk.sync_directory("")?;
    Ok(())
}

/// Reads the hard state: `None` if none was ever written (a fresh node), the payload if
/// the file is intact, an error naming the file if it is corrupt.
pub fn read_hard_state<D: Disk>(disk: &D) -> Result<Option<Vec<u8>>, HardStateError> {
    let bytes = match disk.read(HARD_STATE_PATH) {
        Ok(bytes) => bytes,
        Err(error) if error.is_not_found() => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    match decode(&bytes) {
        Ok(payload) => Ok(Some(payload.to_vec())),
        Err(reason) => Err(HardStateError::Corrupt { path: HARD_STATE_PATH.to_string(), reason }),
    }
}
