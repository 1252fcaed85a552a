//! WAL segment files: names, the header, and scanning a segment's records on recovery.
//!
//! A segment is `wal/<first sequence, 20 digits>.log`: a 24-byte header followed by
//! records framed as in [`record`](super::record).
//!
//! ```text
//! offset  size  field
//! 0       8     magic "TALLYWAL"
//! 8       4     format version, u32 little-endian (1)
//! 12      8     sequence number of the segment's first record, u64 little-endian
//! 20      4     CRC32C of bytes 0..20, u32 little-endian
//! ```

use std::fmt;
use std::ops::{Range, RangeInclusive};

use super::disk::join_path;
use super::record::{decode_record, find_valid_record_after, RecordDefect};

/// The directory holding the segments, relative to the data directory.
pub const WAL_DIRECTORY: &str = "wal";

/// The first bytes of every segment.
pub const SEGMENT_MAGIC: [u8; 8] = *b"TALLYWAL";

/// The segment format this code writes and reads.
pub const SEGMENT_FORMAT_VERSION: u32 = 1;

/// Size of the segment header.
pub const SEGMENT_HEADER_SIZE_BYTES: usize = 24;

/// The largest payload the format allows. Recovery treats a larger declared length as a
/// defect without allocating, so this is also the bound on memory a bad length can claim.
pub const RECORD_PAYLOAD_SIZE_BYTES_MAX: u32 = 64 * 1024 * 1024;

/// The first sequences a segment may have. Sequences start at 1, and a log never comes near
/// 2^63 records; the bound leaves room to number the records of any segment without
/// overflow. A file named outside it was not written by the log and is ignored.
pub const SEGMENT_FIRST_SEQUENCES: RangeInclusive<u64> = 1..=i64::MAX as u64;

const SEGMENT_NAME_DIGITS: usize = 20;
const SEGMENT_NAME_SUFFIX: &str = ".log";

/// The path of the segment whose first record has sequence `first_sequence`.
pub fn segment_path(first_sequence: u64) -> String {
    let name = format!("{first_sequence:0width$}{SEGMENT_NAME_SUFFIX}", width = SEGMENT_NAME_DIGITS);
    join_path(WAL_DIRECTORY, &name)
}

/// The first sequence encoded in a segment file name, or `None` if the name is not a
/// segment's (other files in the directory are ignored, not treated as corruption), which
/// includes a sequence outside [`SEGMENT_FIRST_SEQUENCES`].
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_NAME_SUFFIX)?;
    let well_formed = digits.len() == SEGMENT_NAME_DIGITS && digits.bytes().all(|byte| byte.is_ascii_digit());
    if !well_formed {
        return None;
    }
    digits.parse().ok().filter(|first_sequence| SEGMENT_FIRST_SEQUENCES.contains(first_sequence))
}

/// Why a segment header is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderDefect {
    /// The file is shorter than a header.
    Truncated {
        /// Bytes present.
        bytes_present: usize,
    },
    /// The header checksum does not match.
    ChecksumMismatch,
    /// The magic number is wrong: not a segment.
    BadMagic,
    /// A format version this code does not read.
    UnsupportedVersion {
        /// The version found.
        version: u32,
    },
    /// The header's first sequence disagrees with the file name.
    SequenceMismatch {
        /// The first sequence in the header.
        in_header: u64,
    },
}

impl fmt::Display for HeaderDefect {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderDefect::Truncated { bytes_present } => {
                write!(formatter, "truncated header ({bytes_present} of {SEGMENT_HEADER_SIZE_BYTES} bytes)")
            }
            HeaderDefect::ChecksumMismatch => formatter.write_str("header checksum mismatch"),
            HeaderDefect::BadMagic => formatter.write_str("bad magic number"),
            HeaderDefect::UnsupportedVersion { version } => {
                write!(formatter, "unsupported format version {version}")
            }
            HeaderDefect::SequenceMismatch { in_header } => {
                write!(formatter, "header says first sequence {in_header}, which disagrees with the file name")
            }
        }
    }
}

/// The header of the segment whose first record has sequence `first_sequence`.
pub fn encode_segment_header(first_sequence: u64) -> [u8; SEGMENT_HEADER_SIZE_BYTES] {
    let mut header = [0; SEGMENT_HEADER_SIZE_BYTES];
    header[0..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&SEGMENT_FORMAT_VERSION.to_le_bytes());
    header[12..20].copy_from_slice(&first_sequence.to_le_bytes());
    let checksum = crc32c::crc32c(&header[0..20]);
    header[20..24].copy_from_slice(&checksum.to_le_bytes());
    header
}

/// Checks the header of a segment expected to start at `first_sequence`.
pub fn check_segment_header(data: &[u8], first_sequence: u64) -> Result<(), HeaderDefect> {
    let Some(header) = data.get(..SEGMENT_HEADER_SIZE_BYTES) else {
        return Err(HeaderDefect::Truncated { bytes_present: data.len() });
    };
    let stored = u32::from_le_bytes(header[20..24].try_into().expect("four bytes"));
    if stored != crc32c::crc32c(&header[0..20]) {
        return Err(HeaderDefect::ChecksumMismatch);
    }
    if header[0..8] != SEGMENT_MAGIC {
        return Err(HeaderDefect::BadMagic);
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("four bytes"));
    if version != SEGMENT_FORMAT_VERSION {
        return Err(HeaderDefect::UnsupportedVersion { version });
    }
    let in_header = u64::from_le_bytes(header[12..20].try_into().expect("eight bytes"));
    if in_header != first_sequence {
        return Err(HeaderDefect::SequenceMismatch { in_header });
    }
    Ok(())
}

/// What is wrong at the point where a segment stops being valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentDefect {
    /// The header is bad (reported at offset 0).
    Header(HeaderDefect),
    /// The record at the reported offset is bad.
    Record(RecordDefect),
}

impl fmt::Display for SegmentDefect {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegmentDefect::Header(defect) => defect.fmt(formatter),
            SegmentDefect::Record(defect) => defect.fmt(formatter),
        }
    }
}

/// A segment's valid records, and where and why it stopped being valid, if it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    /// Type and payload range of each valid record, in order.
    pub records: Vec<(u8, Range<usize>)>,
    /// The first bad offset and its defect, or `None` if the segment is valid to its end.
    pub defect: Option<(usize, SegmentDefect)>,
    /// True if a valid record exists after the defect, which proves the bad bytes were
    /// once a whole record: corruption rather than a torn write.
    pub valid_record_after_defect: bool,
}

/// Reads the header and records of a segment, stopping at the first defect.
pub fn scan_segment(data: &[u8], first_sequence: u64) -> SegmentScan {
    if let Err(defect) = check_segment_header(data, first_sequence) {
        return scanned_up_to(data, Vec::new(), 0, SegmentDefect::Header(defect));
    }
    let mut records = Vec::new();
    let mut offset = SEGMENT_HEADER_SIZE_BYTES;
    while offset < data.len() {
        match decode_record(data, offset, RECORD_PAYLOAD_SIZE_BYTES_MAX) {
            Ok(record) => {
                records.push((record.record_type, record.payload));
                offset = record.end;
            }
            Err(defect) => return scanned_up_to(data, records, offset, SegmentDefect::Record(defect)),
        }
    }
    SegmentScan { records, defect: None, valid_record_after_defect: false }
}

fn scanned_up_to(data: &[u8], records: Vec<(u8, Range<usize>)>, offset: usize, defect: SegmentDefect) -> SegmentScan {
    let found = find_valid_record_after(data, offset, RECORD_PAYLOAD_SIZE_BYTES_MAX);
    SegmentScan { records, defect: Some((offset, defect)), valid_record_after_defect: found.is_some() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::record::encode_record;

    #[test]
    fn segment_names_sort_by_sequence_and_parse_back() {
        let early = segment_path(9);
        let late = segment_path(10);
        assert_eq!(early, "wal/00000000000000000009.log");
        assert!(early < late, "zero padding keeps lexical order equal to numeric order");
        assert_eq!(parse_segment_name("00000000000000000010.log"), Some(10));
        let last = *SEGMENT_FIRST_SEQUENCES.end();
        assert_eq!(parse_segment_name(&segment_path(last)[4..]), Some(last));
    }

    #[test]
    fn foreign_file_names_are_not_segments() {
        let out_of_range = ["00000000000000000000.log", "09223372036854775808.log", "18446744073709551615.log"];
        let malformed = ["10.log", "0000000000000000001x.log", "00000000000000000001.tmp", ""];
        for name in out_of_range.into_iter().chain(malformed) {
            assert_eq!(parse_segment_name(name), None, "{name:?}");
        }
    }

    #[test]
    fn header_round_trips_and_rejects_the_wrong_sequence() {
        let header = encode_segment_header(42);
        assert_eq!(check_segment_header(&header, 42), Ok(()));
        let mismatch = check_segment_header(&header, 43).unwrap_err();
        assert_eq!(mismatch, HeaderDefect::SequenceMismatch { in_header: 42 });
        let truncated = check_segment_header(&header[..10], 42).unwrap_err();
        assert_eq!(truncated, HeaderDefect::Truncated { bytes_present: 10 });
    }

    #[test]
    fn scan_stops_at_a_bad_record_and_sees_the_valid_one_after_it() {
        let mut data = encode_segment_header(1).to_vec();
        encode_record(&mut data, 1, b"first");
        let second_offset = data.len();
        encode_record(&mut data, 1, b"second");
        encode_record(&mut data, 1, b"third");
        data[second_offset + 10] ^= 0x01;
        let scan = scan_segment(&data, 1);
        assert_eq!(scan.records.len(), 1);
        let (offset, defect) = scan.defect.expect("defect found");
        assert_eq!(offset, second_offset);
        assert!(matches!(defect, SegmentDefect::Record(RecordDefect::ChecksumMismatch { .. })));
        assert!(scan.valid_record_after_defect);
    }
}
