//! The peer connection's decoders on arbitrary bytes: the handshake, then framed batches
//! of [`PeerMessage`], decoded front to back as the accepting side does.
//!
//! Input: a flags byte (bit 0: seal, that is write the correct checksum into each frame
//! header, so that mutations reach the postcard decoders behind it), then the bytes the
//! connection receives.
//!
//! Checks: no panic; a frame declaring more than the limit is refused from its header
//! alone; an item decodes the same whatever follows it, and every shorter prefix of it is
//! incomplete (so the reader never waits for bytes it does not need, nor decides early);
//! every hello and batch accepted re-encodes to bytes that decode to the same value.
#![no_main]

use std::fmt::Debug;

use kvstore::node::PeerMessage;
use kvstore::transport::frame::{
    decode_batch_frame, encode_message, BatchEncoder, Decoded, FrameDefect, FRAME_HEADER_SIZE_BYTES,
};
use kvstore::transport::handshake::{
    decode_hello, encode_hello, HandshakeDefect, HELLO_PREFIX_SIZE_BYTES, HELLO_SIZE_BYTES_MAX,
};
use libfuzzer_sys::fuzz_target;

/// The smallest frame limit a transport accepts, so the fuzzer reaches it.
const FRAME_SIZE_BYTES_MAX: u32 = 1024;

fuzz_target!(|input: &[u8]| {
    let Some((&flags, stream)) = input.split_first() else { return };
    let mut stream = stream.to_vec();
    if flags & 1 == 1 {
        seal(&mut stream);
    }
    check_hello_limit(&stream);
    let Some((hello, hello_size_bytes)) = check_item(&stream, decode_hello) else { return };
    let mut encoded = Vec::new();
    encode_hello(&mut encoded, &hello);
    assert_eq!(decode_hello(&encoded), Ok(Decoded::Complete { value: hello, size_bytes: encoded.len() }));
    let mut rest = &stream[hello_size_bytes..];
    while let Some((messages, size_bytes)) = check_item(rest, decode_batch) {
        check_batch_round_trip(messages);
        rest = &rest[size_bytes..];
    }
    check_frame_limit(rest);
});

fn decode_batch(bytes: &[u8]) -> Result<Decoded<Vec<PeerMessage>>, FrameDefect> {
    decode_batch_frame(bytes, FRAME_SIZE_BYTES_MAX)
}

/// Checks how `decode` treats the item at the front of `bytes` and its prefixes; returns
/// the item and its size if it decoded, None if it is incomplete or refused.
fn check_item<T, E>(bytes: &[u8], decode: impl Fn(&[u8]) -> Result<Decoded<T>, E>) -> Option<(T, usize)>
where
    T: PartialEq + Debug,
    E: Debug,
{
    let (value, size_bytes) = match decode(bytes) {
        Ok(Decoded::Complete { value, size_bytes }) => (value, size_bytes),
        Ok(Decoded::Incomplete { bytes_needed }) => {
            assert!(bytes_needed > 0, "incomplete, yet nothing more is needed");
            return None;
        }
        Err(_) => return None,
    };
    assert!(size_bytes > 0 && size_bytes <= bytes.len());
    match decode(&bytes[..size_bytes]) {
        Ok(Decoded::Complete { value: alone, size_bytes: alone_size_bytes }) => {
            assert!(alone == value && alone_size_bytes == size_bytes, "the bytes after an item changed it");
        }
        other => panic!("a {size_bytes}-byte item alone decoded as {other:?}"),
    }
    for prefix in 0..size_bytes {
        match decode(&bytes[..prefix]) {
            Ok(Decoded::Incomplete { bytes_needed }) => {
                assert!(
                    bytes_needed > 0 && prefix + bytes_needed <= size_bytes,
                    "asked for {bytes_needed} at {prefix}"
                );
            }
            other => panic!("a {prefix}-byte prefix of a {size_bytes}-byte item decoded as {other:?}"),
        }
    }
    Some((value, size_bytes))
}

/// A frame whose header declares more than the limit is refused as soon as the header is in.
fn check_frame_limit(bytes: &[u8]) {
    let Some(header) = bytes.get(..FRAME_HEADER_SIZE_BYTES) else { return };
    if declared_length_bytes(header) > FRAME_SIZE_BYTES_MAX {
        for prefix in [header, bytes] {
            assert!(matches!(decode_batch(prefix), Err(FrameDefect::LengthTooLarge { .. })), "not refused");
        }
    }
}

/// The same for the hello, whose frame has a limit of its own.
fn check_hello_limit(stream: &[u8]) {
    let Some(header) = stream.get(..HELLO_PREFIX_SIZE_BYTES + FRAME_HEADER_SIZE_BYTES) else { return };
    let oversize = declared_length_bytes(&header[HELLO_PREFIX_SIZE_BYTES..]) > HELLO_SIZE_BYTES_MAX;
    if oversize && matches!(decode_hello(&header[..HELLO_PREFIX_SIZE_BYTES]), Ok(Decoded::Incomplete { .. })) {
        let refused = Err(HandshakeDefect::Frame(FrameDefect::LengthTooLarge {
            length_bytes: declared_length_bytes(&header[HELLO_PREFIX_SIZE_BYTES..]),
            maximum_bytes: HELLO_SIZE_BYTES_MAX,
        }));
        assert_eq!(decode_hello(header), refused);
        assert_eq!(decode_hello(stream), refused);
    }
}

fn declared_length_bytes(frame_header: &[u8]) -> u32 {
    u32::from_le_bytes(frame_header[..4].try_into().expect("four bytes"))
}

/// Re-encodes a batch as a sender would; it must fit and decode to the same messages.
fn check_batch_round_trip(messages: Vec<PeerMessage>) {
    let mut batch = BatchEncoder::new(FRAME_SIZE_BYTES_MAX);
    for message in &messages {
        let encoded = encode_message(message).expect("a decoded message encodes");
        assert!(batch.fits(encoded.len()), "a batch that was accepted does not fit when re-encoded");
        batch.push(&encoded);
    }
    let mut frame = Vec::new();
    batch.finish_into(&mut frame);
    let size_bytes = frame.len();
    assert_eq!(decode_batch(&frame), Ok(Decoded::Complete { value: messages, size_bytes }));
}

/// Writes the right checksum into the hello frame and every frame after it.
fn seal(stream: &mut [u8]) {
    let mut offset = HELLO_PREFIX_SIZE_BYTES;
    while let Some(header) = stream.get(offset..offset + FRAME_HEADER_SIZE_BYTES) {
        let length = declared_length_bytes(header) as usize;
        let payload_start = offset + FRAME_HEADER_SIZE_BYTES;
        let Some(payload) = stream.get(payload_start..payload_start + length) else { return };
        let checksum = crc32c::crc32c(payload);
        stream[offset + 4..payload_start].copy_from_slice(&checksum.to_le_bytes());
        offset = payload_start + length;
    }
}
