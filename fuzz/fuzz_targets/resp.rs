//! The RESP2 parser on arbitrary bytes, delivered in chunk sizes the input chooses.
//!
//! Input: one flags byte (bit 0: parse replies rather than requests; bits 1-3: how many
//! chunk-size bytes follow), the chunk sizes (each byte plus one, used in turn), then the
//! stream.
//!
//! Checks: no panic; no single allocation during a `parse` call larger than a small
//! multiple of the bytes buffered (a declared length is never allocated before its data
//! arrives); nesting within the limit; the same frames and error however the stream is
//! split; and every frame re-encodes to bytes that parse back to the same frame (for
//! replies, to exactly the bytes it was parsed from).
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use kvstore::resp::{Frame, ParseError, ParseLimits, Parser};
use libfuzzer_sys::fuzz_target;

/// Small, so that the fuzzer reaches every limit. Consistent with each other: an inline
/// command (one line) re-encodes as an array of bulk strings within the same limits.
const LIMITS: ParseLimits =
    ParseLimits { bulk_size_bytes_max: 512, array_elements_max: 64, nesting_depth_max: 6, line_size_bytes_max: 64 };

/// A parse call may allocate per byte it holds (tokens, frames), never per byte declared.
const ALLOCATION_BYTES_PER_BUFFERED_BYTE_MAX: usize = 32;
const ALLOCATION_BYTES_SLACK: usize = 64;

/// The frames a stream gave, each with the bytes it consumed, then the error that ended it.
type Outcome = (Vec<(Frame, Bytes)>, Option<ParseError>);

fuzz_target!(|input: &[u8]| {
    let Some((&flags, rest)) = input.split_first() else { return };
    let replies = flags & 1 == 1;
    let chunk_count = usize::from((flags >> 1) & 7).min(rest.len());
    let (chunk_sizes, stream) = rest.split_at(chunk_count);
    let chunked = parse_in_chunks(replies, stream, chunk_sizes);
    let whole = parse_in_chunks(replies, stream, &[]);
    assert_eq!(chunked, whole, "the outcome depends on how the stream was split");
    for (frame, consumed) in &chunked.0 {
        assert!(depth(frame) <= LIMITS.nesting_depth_max, "nesting over the limit: {frame:?}");
        let encoded = frame.to_bytes();
        if replies {
            assert_eq!(encoded, consumed, "a reply re-encodes to other bytes");
        }
        let mut buffer = BytesMut::from(&encoded[..]);
        let reparsed = parser(replies).parse(&mut buffer);
        assert_eq!(reparsed, Ok(Some(frame.clone())), "re-encoded as {encoded:?}");
        assert!(buffer.is_empty(), "the re-encoded frame left bytes behind");
    }
});

fn parser(replies: bool) -> Parser {
    if replies {
        Parser::for_replies(LIMITS)
    } else {
        Parser::for_requests(LIMITS)
    }
}

/// Feeds `stream` in chunks of `chunk_sizes` (each plus one, cycled; one chunk if none),
/// parsing every frame as soon as it is complete.
fn parse_in_chunks(replies: bool, stream: &[u8], chunk_sizes: &[u8]) -> Outcome {
    let mut parser = parser(replies);
    let mut outcome = (Vec::new(), None);
    let mut buffer = BytesMut::new();
    let mut sizes = chunk_sizes.iter().map(|&size| usize::from(size) + 1).cycle();
    let mut rest = stream;
    while !rest.is_empty() && outcome.1.is_none() {
        let size = sizes.next().unwrap_or(rest.len()).min(rest.len());
        buffer.extend_from_slice(&rest[..size]);
        rest = &rest[size..];
        drain(&mut parser, &mut buffer, &mut outcome);
    }
    outcome
}

fn drain(parser: &mut Parser, buffer: &mut BytesMut, outcome: &mut Outcome) {
    while outcome.1.is_none() {
        let before = buffer.clone();
        LARGEST_ALLOCATION_BYTES.store(0, Ordering::Relaxed);
        let parsed = parser.parse(buffer);
        let largest = LARGEST_ALLOCATION_BYTES.load(Ordering::Relaxed);
        let bound = ALLOCATION_BYTES_PER_BUFFERED_BYTE_MAX * before.len() + ALLOCATION_BYTES_SLACK;
        assert!(largest <= bound, "allocated {largest} bytes at once with {} bytes buffered", before.len());
        match parsed {
            Ok(Some(frame)) => {
                let consumed = before.len() - buffer.len();
                assert_eq!(before[consumed..], buffer[..], "a frame is cut from the front only");
                outcome.0.push((frame, before.freeze().slice(..consumed)));
            }
            Ok(None) => {
                assert_eq!(before, *buffer, "an incomplete frame consumes nothing");
                return;
            }
            Err(error) => outcome.1 = Some(error),
        }
    }
}

fn depth(frame: &Frame) -> usize {
    match frame {
        Frame::Array(elements) => 1 + elements.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The system allocator, recording the largest single request since it was last reset.
struct RecordingAllocator;

static LARGEST_ALLOCATION_BYTES: AtomicUsize = AtomicUsize::new(0);

#[global_allocator]
static ALLOCATOR: RecordingAllocator = RecordingAllocator;

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for RecordingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOCATION_BYTES.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        System.dealloc(pointer, layout)
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST_ALLOCATION_BYTES.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(pointer, layout, new_size)
    }
}
