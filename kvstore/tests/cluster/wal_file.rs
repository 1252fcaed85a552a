//! The framing of a WAL segment as the storage documentation gives it, read independently
//! of the product's code so that a test can damage one record precisely:
//!
//! ```text
//! segment: 24-byte header, then records
//! record:  length u32 LE | CRC32C u32 LE (over type and payload) | type u8 | payload
//! ```

use std::ops::Range;

const SEGMENT_HEADER_SIZE_BYTES: usize = 24;
const RECORD_HEADER_SIZE_BYTES: usize = 9;

/// Where one record lies in its segment file.
#[derive(Debug, Clone)]
pub struct RecordSpan {
    /// The offset of its length field, which is what recovery reports for a bad record.
    pub offset_bytes: usize,
    pub payload: Range<usize>,
}

/// Every record of a whole, undamaged segment. Fails the test if the bytes do not follow
/// the documented format, since a test that misreads the format proves nothing.
pub fn record_spans(segment: &[u8]) -> Vec<RecordSpan> {
    assert!(segment.len() >= SEGMENT_HEADER_SIZE_BYTES, "a segment starts with a 24-byte header");
    let mut spans = Vec::new();
    let mut offset = SEGMENT_HEADER_SIZE_BYTES;
    while offset < segment.len() {
        let span = record_at(segment, offset);
        offset = span.payload.end;
        spans.push(span);
    }
    spans
}

fn record_at(segment: &[u8], offset: usize) -> RecordSpan {
    let header = segment.get(offset..offset + RECORD_HEADER_SIZE_BYTES).expect("a whole record header");
    let length = u32::from_le_bytes(header[0..4].try_into().expect("four bytes")) as usize;
    let stored_checksum = u32::from_le_bytes(header[4..8].try_into().expect("four bytes"));
    let payload = offset + RECORD_HEADER_SIZE_BYTES..offset + RECORD_HEADER_SIZE_BYTES + length;
    let checked = segment.get(offset + 8..payload.end).expect("a whole record payload");
    assert_eq!(crc32c::crc32c(checked), stored_checksum, "record at offset {offset} has a bad checksum");
    RecordSpan { offset_bytes: offset, payload }
}
