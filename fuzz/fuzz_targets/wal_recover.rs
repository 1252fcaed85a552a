//! WAL recovery, and the Raft store's replay on top of it, over damaged disks.
//!
//! Input: a mode byte, then (even mode) arbitrary segment files, each a flags byte (bit 0:
//! prefix a valid header), its first sequence (u64 LE), a length (u16 LE) and that many
//! bytes; or (odd mode) a log written by [`Wal`]: a segment-size byte, then writing steps
//! (tag % 3: append a record of a type byte and a length-prefixed payload; sync; crash
//! keeping a torn prefix and zeros of the unsynced tail), then damage steps (tag % 5: flip a
//! bit, truncate, zero a range, remove a segment, append garbage).
//!
//! Checks, against a reading of the format written apart from the WAL's code: recovery
//! never panics; every record it returns has a valid checksum and is the record written
//! with that sequence; it either cuts exactly the bad tail of the last segment or refuses
//! with the file and offset of the first bad record, changing nothing; a crash alone loses
//! no synced record; reopening recovers the same log. The Raft store then opens the same
//! disk, and a state it recovers starts an engine or is refused, never a panic.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::{Result, Unstructured};
use engine::{Config, Membership, Raft};
use kvstore::raft_store::{write_identity, Identity, RaftStore};
use kvstore::storage::segment::{encode_segment_header, parse_segment_name, segment_path, WAL_DIRECTORY};
use kvstore::storage::{Disk, MemDisk, Recovery, TornWrite, Wal, WalConfig, WalOpenError};
use libfuzzer_sys::fuzz_target;

const SEGMENTS_MAX: usize = 8;
const HEADER_SIZE_BYTES: usize = 24;
const RECORD_HEADER_SIZE_BYTES: usize = 9;

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else { return };
    let build = || {
        let mut disk = MemDisk::new();
        write_identity(&mut disk, &identity()).expect("a MemDisk does not fail");
        let written = if mode & 1 == 0 {
            write_raw_segments(&mut disk, &mut Unstructured::new(rest));
            None
        } else {
            Some(write_and_damage_log(&disk, &mut Unstructured::new(rest)))
        };
        (disk, written)
    };
    let (disk, written) = build();
    check_wal_recovery(&disk, written.as_ref());
    // The same damaged disk again, for the store, which recovers (and cuts) it too.
    let (disk, _) = build();
    start_from_raft_store(disk);
});

/// What the input wrote through the WAL, to compare recovery with.
#[derive(Debug, Default)]
struct WrittenLog {
    /// Type and payload of every record appended; sequence `n` at `n - 1`.
    records: Vec<(u8, Vec<u8>)>,
    /// How many records a sync made durable before the crash.
    synced_count: usize,
    /// Damage was applied after the crash.
    damaged: bool,
    /// Some damage changed bytes in place (flips, garbage), which could forge a record
    /// whose checksum happens to match.
    content_changed: bool,
}

fn identity() -> Identity {
    Identity { cluster_id: "fuzz".to_string(), node_id: 1 }
}

fn wal_config() -> WalConfig {
    WalConfig { segment_size_bytes_max: 256, write_buffer_size_bytes_max: 64 }
}

fn write_raw_segments(disk: &mut MemDisk, u: &mut Unstructured) {
    disk.create_directory(WAL_DIRECTORY).expect("a MemDisk does not fail");
    for _ in 0..SEGMENTS_MAX {
        let Ok(segment) = raw_segment(u) else { break };
        let (first_sequence, content) = segment;
        let path = segment_path(first_sequence);
        disk.create(&path).expect("the directory exists");
        disk.append(&path, &content).expect("a MemDisk does not fail");
        disk.sync(&path).expect("a MemDisk does not fail");
    }
    disk.sync_directory(WAL_DIRECTORY).expect("a MemDisk does not fail");
}

fn raw_segment(u: &mut Unstructured) -> Result<(u64, Vec<u8>)> {
    let with_header = u.arbitrary::<u8>()? & 1 == 1;
    let first_sequence: u64 = u.arbitrary()?;
    let length = usize::from(u.arbitrary::<u16>()?).min(u.len());
    let mut content = if with_header { encode_segment_header(first_sequence).to_vec() } else { Vec::new() };
    content.extend_from_slice(u.bytes(length)?);
    Ok((first_sequence, content))
}

fn write_and_damage_log(disk: &MemDisk, u: &mut Unstructured) -> WrittenLog {
    let mut written = WrittenLog::default();
    let segment_size_bytes_max = (HEADER_SIZE_BYTES + RECORD_HEADER_SIZE_BYTES) as u64 + u64::from(byte(u));
    let config = WalConfig { segment_size_bytes_max, ..wal_config() };
    let (mut wal, _) = Wal::open(disk.clone(), config).expect("a fresh log opens");
    let mut torn_write = TornWrite::default();
    while !u.is_empty() {
        match byte(u) % 3 {
            0 => {
                let record_type = byte(u).max(1);
                let length = usize::from(byte(u)).min(u.len());
                let payload = u.bytes(length).expect("length within what is left").to_vec();
                wal.append(record_type, &payload).expect("a MemDisk does not fail");
                written.records.push((record_type, payload));
            }
            1 => {
                wal.sync().expect("a MemDisk does not fail");
                written.synced_count = written.records.len();
            }
            _ => {
                torn_write = TornWrite { bytes_kept: u64::from(byte(u)), bytes_zeroed: u64::from(byte(u)) };
                break;
            }
        }
    }
    drop(wal);
    disk.crash(|_, _| torn_write);
    while !u.is_empty() {
        damage(disk, u, &mut written);
    }
    written
}

fn byte(u: &mut Unstructured) -> u8 {
    u.arbitrary().unwrap_or(0)
}

fn damage(disk: &MemDisk, u: &mut Unstructured, written: &mut WrittenLog) {
    let (tag, file, position) = (byte(u), byte(u), u.arbitrary::<u16>().unwrap_or(0));
    let names = disk.list(WAL_DIRECTORY).expect("the directory exists");
    let Some(name) = names.get(usize::from(file) % names.len().max(1)) else { return };
    let path = format!("{WAL_DIRECTORY}/{name}");
    let mut content = disk.read(&path).expect("listed");
    let offset = usize::from(position) % (content.len() + 1);
    written.damaged = true;
    match tag % 5 {
        0 if offset < content.len() => {
            content[offset] ^= 1 << (byte(u) % 8);
            written.content_changed = true;
        }
        1 => content.truncate(offset),
        2 => {
            let end = (offset + usize::from(byte(u))).min(content.len());
            content[offset..end].fill(0);
        }
        3 => {
            let mut disk = disk.clone();
            disk.remove(&path).expect("listed");
            disk.sync_directory(WAL_DIRECTORY).expect("a MemDisk does not fail");
            return;
        }
        4 => {
            let length = usize::from(byte(u)).min(u.len());
            content.extend_from_slice(u.bytes(length).expect("length within what is left"));
            written.content_changed = true;
        }
        _ => {}
    }
    let mut disk = disk.clone();
    disk.truncate(&path, 0).expect("listed");
    disk.append(&path, &content).expect("a MemDisk does not fail");
    disk.sync(&path).expect("a MemDisk does not fail");
}

/// Every segment file by first sequence, with its content.
fn segments(disk: &MemDisk) -> BTreeMap<u64, Vec<u8>> {
    let names = disk.list(WAL_DIRECTORY).unwrap_or_default();
    let firsts = names.iter().filter_map(|name| parse_segment_name(name));
    firsts.map(|first| (first, disk.read(&segment_path(first)).expect("listed"))).collect()
}

/// The valid records at the start of a segment, and where they end (0 for a bad header):
/// the format of `storage/segment.rs` and `storage/record.rs`, read without their code.
fn valid_prefix(data: &[u8], first_sequence: u64) -> (Vec<(u8, &[u8])>, usize) {
    let header_valid = data.len() >= HEADER_SIZE_BYTES
        && data[..8] == *b"TALLYWAL"
        && data[8..12] == 1u32.to_le_bytes()
        && data[12..20] == first_sequence.to_le_bytes()
        && data[20..24] == crc32c::crc32c(&data[..20]).to_le_bytes();
    if !header_valid {
        return (Vec::new(), 0);
    }
    let mut records = Vec::new();
    let mut offset = HEADER_SIZE_BYTES;
    while let Some(header) = data.get(offset..offset + RECORD_HEADER_SIZE_BYTES) {
        let length = u32::from_le_bytes(header[..4].try_into().expect("four bytes")) as usize;
        let payload_start = offset + RECORD_HEADER_SIZE_BYTES;
        let Some(payload) = data.get(payload_start..payload_start + length) else { break };
        let record_type = header[8];
        let checksum = crc32c::crc32c_append(crc32c::crc32c(&[record_type]), payload);
        if record_type == 0 || header[4..8] != checksum.to_le_bytes() {
            break;
        }
        records.push((record_type, payload));
        offset = payload_start + length;
    }
    (records, offset)
}

fn check_wal_recovery(disk: &MemDisk, written: Option<&WrittenLog>) {
    let before = segments(disk);
    let last_path = before.keys().last().map(|first| segment_path(*first));
    match Wal::open(disk.clone(), wal_config()) {
        Ok((wal, recovery)) => {
            drop(wal);
            check_recovered(disk, &before, &recovery, written);
            let (_, again) = Wal::open(disk.clone(), wal_config()).expect("a recovered log opens again");
            assert_eq!(again, Recovery { torn_tail: None, ..recovery }, "reopening recovers the same log");
        }
        Err(WalOpenError::Corrupt { path, offset_bytes, defect }) => {
            let first = before.keys().find(|first| segment_path(**first) == path).expect("a segment is named");
            let (_, valid_end) = valid_prefix(&before[first], *first);
            assert_eq!(offset_bytes, valid_end as u64, "{path} is reported bad ({defect}) elsewhere");
            assert_eq!(segments(disk), before, "refusing to recover changed the disk");
            if written.is_some_and(|written| !written.damaged) {
                // The one corruption a crash alone can show: a torn record followed by bytes
                // that form a whole record (see the WAL's documented limits).
                assert_eq!(Some(&path), last_path.as_ref(), "a crash alone corrupted an earlier segment");
            }
        }
        Err(WalOpenError::SequenceGap { path, expected, found }) => {
            assert_ne!(expected, found);
            assert_eq!(path, segment_path(found));
            assert_eq!(segments(disk), before, "refusing to recover changed the disk");
            assert!(written.is_none_or(|written| written.damaged), "a crash alone left a gap in the log");
        }
        Err(error @ WalOpenError::Disk(_)) => panic!("a MemDisk does not fail: {error}"),
    }
}

fn check_recovered(disk: &MemDisk, before: &BTreeMap<u64, Vec<u8>>, recovery: &Recovery, written: Option<&WrittenLog>) {
    let after = segments(disk);
    let mut valid: Vec<(u8, &[u8])> = Vec::new();
    for (first, content) in &after {
        let (records, valid_end) = valid_prefix(content, *first);
        assert_eq!(valid_end, content.len(), "recovery left bad bytes in {}", segment_path(*first));
        valid.extend(records);
    }
    let returned: Vec<(u8, &[u8])> =
        recovery.records.iter().map(|record| (record.record_type, &record.payload[..])).collect();
    assert_eq!(returned, valid, "recovery returned other records than the disk holds");
    let first_sequence = after.keys().next().copied().unwrap_or(1);
    for (position, record) in recovery.records.iter().enumerate() {
        assert_eq!(record.sequence, first_sequence + position as u64, "sequences are contiguous");
    }
    match &recovery.torn_tail {
        None => {
            if !before.is_empty() {
                assert_eq!(&after, before, "recovery changed a log that had no torn tail");
            }
        }
        Some(torn) => {
            let last = before.keys().last().expect("a torn tail is in a segment");
            assert_eq!(torn.path, segment_path(*last), "only the last segment can be torn");
            let old = &before[last];
            let (_, valid_end) = valid_prefix(old, *last);
            assert_eq!(torn.offset_bytes, valid_end as u64, "the cut is not where the valid content ends");
            assert_eq!(torn.offset_bytes + torn.bytes_dropped, old.len() as u64);
            if valid_end >= HEADER_SIZE_BYTES {
                assert_eq!(after[last], old[..valid_end], "the cut kept other bytes");
            }
        }
    }
    if let Some(written) = written {
        check_against_written(recovery, written);
    }
}

fn check_against_written(recovery: &Recovery, written: &WrittenLog) {
    if !written.content_changed {
        for record in &recovery.records {
            let position = usize::try_from(record.sequence - 1).expect("small");
            let (record_type, payload) = &written.records[position];
            assert_eq!((record.record_type, &record.payload[..]), (*record_type, &payload[..]), "{record:?}");
        }
    }
    if !written.damaged {
        assert!(recovery.records.len() >= written.synced_count, "a crash lost synced records");
    }
}

/// Opens the store as a node does, and starts an engine from what it recovered.
fn start_from_raft_store(disk: MemDisk) {
    let membership = Membership::new([1, 2, 3]);
    let Ok((store, recovered)) = RaftStore::open(disk, identity(), Some(membership), wal_config()) else { return };
    drop(store);
    let _ = Raft::new(1, Config::default(), recovered.state, 0, 0);
}
