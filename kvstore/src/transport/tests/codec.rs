//! The pure codec: frames and hellos round-trip, and hostile bytes become errors, never
//! panics or large allocations.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};

use crate::transport::frame::{
    decode_batch, decode_batch_frame, decode_frame, encode_frame, encode_message, varint_size_bytes, BatchEncoder,
    Decoded, FrameDefect, FRAME_HEADER_SIZE_BYTES,
};
use crate::transport::handshake::{
    check_acceptor, check_dialer, decode_hello, encode_hello, HandshakeDefect, Hello, HelloRefusal, HANDSHAKE_MAGIC,
    HELLO_SIZE_BYTES_MAX, PROTOCOL_VERSION,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum TestMessage {
    Vote { term: u64, candidate: u64 },
    Append { term: u64, entries: Vec<Vec<u8>> },
    Text(String),
}

const LIMIT_BYTES: u32 = 1024 * 1024;

fn sample_messages() -> Vec<TestMessage> {
    vec![
        TestMessage::Vote { term: 7, candidate: 2 },
        TestMessage::Append { term: 7, entries: vec![b"put a 1".to_vec(), Vec::new(), vec![0xff; 300]] },
        TestMessage::Text("héllo".to_string()),
    ]
}

fn framed_batch(messages: &[TestMessage], limit_bytes: u32) -> Vec<u8> {
    let mut batch = BatchEncoder::new(limit_bytes);
    for message in messages {
        let encoded = encode_message(message).unwrap();
        assert!(batch.fits(encoded.len()));
        batch.push(&encoded);
    }
    let mut frame = Vec::new();
    batch.finish_into(&mut frame);
    frame
}

fn sample_hello() -> Hello {
    Hello { cluster_id: "tally-test".to_string(), node_id: 2, client_address: Some("127.0.0.1:6379".to_string()) }
}

#[test]
fn batch_frame_round_trips_and_reports_its_size() {
    let messages = sample_messages();
    let mut bytes = framed_batch(&messages, LIMIT_BYTES);
    let frame_size_bytes = bytes.len();
    bytes.extend_from_slice(b"next frame starts here");
    let decoded = decode_batch_frame::<TestMessage>(&bytes, LIMIT_BYTES).unwrap();
    assert_eq!(decoded, Decoded::Complete { value: messages, size_bytes: frame_size_bytes });
}

#[test]
fn batch_payload_is_exactly_postcards_encoding_of_the_vector() {
    let messages = sample_messages();
    let frame = framed_batch(&messages, LIMIT_BYTES);
    let Decoded::Complete { value: payload, .. } = decode_frame(&frame, LIMIT_BYTES).unwrap() else {
        panic!("a whole frame decodes")
    };
    assert_eq!(payload, postcard::to_allocvec(&messages).unwrap().as_slice());
}

#[test]
fn varint_size_matches_postcard() {
    for value in [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, u32::MAX as usize, usize::MAX] {
        assert_eq!(varint_size_bytes(value), postcard::to_allocvec(&value).unwrap().len(), "value {value}");
    }
}

#[test]
fn an_empty_batch_is_a_valid_frame() {
    let frame = framed_batch(&[], LIMIT_BYTES);
    let decoded = decode_batch_frame::<TestMessage>(&frame, LIMIT_BYTES).unwrap();
    assert_eq!(decoded, Decoded::Complete { value: Vec::new(), size_bytes: frame.len() });
}

#[test]
fn every_truncation_asks_for_more_bytes_without_overshooting() {
    let frame = framed_batch(&sample_messages(), LIMIT_BYTES);
    for length in 0..frame.len() {
        match decode_batch_frame::<TestMessage>(&frame[..length], LIMIT_BYTES) {
            Ok(Decoded::Incomplete { bytes_needed }) => {
                assert!(bytes_needed >= 1, "length {length}");
                assert!(length + bytes_needed <= frame.len(), "length {length} overshoots");
            }
            other => panic!("prefix of {length} bytes gave {other:?}"),
        }
    }
}

#[test]
fn an_oversize_length_is_refused_from_the_header_alone() {
    let mut header = Vec::new();
    header.extend_from_slice(&(LIMIT_BYTES + 1).to_le_bytes());
    header.extend_from_slice(&0_u32.to_le_bytes());
    let defect = decode_frame(&header, LIMIT_BYTES).unwrap_err();
    assert_eq!(defect, FrameDefect::LengthTooLarge { length_bytes: LIMIT_BYTES + 1, maximum_bytes: LIMIT_BYTES });
    let header_at_limit = [&LIMIT_BYTES.to_le_bytes()[..], &[0; 4]].concat();
    let at_limit = decode_frame(&header_at_limit, LIMIT_BYTES).unwrap();
    assert_eq!(at_limit, Decoded::Incomplete { bytes_needed: LIMIT_BYTES as usize });
}

#[test]
fn a_damaged_payload_or_checksum_is_refused() {
    let frame = framed_batch(&sample_messages(), LIMIT_BYTES);
    for position in [4, 7, FRAME_HEADER_SIZE_BYTES, frame.len() - 1] {
        let mut damaged = frame.clone();
        damaged[position] ^= 0x01;
        let defect = decode_batch_frame::<TestMessage>(&damaged, LIMIT_BYTES).unwrap_err();
        assert!(matches!(defect, FrameDefect::ChecksumMismatch { .. }), "byte {position}: {defect:?}");
    }
}

#[test]
fn a_well_framed_payload_that_is_not_a_batch_is_refused() {
    let mut trailing = postcard::to_allocvec(&sample_messages()).unwrap();
    trailing.push(0);
    let mut garbage = Vec::new();
    encode_frame(&mut garbage, &[0x05, 0xff, 0xff]);
    let mut with_trailing = Vec::new();
    encode_frame(&mut with_trailing, &trailing);
    for bytes in [garbage, with_trailing] {
        let defect = decode_batch_frame::<TestMessage>(&bytes, LIMIT_BYTES).unwrap_err();
        assert!(matches!(defect, FrameDefect::MalformedPayload { .. }), "{defect:?}");
    }
}

#[test]
fn a_batch_never_exceeds_the_frame_limit() {
    let limit_bytes = 1024;
    let encoded = encode_message(&TestMessage::Append { term: 1, entries: vec![vec![7; 100]] }).unwrap();
    let mut batch = BatchEncoder::new(limit_bytes);
    while batch.fits(encoded.len()) {
        batch.push(&encoded);
    }
    // One byte of the payload is the element count's varint; the rest holds whole messages.
    assert_eq!(batch.message_count(), (limit_bytes as usize - 1) / encoded.len());
    let mut frame = Vec::new();
    batch.finish_into(&mut frame);
    assert!(frame.len() - FRAME_HEADER_SIZE_BYTES <= limit_bytes as usize);
    assert!(batch.is_empty(), "finishing empties the batch for reuse");
    assert!(!BatchEncoder::fits_alone(limit_bytes, limit_bytes as usize));
    assert!(BatchEncoder::fits_alone(limit_bytes, limit_bytes as usize - 1));
}

#[test]
fn hello_round_trips() {
    let mut bytes = Vec::new();
    encode_hello(&mut bytes, &sample_hello());
    let size_bytes = bytes.len();
    bytes.extend_from_slice(b"first frame");
    assert_eq!(decode_hello(&bytes).unwrap(), Decoded::Complete { value: sample_hello(), size_bytes });
    for length in 0..size_bytes {
        let decoded = decode_hello(&bytes[..length]).unwrap();
        assert!(matches!(decoded, Decoded::Incomplete { bytes_needed } if length + bytes_needed <= size_bytes));
    }
}

#[test]
fn a_stranger_is_recognised_at_its_first_wrong_byte() {
    assert_eq!(decode_hello(b"G").unwrap_err(), HandshakeDefect::BadMagic);
    assert_eq!(decode_hello(b"TLYX").unwrap_err(), HandshakeDefect::BadMagic);
    assert_eq!(decode_hello(b"*1\r\n$4\r\nPING\r\n").unwrap_err(), HandshakeDefect::BadMagic);
}

#[test]
fn another_protocol_version_or_an_oversize_hello_is_refused() {
    let mut bytes = HANDSHAKE_MAGIC.to_vec();
    bytes.extend_from_slice(&(PROTOCOL_VERSION + 1).to_le_bytes());
    let defect = decode_hello(&bytes).unwrap_err();
    assert_eq!(defect, HandshakeDefect::UnsupportedVersion { version: PROTOCOL_VERSION + 1 });
    let mut oversize = HANDSHAKE_MAGIC.to_vec();
    oversize.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    oversize.extend_from_slice(&(HELLO_SIZE_BYTES_MAX + 1).to_le_bytes());
    oversize.extend_from_slice(&[0; 4]);
    assert!(matches!(decode_hello(&oversize).unwrap_err(), HandshakeDefect::Frame(FrameDefect::LengthTooLarge { .. })));
}

#[test]
fn the_acceptor_refuses_other_clusters_unknown_nodes_and_itself() {
    let peers: BTreeMap<u64, ()> = [(2, ()), (3, ())].into();
    let check = |cluster_id: &str, node_id: u64| {
        let hello = Hello { cluster_id: cluster_id.to_string(), node_id, client_address: None };
        check_dialer(&hello, "tally-test", 1, &peers)
    };
    assert_eq!(check("tally-test", 2), Ok(()));
    assert!(matches!(check("other", 2), Err(HelloRefusal::ClusterMismatch { .. })));
    assert_eq!(check("tally-test", 9), Err(HelloRefusal::UnknownNode { node_id: 9 }));
    assert_eq!(check("tally-test", 1), Err(HelloRefusal::ClaimsOurNodeId { node_id: 1 }));
}

#[test]
fn the_dialer_refuses_an_answer_from_the_wrong_node() {
    assert_eq!(check_acceptor(&sample_hello(), "tally-test", 2), Ok(()));
    let refusal = check_acceptor(&sample_hello(), "tally-test", 3).unwrap_err();
    assert_eq!(refusal, HelloRefusal::UnexpectedNode { expected: 3, received: 2 });
    assert!(matches!(check_acceptor(&sample_hello(), "other", 2), Err(HelloRefusal::ClusterMismatch { .. })));
}

fn arbitrary_message() -> impl Strategy<Value = TestMessage> {
    prop_oneof![
        (any::<u64>(), any::<u64>()).prop_map(|(term, candidate)| TestMessage::Vote { term, candidate }),
        (any::<u64>(), proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8))
            .prop_map(|(term, entries)| TestMessage::Append { term, entries }),
        ".{0,40}".prop_map(TestMessage::Text),
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_never_claim_more_than_given(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(Decoded::Complete { size_bytes, .. }) = decode_batch_frame::<TestMessage>(&bytes, 256) {
            prop_assert!(size_bytes <= bytes.len());
        }
        if let Ok(Decoded::Complete { size_bytes, .. }) = decode_hello(&bytes) {
            prop_assert!(size_bytes <= bytes.len());
        }
        let _ignored = decode_batch::<TestMessage>(&bytes);
    }

    #[test]
    fn arbitrary_bytes_behind_a_valid_header_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut frame = Vec::new();
        encode_frame(&mut frame, &payload);
        let result = decode_batch_frame::<TestMessage>(&frame, LIMIT_BYTES);
        let whole_and_intact = !matches!(result, Ok(Decoded::Incomplete { .. }) | Err(FrameDefect::ChecksumMismatch { .. }));
        prop_assert!(whole_and_intact, "a valid frame decoded as {:?}", result);
    }

    #[test]
    fn arbitrary_batches_round_trip_frame_after_frame(
        batches in proptest::collection::vec(proptest::collection::vec(arbitrary_message(), 0..6), 1..4),
    ) {
        let stream: Vec<u8> = batches.iter().flat_map(|batch| framed_batch(batch, LIMIT_BYTES)).collect();
        let mut offset = 0;
        for batch in &batches {
            let Decoded::Complete { value, size_bytes } = decode_batch_frame::<TestMessage>(&stream[offset..], LIMIT_BYTES)
                .unwrap() else { panic!("whole frames decode") };
            prop_assert_eq!(&value, batch);
            offset += size_bytes;
        }
        prop_assert_eq!(offset, stream.len());
    }
}
