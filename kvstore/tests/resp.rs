//! Tests of the RESP2 codec through its public API: round trips, chunked and
//! pipelined input, hostile input, limits and inline commands.

use bytes::{Bytes, BytesMut};
use kvstore::resp::{Frame, ParseError, ParseLimits, Parser, RawCommand};
use proptest::prelude::*;

/// Everything the parser returns for `input` delivered in one piece: the
/// frames, each with the bytes it consumed, then the error if one stopped it.
type Outcome = (Vec<(Frame, Bytes)>, Option<ParseError>);

fn replies() -> Parser {
    Parser::for_replies(ParseLimits::default())
}

fn requests() -> Parser {
    Parser::for_requests(ParseLimits::default())
}

/// Parses every frame in `buffer`, recording the bytes each one consumed.
fn drain(parser: &mut Parser, buffer: &mut BytesMut, outcome: &mut Outcome) {
    while outcome.1.is_none() {
        let before = buffer.clone();
        match parser.parse(buffer) {
            Ok(Some(frame)) => {
                let consumed = before.len() - buffer.len();
                assert_eq!(&before[consumed..], &buffer[..], "only the front is consumed");
                outcome.0.push((frame, before.freeze().slice(..consumed)));
            }
            Ok(None) => {
                assert_eq!(&before[..], &buffer[..], "an incomplete frame consumes nothing");
                return;
            }
            Err(error) => outcome.1 = Some(error),
        }
    }
}

/// Feeds `input` to `parser` in chunks of the given sizes (cycled), then the rest.
fn parse_in_chunks(mut parser: Parser, input: &[u8], chunk_sizes: &[usize]) -> Outcome {
    let mut outcome = (Vec::new(), None);
    let mut buffer = BytesMut::new();
    let mut sizes = chunk_sizes.iter().copied().cycle();
    let mut rest = input;
    while !rest.is_empty() && outcome.1.is_none() {
        let size = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        buffer.extend_from_slice(&rest[..size]);
        rest = &rest[size..];
        drain(&mut parser, &mut buffer, &mut outcome);
    }
    outcome
}

fn parse_whole(parser: Parser, input: &[u8]) -> Outcome {
    parse_in_chunks(parser, input, &[])
}

fn parse_one(parser: &mut Parser, input: &[u8]) -> Result<Option<Frame>, ParseError> {
    parser.parse(&mut BytesMut::from(input))
}

fn bulks(words: &[&'static str]) -> Frame {
    Frame::array(words.iter().map(|word| Frame::bulk(*word)).collect())
}

// ---------------------------------------------------------------- strategies

/// Text for a simple string or error: anything but CR and LF.
fn line_text() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>().prop_filter("no line break", |b| *b != b'\r' && *b != b'\n'), 0..16)
        .prop_map(Bytes::from)
}

fn frame() -> impl Strategy<Value = Frame> {
    let leaf = prop_oneof![
        line_text().prop_map(Frame::Simple),
        line_text().prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Integer),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|data| Frame::Bulk(data.into())),
        Just(Frame::NullBulk),
        Just(Frame::NullArray),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| prop::collection::vec(inner, 0..6).prop_map(Frame::Array))
}

fn command() -> impl Strategy<Value = RawCommand> {
    let word = || prop::collection::vec(any::<u8>(), 0..12).prop_map(Bytes::from);
    (word(), prop::collection::vec(word(), 0..5)).prop_map(|(name, arguments)| RawCommand::new(name, arguments))
}

/// Bytes drawn mostly from the protocol's own alphabet, so that random input
/// reaches deep into the parser instead of failing on its first byte.
fn protocol_soup() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![prop::sample::select(b"+-:$*\r\n0123456789 aZ".to_vec()), any::<u8>(),];
    prop::collection::vec(byte, 0..200)
}

/// Valid pipelined frames with a few bytes overwritten, inserted or removed.
fn damaged_stream() -> impl Strategy<Value = Vec<u8>> {
    let edits = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..4);
    (prop::collection::vec(frame(), 1..4), edits).prop_map(|(frames, edits)| {
        let mut bytes = BytesMut::new();
        frames.iter().for_each(|frame| frame.encode(&mut bytes));
        let mut bytes = bytes.to_vec();
        for (position, byte, operation) in edits {
            let at = position.index(bytes.len());
            match operation {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => {
                    bytes.remove(at);
                }
            }
            if bytes.is_empty() {
                break;
            }
        }
        bytes
    })
}

fn any_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..200), protocol_soup(), damaged_stream()]
}

fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1..20usize, 1..8)
}

/// Checks what the parser accepted from arbitrary input: every frame encodes
/// to bytes that parse back to it, and in the reply dialect, where only
/// canonical encodings are accepted, to exactly the bytes it came from.
fn assert_accepted_frames_re_encode(outcome: &Outcome, fresh_parser: fn() -> Parser, canonical: bool) {
    for (frame, consumed) in &outcome.0 {
        let encoded = frame.to_bytes();
        if canonical {
            assert_eq!(&encoded, consumed);
        }
        let (reparsed, error) = parse_whole(fresh_parser(), &encoded);
        assert_eq!(error, None);
        assert_eq!(reparsed, vec![(frame.clone(), encoded)]);
    }
}

// ---------------------------------------------------------------- properties

proptest! {
    #[test]
    fn any_frame_round_trips_and_consumes_exactly_its_bytes(frame in frame(), trailing in prop::collection::vec(any::<u8>(), 0..8)) {
        let mut buffer = BytesMut::new();
        frame.encode(&mut buffer);
        buffer.extend_from_slice(&trailing);
        prop_assert_eq!(replies().parse(&mut buffer), Ok(Some(frame)));
        prop_assert_eq!(&buffer[..], &trailing[..]);
    }

    #[test]
    fn any_command_round_trips_through_the_request_parser(command in command()) {
        let encoded = command.clone().into_frame().to_bytes();
        let frame = parse_one(&mut requests(), &encoded).unwrap().unwrap();
        prop_assert_eq!(RawCommand::from_frame(frame), Ok(Some(command)));
    }

    #[test]
    fn pipelined_frames_in_random_chunks_parse_to_the_same_frames(frames in prop::collection::vec(frame(), 1..6), sizes in chunk_sizes()) {
        let mut input = BytesMut::new();
        frames.iter().for_each(|frame| frame.encode(&mut input));
        let (parsed, error) = parse_in_chunks(replies(), &input, &sizes);
        prop_assert_eq!(error, None);
        let parsed: Vec<Frame> = parsed.into_iter().map(|(frame, _)| frame).collect();
        prop_assert_eq!(parsed, frames);
    }

    #[test]
    fn every_proper_prefix_is_incomplete_and_consumes_nothing(frame in frame()) {
        let encoded = frame.to_bytes();
        for length in 0..encoded.len() {
            let mut buffer = BytesMut::from(&encoded[..length]);
            prop_assert_eq!(replies().parse(&mut buffer), Ok(None));
            prop_assert_eq!(&buffer[..], &encoded[..length]);
        }
    }

    #[test]
    fn arbitrary_replies_never_panic_and_accepted_frames_re_encode(input in any_input()) {
        let outcome = parse_whole(replies(), &input);
        assert_accepted_frames_re_encode(&outcome, replies, true);
    }

    #[test]
    fn arbitrary_requests_never_panic_and_accepted_frames_re_encode(input in any_input()) {
        let outcome = parse_whole(requests(), &input);
        for (frame, _) in &outcome.0 {
            let is_words = match frame {
                Frame::Array(elements) => elements.iter().all(|element| matches!(element, Frame::Bulk(_))),
                other => *other == Frame::NullArray,
            };
            prop_assert!(is_words, "requests are arrays of bulk strings: {:?}", frame);
        }
        assert_accepted_frames_re_encode(&outcome, requests, false);
    }

    #[test]
    fn chunking_never_changes_the_outcome(input in any_input(), sizes in chunk_sizes()) {
        prop_assert_eq!(parse_in_chunks(replies(), &input, &sizes), parse_whole(replies(), &input));
        prop_assert_eq!(parse_in_chunks(requests(), &input, &sizes), parse_whole(requests(), &input));
    }
}

// ---------------------------------------------------------------- hostile input

#[test]
fn huge_declared_lengths_fail_at_once_without_waiting_or_allocating() {
    let mut parser = replies();
    assert_eq!(parse_one(&mut parser, b"$4611686018427387904\r\n"), Err(ParseError::InvalidBulkLength));
    assert_eq!(parse_one(&mut parser, b"*4611686018427387904\r\n"), Err(ParseError::InvalidMultibulkLength));
    assert_eq!(parse_one(&mut parser, b"$99999999999999999999999\r\n"), Err(ParseError::InvalidBulkLength));
    assert_eq!(parse_one(&mut parser, b"*99999999999999999999999\r\n"), Err(ParseError::InvalidMultibulkLength));
}

#[test]
fn negative_lengths_other_than_minus_one_are_rejected() {
    let mut parser = replies();
    assert_eq!(parse_one(&mut parser, b"$-1\r\n"), Ok(Some(Frame::NullBulk)));
    assert_eq!(parse_one(&mut parser, b"*-1\r\n"), Ok(Some(Frame::NullArray)));
    assert_eq!(parse_one(&mut parser, b"$-2\r\n"), Err(ParseError::InvalidBulkLength));
    assert_eq!(parse_one(&mut parser, b"*-2\r\n"), Err(ParseError::InvalidMultibulkLength));
    assert_eq!(parse_one(&mut parser, b"$-9223372036854775808\r\n"), Err(ParseError::InvalidBulkLength));
}

#[test]
fn non_digit_lengths_and_integers_are_rejected() {
    let mut parser = replies();
    for header in [&b"$abc\r\n"[..], b"$\r\n", b"$+3\r\n", b"$03\r\n", b"$ 3\r\n", b"$3 \r\n", b"$-0\r\n"] {
        assert_eq!(parse_one(&mut parser, header), Err(ParseError::InvalidBulkLength), "{}", header.escape_ascii());
    }
    assert_eq!(parse_one(&mut parser, b"*x\r\n"), Err(ParseError::InvalidMultibulkLength));
    assert_eq!(parse_one(&mut parser, b":12a\r\n"), Err(ParseError::InvalidInteger));
    assert_eq!(parse_one(&mut parser, b":\r\n"), Err(ParseError::InvalidInteger));
    assert_eq!(parse_one(&mut parser, b":9223372036854775808\r\n"), Err(ParseError::InvalidInteger));
    assert_eq!(parse_one(&mut parser, b":-9223372036854775808\r\n"), Ok(Some(Frame::Integer(i64::MIN))));
}

#[test]
fn missing_or_broken_line_endings_are_rejected() {
    let mut parser = replies();
    assert_eq!(parse_one(&mut parser, b"+OK\rX"), Err(ParseError::StrayLineBreak));
    assert_eq!(parse_one(&mut parser, b"+O\nK\r\n"), Err(ParseError::StrayLineBreak));
    assert_eq!(parse_one(&mut parser, b"-ERR\nx\r\n"), Err(ParseError::StrayLineBreak));
    assert_eq!(parse_one(&mut parser, b"$3\nfoo\r\n"), Err(ParseError::InvalidBulkLength));
    assert_eq!(parse_one(&mut parser, b"$3\r\nfooXY"), Err(ParseError::UnterminatedBulk));
    assert_eq!(parse_one(&mut parser, b"$3\r\nfoo\n\r"), Err(ParseError::UnterminatedBulk));
    assert_eq!(parse_one(&mut parser, b"$3\r\nfoo\r"), Ok(None));
}

#[test]
fn unknown_type_bytes_are_rejected_in_replies() {
    let error = parse_one(&mut replies(), b"!oops\r\n").unwrap_err();
    assert_eq!(error, ParseError::UnknownType { got: b'!' });
    assert_eq!(error.to_string(), "Protocol error: unknown type byte '!'");
    assert_eq!(parse_one(&mut replies(), b"*1\r\n~x\r\n"), Err(ParseError::UnknownType { got: b'~' }));
}

#[test]
fn nesting_is_bounded_and_deep_input_cannot_overflow_the_stack() {
    let nested = |depth: usize| [b"*1\r\n".repeat(depth), b":1\r\n".to_vec()].concat();
    let frame = parse_one(&mut replies(), &nested(32)).unwrap().unwrap();
    assert_eq!(frame.to_bytes(), &nested(32)[..]);
    assert_eq!(parse_one(&mut replies(), &nested(33)), Err(ParseError::NestingTooDeep));
    assert_eq!(parse_one(&mut replies(), &nested(1_000_000)), Err(ParseError::NestingTooDeep));
    let empty_too_deep = [b"*1\r\n".repeat(32), b"*0\r\n".to_vec()].concat();
    assert_eq!(parse_one(&mut replies(), &empty_too_deep), Err(ParseError::NestingTooDeep));
}

#[test]
fn requests_accept_only_bulk_strings_inside_arrays() {
    let mut parser = requests();
    let error = parse_one(&mut parser, b"*2\r\n$3\r\nGET\r\n:1\r\n").unwrap_err();
    assert_eq!(error.to_string(), "Protocol error: expected '$', got ':'");
    assert_eq!(parse_one(&mut parser, b"*1\r\n*0\r\n"), Err(ParseError::ExpectedBulk { got: b'*' }));
    assert_eq!(parse_one(&mut parser, b"*1\r\n$-1\r\n"), Err(ParseError::InvalidBulkLength));
    assert_eq!(parse_one(&mut parser, b"*1\r\n$3\r\nGET\r\n"), Ok(Some(bulks(&["GET"]))));
}

// ---------------------------------------------------------------- limits

fn small_limits() -> ParseLimits {
    ParseLimits { bulk_size_bytes_max: 8, array_elements_max: 3, nesting_depth_max: 2, line_size_bytes_max: 16 }
}

#[test]
fn default_limits_are_redis_limits() {
    let limits = ParseLimits::default();
    assert_eq!(limits.bulk_size_bytes_max, 512 * 1024 * 1024);
    assert_eq!(limits.line_size_bytes_max, 64 * 1024);
    assert_eq!(limits.array_elements_max, 1024 * 1024);
    assert_eq!(limits.nesting_depth_max, 32);
}

#[test]
fn bulk_size_limit_is_inclusive() {
    let mut parser = Parser::for_replies(small_limits());
    assert_eq!(parse_one(&mut parser, b"$8\r\n12345678\r\n"), Ok(Some(Frame::bulk("12345678"))));
    assert_eq!(parse_one(&mut parser, b"$9\r\n"), Err(ParseError::InvalidBulkLength));
    let default_limit = b"$536870913\r\n";
    assert_eq!(parse_one(&mut replies(), default_limit), Err(ParseError::InvalidBulkLength));
    assert_eq!(parse_one(&mut replies(), b"$536870912\r\n"), Ok(None));
}

#[test]
fn array_length_limit_is_inclusive() {
    let mut parser = Parser::for_replies(small_limits());
    let three = Frame::array(vec![Frame::integer(1), Frame::integer(2), Frame::integer(3)]);
    assert_eq!(parse_one(&mut parser, b"*3\r\n:1\r\n:2\r\n:3\r\n"), Ok(Some(three)));
    assert_eq!(parse_one(&mut parser, b"*4\r\n"), Err(ParseError::InvalidMultibulkLength));
    assert_eq!(parse_one(&mut replies(), b"*1048577\r\n"), Err(ParseError::InvalidMultibulkLength));
    assert_eq!(parse_one(&mut replies(), b"*1048576\r\n"), Ok(None));
}

#[test]
fn nesting_limit_follows_the_configuration() {
    let mut parser = Parser::for_replies(small_limits());
    assert!(parse_one(&mut parser, b"*1\r\n*1\r\n:1\r\n").unwrap().is_some());
    assert_eq!(parse_one(&mut parser, b"*1\r\n*1\r\n*0\r\n"), Err(ParseError::NestingTooDeep));
}

#[test]
fn line_limit_applies_whether_or_not_the_line_end_has_arrived() {
    let mut parser = Parser::for_replies(small_limits());
    let sixteen = "a".repeat(16);
    let accepted = format!("+{sixteen}\r\n");
    assert_eq!(parse_one(&mut parser, accepted.as_bytes()), Ok(Some(Frame::simple(sixteen.clone()))));
    let complete_but_long = format!("+{sixteen}a\r\n");
    assert_eq!(parse_one(&mut parser, complete_but_long.as_bytes()), Err(ParseError::TooBigLine));
    // Sixteen bytes may still be followed by CRLF; the seventeenth cannot.
    assert_eq!(parse_one(&mut parser, format!("+{sixteen}").as_bytes()), Ok(None));
    assert_eq!(parse_one(&mut parser, format!("-{sixteen}a").as_bytes()), Err(ParseError::TooBigLine));
    assert_eq!(parse_one(&mut parser, format!(":{sixteen}a").as_bytes()), Err(ParseError::TooBigLine));
    let too_big_bulk_count = format!("${sixteen}a");
    assert_eq!(parse_one(&mut parser, too_big_bulk_count.as_bytes()), Err(ParseError::TooBigBulkCountString));
    let too_big_array_count = format!("*{sixteen}a");
    assert_eq!(parse_one(&mut parser, too_big_array_count.as_bytes()), Err(ParseError::TooBigMultibulkCountString));
    let too_big_inline = format!("{sixteen}a");
    let mut parser = Parser::for_requests(small_limits());
    assert_eq!(parse_one(&mut parser, too_big_inline.as_bytes()), Err(ParseError::TooBigInlineRequest));
    assert_eq!(
        parse_one(&mut parser, format!("{sixteen}\n").as_bytes()),
        Ok(Some(Frame::array(vec![Frame::bulk(sixteen)])))
    );
}

#[test]
fn default_line_limit_is_64_kib() {
    let mut parser = requests();
    assert_eq!(parse_one(&mut parser, &vec![b'a'; 64 * 1024]), Ok(None));
    assert_eq!(parse_one(&mut parser, &vec![b'a'; 64 * 1024 + 1]), Err(ParseError::TooBigInlineRequest));
}

// ---------------------------------------------------------------- inline commands

#[test]
fn inline_commands_become_arrays_of_bulk_strings() {
    let mut parser = requests();
    assert_eq!(parse_one(&mut parser, b"PING\r\n"), Ok(Some(bulks(&["PING"]))));
    assert_eq!(parse_one(&mut parser, b"SET a b\r\n"), Ok(Some(bulks(&["SET", "a", "b"]))));
    assert_eq!(parse_one(&mut parser, b"  GET \t key  \n"), Ok(Some(bulks(&["GET", "key"]))));
    // Anything not starting with '*' is inline, as in Redis.
    assert_eq!(parse_one(&mut parser, b"$3\r\n"), Ok(Some(bulks(&["$3"]))));
}

#[test]
fn inline_command_waits_for_its_line_feed() {
    let mut parser = requests();
    let mut buffer = BytesMut::from(&b"PIN"[..]);
    assert_eq!(parser.parse(&mut buffer), Ok(None));
    assert_eq!(&buffer[..], b"PIN");
    buffer.extend_from_slice(b"G\r");
    assert_eq!(parser.parse(&mut buffer), Ok(None));
    buffer.extend_from_slice(b"\nGET");
    assert_eq!(parser.parse(&mut buffer), Ok(Some(bulks(&["PING"]))));
    assert_eq!(&buffer[..], b"GET");
}

#[test]
fn blank_inline_lines_are_empty_requests() {
    let frame = parse_one(&mut requests(), b" \r\n").unwrap().unwrap();
    assert_eq!(frame, Frame::array(vec![]));
    assert_eq!(RawCommand::from_frame(frame), Ok(None));
}

#[test]
fn inline_and_multibulk_requests_pipeline_in_one_buffer() {
    let input = b"PING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nECHO hi\n";
    let (frames, error) = parse_whole(requests(), input);
    assert_eq!(error, None);
    let frames: Vec<Frame> = frames.into_iter().map(|(frame, _)| frame).collect();
    assert_eq!(frames, vec![bulks(&["PING"]), bulks(&["GET", "k"]), bulks(&["ECHO", "hi"])]);
}

#[test]
fn parse_error_reply_matches_redis_bytes() {
    let error = parse_one(&mut requests(), b"*1\r\n$x\r\n").unwrap_err();
    assert_eq!(error.reply().to_bytes(), &b"-ERR Protocol error: invalid bulk length\r\n"[..]);
}
