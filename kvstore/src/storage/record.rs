//! Framing of one WAL record: encoding, and decoding that never trusts the bytes.
//!
//! ```text
//! offset  size  field
//! 0       4     payload length in bytes, u32 little-endian
//! 4       4     CRC32C over the type byte and the payload, u32 little-endian
//! 8       1     record type (0 is reserved and never valid)
//! 9       n     payload (the caller's postcard bytes)
//! ```
//!
//! Type 0 is reserved so that a zero-filled region (a file whose length reached the disk
//! before its data) never decodes as a record, even though its checksum field is zero.

use std::fmt;
use std::ops::Range;

/// Bytes of framing before each record's payload.
pub const RECORD_HEADER_SIZE_BYTES: usize = 9;

/// The record type no record may have; see the module documentation.
pub const RECORD_TYPE_RESERVED: u8 = 0;

/// Why the bytes at some offset are not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordDefect {
    /// Fewer bytes remain than a record header needs.
    HeaderTruncated {
        /// Bytes present.
        bytes_present: usize,
    },
    /// The declared payload length is over the configured maximum.
    LengthTooLarge {
        /// The declared length.
        length_bytes: u32,
    },
    /// The declared payload runs past the end of the file.
    PayloadTruncated {
        /// The declared length.
        length_bytes: u32,
        /// Payload bytes present.
        bytes_present: usize,
    },
    /// The checksum does not match the type and payload.
    ChecksumMismatch {
        /// The checksum stored in the header.
        stored: u32,
        /// The checksum computed over the bytes.
        computed: u32,
    },
    /// The checksum matches but the type is the reserved one.
    ReservedType,
}

impl fmt::Display for RecordDefect {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordDefect::HeaderTruncated { bytes_present } => {
                write!(formatter, "truncated header ({bytes_present} of {RECORD_HEADER_SIZE_BYTES} bytes)")
            }
            RecordDefect::LengthTooLarge { length_bytes } => {
                write!(formatter, "declared length {length_bytes} bytes is over the maximum")
            }
            RecordDefect::PayloadTruncated { length_bytes, bytes_present } => {
                write!(formatter, "truncated payload ({bytes_present} of {length_bytes} bytes)")
            }
            RecordDefect::ChecksumMismatch { stored, computed } => {
                write!(formatter, "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")
            }
            RecordDefect::ReservedType => write!(formatter, "reserved record type 0"),
        }
    }
}

/// A record found by [`decode_record`], as ranges into the decoded buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRecord {
    /// The record type.
    pub record_type: u8,
    /// Where the payload lies in the buffer.
    pub payload: Range<usize>,
    /// The offset just past this record, where the next one starts.
    pub end: usize,
}

/// The number of bytes a record with `payload_length_bytes` of payload takes.
pub fn framed_size_bytes(payload_length_bytes: usize) -> usize {
    RECORD_HEADER_SIZE_BYTES + payload_length_bytes
}

fn checksum(record_type: u8, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&[record_type]), payload)
}

/// Appends the framed record to `buffer`.
///
/// The caller has checked that the payload length fits in a `u32` and the type is not
/// [`RECORD_TYPE_RESERVED`].
pub fn encode_record(buffer: &mut Vec<u8>, record_type: u8, payload: &[u8]) {
    assert_ne!(record_type, RECORD_TYPE_RESERVED, "record type 0 is reserved");
    let length = u32::try_from(payload.len()).expect("payload length checked by the caller");
    buffer.extend_from_slice(&length.to_le_bytes());
    buffer.extend_from_slice(&checksum(record_type, payload).to_le_bytes());
    buffer.push(record_type);
    buffer.extend_from_slice(payload);
}

fn read_u32(bytes: &[u8], offset: usize) -> u32 {
    let field: [u8; 4] = bytes[offset..offset + 4].try_into().expect("four bytes");
    u32::from_le_bytes(field)
}

/// Decodes the record starting at `offset` in `data`, checking every field. A declared
/// length over `payload_size_bytes_max` is a defect, never an allocation.
pub fn decode_record(data: &[u8], offset: usize, payload_size_bytes_max: u32) -> Result<DecodedRecord, RecordDefect> {
    let remaining = &data[offset..];
    if remaining.len() < RECORD_HEADER_SIZE_BYTES {
        return Err(RecordDefect::HeaderTruncated { bytes_present: remaining.len() });
    }
    let length_bytes = read_u32(remaining, 0);
    if length_bytes > payload_size_bytes_max {
        return Err(RecordDefect::LengthTooLarge { length_bytes });
    }
    let payload_present = remaining.len() - RECORD_HEADER_SIZE_BYTES;
    let length = length_bytes as usize;
    if payload_present < length {
        return Err(RecordDefect::PayloadTruncated { length_bytes, bytes_present: payload_present });
    }
    let stored = read_u32(remaining, 4);
    let record_type = remaining[8];
    let payload_start = offset + RECORD_HEADER_SIZE_BYTES;
    let payload = payload_start..payload_start + length;
    let computed = checksum(record_type, &data[payload.clone()]);
    if stored != computed {
        return Err(RecordDefect::ChecksumMismatch { stored, computed });
    }
    if record_type == RECORD_TYPE_RESERVED {
        return Err(RecordDefect::ReservedType);
    }
    Ok(DecodedRecord { record_type, end: payload.end, payload })
}

/// Returns the first offset after `start` where a valid record begins, if any.
///
/// Recovery uses this to tell a torn tail (nothing valid after the bad bytes) from
/// corruption (valid records follow, so the bad record was once whole). It is only run
/// once, on the failure path; each candidate offset costs a length check and, for
/// plausible lengths, one checksum.
pub fn find_valid_record_after(data: &[u8], start: usize, payload_size_bytes_max: u32) -> Option<usize> {
    let last_candidate = data.len().checked_sub(RECORD_HEADER_SIZE_BYTES)?;
    (start + 1..=last_candidate).find(|offset| decode_record(data, *offset, payload_size_bytes_max).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u32 = 1024;

    fn framed(record_type: u8, payload: &[u8]) -> Vec<u8> {
        let mut buffer = Vec::new();
        encode_record(&mut buffer, record_type, payload);
        buffer
    }

    #[test]
    fn encoded_record_decodes_to_the_same_type_and_payload() {
        let data = framed(7, b"hello");
        let decoded = decode_record(&data, 0, MAX).expect("valid record");
        assert_eq!(decoded.record_type, 7);
        assert_eq!(&data[decoded.payload], b"hello");
        assert_eq!(decoded.end, framed_size_bytes(5));
        assert_eq!(decoded.end, data.len());
    }

    #[test]
    fn every_strict_prefix_of_a_record_is_truncated_not_valid() {
        let data = framed(3, b"payload bytes");
        for length in 0..data.len() {
            let defect = decode_record(&data[..length], 0, MAX).unwrap_err();
            let truncated =
                matches!(defect, RecordDefect::HeaderTruncated { .. } | RecordDefect::PayloadTruncated { .. });
            assert!(truncated, "prefix of {length} bytes gave {defect:?}");
        }
    }

    #[test]
    fn any_single_bit_flip_is_detected() {
        let data = framed(9, b"some payload");
        for bit_index in 0..data.len() * 8 {
            let mut flipped = data.clone();
            flipped[bit_index / 8] ^= 1 << (bit_index % 8);
            assert!(decode_record(&flipped, 0, MAX).is_err(), "bit {bit_index} undetected");
        }
    }

    #[test]
    fn huge_declared_length_is_a_defect_not_an_allocation() {
        let mut data = framed(1, b"x");
        data[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        let defect = decode_record(&data, 0, MAX).unwrap_err();
        assert_eq!(defect, RecordDefect::LengthTooLarge { length_bytes: u32::MAX });
    }

    #[test]
    fn zeros_never_decode_as_a_record() {
        let zeros = vec![0; 64];
        assert!(decode_record(&zeros, 0, MAX).is_err());
        assert_eq!(find_valid_record_after(&zeros, 0, MAX), None);
    }

    #[test]
    fn scan_finds_the_record_after_garbage() {
        let mut data = vec![0xAB; 5];
        data.extend(framed(2, b"after"));
        assert_eq!(find_valid_record_after(&data, 0, MAX), Some(5));
        assert_eq!(find_valid_record_after(&data, 5, MAX), None);
    }
}
