//! The segmented write-ahead log.
//!
//! # Shape
//!
//! Every record gets a *sequence number*: 1 for the first record ever written, then one
//! more per record, never reused. Segments are named by the sequence of their first
//! record (`wal/00000000000000000001.log`), so recovery can check that no segment is
//! missing, and compaction can drop whole segments by sequence without knowing what the
//! records mean. The log knows nothing of Raft indexes: callers keep their own map from
//! index to sequence (the sequence is returned by [`Wal::append`] and carried by every
//! recovered [`Record`]).
//!
//! # Writing: group commit
//!
//! [`Wal::append`] frames a record into an in-memory buffer (written to the file early
//! only when the buffer passes [`WalConfig::write_buffer_size_bytes_max`]).
//! [`Wal::sync`] writes what is buffered and fsyncs once, so a caller appends a whole
//! batch (entries, a hard state change) and pays for one fsync. A record is durable once
//! the `sync` that follows it returns.
//!
//! When the active segment would grow past [`WalConfig::segment_size_bytes_max`], the
//! log *rolls*: it fsyncs the active segment (and the directory, if a name is pending)
//! before creating the next one. That extra fsync buys a simple recovery rule: only the
//! last segment can ever have a torn tail, so a bad record in any other segment is
//! corruption.
//!
//! # Dropping a suffix: logical truncation
//!
//! A Raft follower that must drop a conflicting suffix of its log does so by appending a
//! record of its own type ("entries from index N on are void"), in the same batch as the
//! entries that replace them, and applies such records in order on replay. The log never
//! rewrites synced bytes. Why: a physical truncation can span segments and needs several
//! fsyncs, each a point where a crash leaves a state recovery must understand; an
//! appended record becomes durable atomically with the new entries that follow it, since
//! recovery returns a prefix of what was appended. The only physical truncation is the
//! removal of a torn tail during recovery, of bytes that were never acknowledged.
//!
//! # Recovery
//!
//! [`Wal::open`] scans the segments in order. The first bad record (or header) of the
//! *last* segment is a torn write if no valid record follows it anywhere in that
//! segment: it and everything after it is cut off and reported in
//! [`Recovery::torn_tail`]. Anything else is corruption and an error naming the file and
//! offset; nothing is dropped or returned past it. The scan for a later valid record is
//! what tells a torn write (garbage to the end) from a bit flip in a record that was once
//! whole (valid records follow). The rule has two known limits. A bit flip in the very
//! last record of the log looks exactly like a torn write, so that record is dropped as
//! one (and reported); telling them apart needs knowledge of what was acknowledged,
//! which only the replication layer has. And a torn record whose payload happens to
//! contain the bytes of a whole valid record is reported as corruption: the safe
//! direction, since the node refuses to start rather than guessing.
//!
//! # Failure
//!
//! Any disk error while writing poisons the log (see [`WalWriteError`]): after a short
//! write the file ends in garbage, and after a failed fsync Linux may have dropped the
//! dirty pages while later fsyncs report success, so the only safe continuation is to
//! stop and recover from disk with [`Wal::open`].

use std::collections::VecDeque;

use bytes::Bytes;

use super::disk::{Disk, DiskError};
use super::record::{encode_record, framed_size_bytes, RecordDefect};
use super::segment::{
    encode_segment_header, parse_segment_name, scan_segment, segment_path, HeaderDefect, SegmentDefect,
    RECORD_PAYLOAD_SIZE_BYTES_MAX, SEGMENT_HEADER_SIZE_BYTES, WAL_DIRECTORY,
};
use super::wal_error::{WalOpenError, WalWriteError};

/// Tunables of the write-ahead log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalConfig {
    /// A segment rolls when the next record would take it past this size. A record
    /// larger than this gets a segment of its own.
    pub segment_size_bytes_max: u64,
    /// Buffered records are written to the file (without fsync) once the buffer reaches
    /// this size, which bounds the memory a long unsynced batch holds.
    pub write_buffer_size_bytes_max: usize,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig { segment_size_bytes_max: 64 * 1024 * 1024, write_buffer_size_bytes_max: 1024 * 1024 }
    }
}

/// One recovered record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its sequence number, as returned by [`Wal::append`].
    pub sequence: u64,
    /// The caller's record type (never 0).
    pub record_type: u8,
    /// The caller's payload.
    pub payload: Bytes,
}

/// A torn tail that recovery cut off: bytes of a write that never completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment file, always the last one.
    pub path: String,
    /// Where the valid content of the file now ends.
    pub offset_bytes: u64,
    /// How many bytes were cut off.
    pub bytes_dropped: u64,
    /// What was wrong at `offset_bytes`.
    pub defect: SegmentDefect,
}

/// What [`Wal::open`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Every valid record of every retained segment, in sequence order, without gaps.
    pub records: Vec<Record>,
    /// The torn tail that was cut off, for the caller to log.
    pub torn_tail: Option<TornTail>,
}

/// The write-ahead log over a [`Disk`]. See the module documentation for its rules.
#[derive(Debug)]
pub struct Wal<D: Disk> {
    disk: D,
    config: WalConfig,
    /// First sequence of every segment on disk, oldest first; the last is active.
    segment_first_sequences: VecDeque<u64>,
    /// Bytes of the active segment already handed to the disk.
    active_length_bytes: u64,
    /// Records in the active segment, buffered ones included.
    active_records: u64,
    /// Framed records (and a new segment's header) not yet handed to the disk.
    buffer: Vec<u8>,
    sequence_next: u64,
    last_synced_sequence: u64,
    file_sync_pending: bool,
    directory_sync_pending: bool,
    poison: Option<Poison>,
}

#[derive(Debug, Clone)]
struct Poison {
    cause: String,
    storage_full: bool,
}

impl<D: Disk> Wal<D> {
    /// Recovers the log from `disk` (creating an empty one if there is none) and returns
    /// it with every valid record. A torn tail is cut off and reported; corruption is an
    /// error. Before returning, the last segment and the directory are synced, so every
    /// returned record is durable even if it was never synced before a process crash.
    pub fn open(mut disk: D, config: WalConfig) -> Result<(Self, Recovery), WalOpenError> {
        assert!(config.segment_size_bytes_max > 0, "segments need room");
        disk.create_directory(WAL_DIRECTORY)?;
        let mut segment_first_sequences = list_segments(&disk)?;
        let empty = segment_first_sequences.is_empty();
        if empty {
            segment_first_sequences.push_back(1);
        }
        let mut wal = Wal {
            sequence_next: segment_first_sequences[0],
            segment_first_sequences,
            disk,
            config,
            active_length_bytes: 0,
            active_records: 0,
            buffer: Vec::new(),
            last_synced_sequence: 0,
            file_sync_pending: true,
            directory_sync_pending: true,
            poison: None,
        };
        let mut recovery = Recovery::default();
        if empty {
            wal.start_segment(1)?;
        } else {
            wal.recover_segments(&mut recovery)?;
        }
        wal.flush()?;
        wal.sync_flushed()?;
        Ok((wal, recovery))
    }

    fn recover_segments(&mut self, recovery: &mut Recovery) -> Result<(), WalOpenError> {
        let firsts: Vec<u64> = self.segment_first_sequences.iter().copied().collect();
        for (index, first_sequence) in firsts.iter().enumerate() {
            let is_last = index + 1 == firsts.len();
            self.recover_segment(*first_sequence, is_last, recovery)?;
        }
        Ok(())
    }

    fn recover_segment(
        &mut self,
        first_sequence: u64,
        is_last: bool,
        recovery: &mut Recovery,
    ) -> Result<(), WalOpenError> {
        let path = segment_path(first_sequence);
        if first_sequence != self.sequence_next {
            let (expected, found) = (self.sequence_next, first_sequence);
            return Err(WalOpenError::SequenceGap { path, expected, found });
        }
        let data = Bytes::from(self.disk.read(&path)?);
        let scan = scan_segment(&data, first_sequence);
        let mut valid_length_bytes = data.len() as u64;
        if let Some((offset, defect)) = scan.defect {
            let offset_bytes = offset as u64;
            let torn = is_last && !scan.valid_record_after_defect && may_be_torn(defect);
            if !torn {
                return Err(WalOpenError::Corrupt { path, offset_bytes, defect });
            }
            let bytes_dropped = valid_length_bytes - offset_bytes;
            self.cut_torn_tail(first_sequence, offset_bytes)?;
            valid_length_bytes = offset_bytes;
            recovery.torn_tail = Some(TornTail { path, offset_bytes, bytes_dropped, defect });
        }
        for (record_type, payload) in scan.records {
            let sequence = self.sequence_next;
            self.sequence_next += 1;
            let payload = data.slice(payload);
            recovery.records.push(Record { sequence, record_type, payload });
        }
        self.active_length_bytes = valid_length_bytes;
        self.active_records = self.sequence_next - first_sequence;
        Ok(())
    }

    /// Cuts the last segment back to `offset_bytes`; a torn header is rewritten whole.
    fn cut_torn_tail(&mut self, first_sequence: u64, offset_bytes: u64) -> Result<(), DiskError> {
        let path = segment_path(first_sequence);
        if offset_bytes < SEGMENT_HEADER_SIZE_BYTES as u64 {
            self.disk.truncate(&path, 0)?;
            self.buffer.extend_from_slice(&encode_segment_header(first_sequence));
            return Ok(());
        }
        self.disk.truncate(&path, offset_bytes)
    }

    /// Frames a record into the buffer and returns its sequence number. It is durable
    /// only after the next successful [`Wal::sync`].
    ///
    /// `record_type` must not be 0 (reserved, so zeroed bytes never read as a record).
    pub fn append(&mut self, record_type: u8, payload: &[u8]) -> Result<u64, WalWriteError> {
        self.check_not_poisoned()?;
        if payload.len() > RECORD_PAYLOAD_SIZE_BYTES_MAX as usize {
            return Err(WalWriteError::PayloadTooLarge {
                length_bytes: payload.len(),
                maximum_bytes: RECORD_PAYLOAD_SIZE_BYTES_MAX,
            });
        }
        let result = self.append_record(record_type, payload);
        self.poison_on_error(result)
    }

    fn append_record(&mut self, record_type: u8, payload: &[u8]) -> Result<u64, DiskError> {
        let framed_bytes = framed_size_bytes(payload.len()) as u64;
        let active_size_bytes = self.active_length_bytes + self.buffer.len() as u64;
        if self.active_records > 0 && active_size_bytes + framed_bytes > self.config.segment_size_bytes_max {
            self.roll()?;
        }
        encode_record(&mut self.buffer, record_type, payload);
        self.active_records += 1;
        let sequence = self.sequence_next;
        self.sequence_next += 1;
        if self.buffer.len() >= self.config.write_buffer_size_bytes_max {
            self.flush()?;
        }
        Ok(sequence)
    }

    /// Makes every appended record durable with one fsync (two if a segment was created
    /// since the last sync, whose name needs the directory synced too).
    ///
    /// An error poisons the log; see [`WalWriteError`].
    pub fn sync(&mut self) -> Result<(), WalWriteError> {
        self.check_not_poisoned()?;
        let result = self.flush().and_then(|()| self.sync_flushed());
        self.poison_on_error(result)
    }

    /// Removes every segment all of whose records have a sequence below `sequence`,
    /// never the active one, and returns how many were removed. For log compaction, once
    /// a snapshot covers those records; they will not be recovered again.
    pub fn remove_segments_before(&mut self, sequence: u64) -> Result<usize, WalWriteError> {
        self.check_not_poisoned()?;
        let result = self.remove_old_segments(sequence);
        self.poison_on_error(result)
    }

    fn remove_old_segments(&mut self, sequence: u64) -> Result<usize, DiskError> {
        let mut removed = 0;
        // Oldest first, with a directory sync after each, so a crash midway leaves a
        // contiguous run of segments rather than a gap that recovery would call corrupt.
        while self.segment_first_sequences.len() > 1 && self.segment_first_sequences[1] <= sequence {
            let path = segment_path(self.segment_first_sequences[0]);
            self.disk.remove(&path)?;
            self.segment_first_sequences.pop_front();
            self.disk.sync_directory(WAL_DIRECTORY)?;
            self.directory_sync_pending = false;
            removed += 1;
        }
        Ok(removed)
    }

    /// Seals the active segment, durably, and starts the next one.
    fn roll(&mut self) -> Result<(), DiskError> {
        self.flush()?;
        self.sync_flushed()?;
        self.start_segment(self.sequence_next)
    }

    /// Creates the segment starting at `first_sequence`, its header buffered.
    fn start_segment(&mut self, first_sequence: u64) -> Result<(), DiskError> {
        assert!(self.buffer.is_empty(), "records buffered for the previous segment");
        self.disk.create(&segment_path(first_sequence))?;
        if self.segment_first_sequences.back() != Some(&first_sequence) {
            self.segment_first_sequences.push_back(first_sequence);
        }
        self.buffer.extend_from_slice(&encode_segment_header(first_sequence));
        self.active_length_bytes = 0;
        self.active_records = 0;
        self.directory_sync_pending = true;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DiskError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        // Once handed to the disk the bytes count as written even if the append fails
        // partway: the poison that follows any error stops further use either way.
        self.file_sync_pending = true;
        self.disk.append(&self.active_path(), &self.buffer)?;
        self.active_length_bytes += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }

    fn sync_flushed(&mut self) -> Result<(), DiskError> {
        assert!(self.buffer.is_empty(), "sync before flush");
        if self.file_sync_pending {
            self.disk.sync(&self.active_path())?;
            self.file_sync_pending = false;
        }
        if self.directory_sync_pending {
            self.disk.sync_directory(WAL_DIRECTORY)?;
            self.directory_sync_pending = false;
        }
        self.last_synced_sequence = self.sequence_next - 1;
        Ok(())
    }

    fn check_not_poisoned(&self) -> Result<(), WalWriteError> {
        match &self.poison {
            None => Ok(()),
            Some(poison) => {
                Err(WalWriteError::Poisoned { cause: poison.cause.clone(), storage_full: poison.storage_full })
            }
        }
    }

    fn poison_on_error<T>(&mut self, result: Result<T, DiskError>) -> Result<T, WalWriteError> {
        result.map_err(|error| {
            self.poison = Some(Poison { cause: error.to_string(), storage_full: error.is_storage_full() });
            WalWriteError::Disk(error)
        })
    }

    fn active_path(&self) -> String {
        let active = self.segment_first_sequences.back();
        segment_path(*active.expect("the log always has an active segment"))
    }

    /// The sequence the next appended record will get.
    pub fn next_sequence(&self) -> u64 {
        self.sequence_next
    }

    /// Every record with a sequence up to this one is durable (0: none yet).
    pub fn last_synced_sequence(&self) -> u64 {
        self.last_synced_sequence
    }

    /// The sequence of the oldest record still on disk (or of the next record, if the
    /// oldest segment is still empty).
    pub fn first_sequence(&self) -> u64 {
        self.segment_first_sequences[0]
    }

    /// The paths of the segment files, oldest first.
    pub fn segment_paths(&self) -> Vec<String> {
        let firsts = self.segment_first_sequences.iter();
        firsts.map(|first| segment_path(*first)).collect()
    }

    /// True once a disk failure has made the log refuse further writes.
    pub fn is_poisoned(&self) -> bool {
        self.poison.is_some()
    }

    /// The disk the log writes to.
    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// The disk the log writes to, for other files in the same data directory (the
    /// hard state). Touching the `wal` directory through it breaks the log.
    pub fn disk_mut(&mut self) -> &mut D {
        &mut self.disk
    }

    /// Gives the disk back, dropping the log (and anything buffered but not synced).
    pub fn into_disk(self) -> D {
        self.disk
    }
}

/// Whether a defect at the end of the last segment can be the result of a torn write.
/// A header whose checksum holds but whose content is wrong was written whole.
fn may_be_torn(defect: SegmentDefect) -> bool {
    match defect {
        SegmentDefect::Header(header) => {
            matches!(header, HeaderDefect::Truncated { .. } | HeaderDefect::ChecksumMismatch)
        }
        SegmentDefect::Record(record) => record != RecordDefect::ReservedType,
    }
}

fn list_segments<D: Disk>(disk: &D) -> Result<VecDeque<u64>, DiskError> {
    let names = disk.list(WAL_DIRECTORY)?;
    let mut firsts: Vec<u64> = names.iter().filter_map(|name| parse_segment_name(name)).collect();
    firsts.sort_unstable();
    Ok(firsts.into())
}
