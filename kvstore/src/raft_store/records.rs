//! The two WAL record types of the Raft store and their payloads.
//!
//! ```text
//! type  name        payload
//! 1     entries     one or more postcard-encoded engine::Entry, back to back, no count
//! 2     hard state  postcard HardStateRecord { hard_state: engine::HardState, entries_records: u32 }
//! 3     snapshot    postcard SnapshotRecord { index, term }: a snapshot covering (index, term)
//!                   was installed; entries after it stay only if the log held that entry
//! ```
//!
//! Entries are encoded back to back rather than as a postcard `Vec` so that a large batch
//! can be cut into records by the encoded size of each entry, with a single encoding pass.

use engine::{Entry, HardState};
use serde::{Deserialize, Serialize};

use super::error::{LogDefect, StoreError};

/// Record type of a run of contiguous entries.
pub(super) const RECORD_TYPE_ENTRIES: u8 = 1;

/// Record type of the hard state record that closes every batch.
pub(super) const RECORD_TYPE_HARD_STATE: u8 = 2;

/// Record type of a snapshot installed from the leader, which replaces the log before it.
pub(super) const RECORD_TYPE_SNAPSHOT: u8 = 3;

/// The payload of a snapshot record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct SnapshotRecord {
    pub(super) index: engine::Index,
    pub(super) term: engine::Term,
}

pub(super) fn encode_snapshot_record(record: &SnapshotRecord) -> Vec<u8> {
    postcard::to_allocvec(record).expect("a snapshot record always serializes into a Vec")
}

/// Decodes a snapshot record's payload; trailing bytes are a defect.
pub(super) fn decode_snapshot_record(payload: &[u8]) -> Result<SnapshotRecord, LogDefect> {
    decode_whole(payload, "snapshot")
}

/// The payload of a hard state record: the hard state in force after its batch, and how
/// many entries records immediately before it belong to the same batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct HardStateRecord {
    pub(super) hard_state: HardState,
    pub(super) entries_records: u32,
}

/// Encodes `entries` into payloads of at most `payload_size_bytes_max` bytes each (an
/// entry is never split). Fails, before anything is written, if one entry alone is larger.
pub(super) fn encode_entries(entries: &[Entry], payload_size_bytes_max: usize) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut payloads = Vec::new();
    let mut current = Vec::new();
    for entry in entries {
        let start = current.len();
        current = postcard::to_extend(entry, current).expect("an entry always serializes into a Vec");
        let length_bytes = current.len() - start;
        if length_bytes > payload_size_bytes_max {
            let maximum_bytes = payload_size_bytes_max;
            return Err(StoreError::EntryTooLarge { index: entry.index, length_bytes, maximum_bytes });
        }
        if current.len() > payload_size_bytes_max {
            // The entry does not fit after the others: it starts the next record.
            let overflow = current.split_off(start);
            payloads.push(std::mem::replace(&mut current, overflow));
        }
    }
    if !current.is_empty() {
        payloads.push(current);
    }
    Ok(payloads)
}

/// Decodes an entries record's payload.
pub(super) fn decode_entries(payload: &[u8]) -> Result<Vec<Entry>, LogDefect> {
    let mut entries = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        let (entry, tail) = postcard::take_from_bytes(rest).map_err(|error| undecodable("entries", error))?;
        entries.push(entry);
        rest = tail;
    }
    if entries.is_empty() {
        return Err(LogDefect::EmptyEntries);
    }
    Ok(entries)
}

/// Encodes a hard state record's payload.
pub(super) fn encode_hard_state(record: &HardStateRecord) -> Vec<u8> {
    postcard::to_allocvec(record).expect("a hard state always serializes into a Vec")
}

/// Decodes a hard state record's payload; trailing bytes are a defect.
pub(super) fn decode_hard_state(payload: &[u8]) -> Result<HardStateRecord, LogDefect> {
    decode_whole(payload, "hard state")
}

/// Decodes a payload that holds exactly one `T`, named `record` in the defect.
fn decode_whole<T: serde::de::DeserializeOwned>(payload: &[u8], record: &'static str) -> Result<T, LogDefect> {
    let (decoded, rest) = postcard::take_from_bytes(payload).map_err(|error| undecodable(record, error))?;
    if !rest.is_empty() {
        let message = format!("{} trailing bytes", rest.len());
        return Err(LogDefect::Undecodable { record, message });
    }
    Ok(decoded)
}

fn undecodable(record: &'static str, error: postcard::Error) -> LogDefect {
    LogDefect::Undecodable { record, message: error.to_string() }
}
