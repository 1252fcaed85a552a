//! The incremental parser: it validates the frame at the front of a buffer as
//! its bytes arrive, then cuts exactly that frame off the buffer.
//!
//! Validation is resumable. The parser remembers how many bytes of the pending
//! frame it has validated, the [`Token`]s found in them, how many elements
//! each open array still expects, and how far it searched the current line for
//! its end. Each call continues from there, so a frame that arrives in many
//! small chunks costs time linear in its size, however it is split. Arrays are
//! tracked on an explicit stack, so hostile nesting cannot exhaust the call
//! stack, and nothing is allocated for a declared length before the data
//! behind it has arrived.

use std::mem;
use std::ops::Range;

use bytes::BytesMut;

use super::error::ParseError;
use super::frame::Frame;
use super::token::{assemble, parse_decimal, Token};

/// Bounds on what a peer may send; anything beyond them is a [`ParseError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseLimits {
    /// The longest bulk string, like Redis' `proto-max-bulk-len`.
    pub bulk_size_bytes_max: usize,
    /// The most elements one array may declare.
    pub array_elements_max: usize,
    /// The deepest nesting of arrays; a top-level array has depth 1. Building
    /// and encoding a frame recurse once per level, so keep this small.
    pub nesting_depth_max: usize,
    /// The longest line, excluding its line ending: an inline command, a
    /// simple string, an error, an integer or a length header. Redis calls
    /// this `PROTO_INLINE_MAX_SIZE`. Inline commands are bounded by this limit
    /// alone, not by [`ParseLimits::array_elements_max`].
    pub line_size_bytes_max: usize,
}

impl Default for ParseLimits {
    /// Redis' limits: 512 MiB bulk strings, 64 KiB lines.
    fn default() -> ParseLimits {
        ParseLimits {
            bulk_size_bytes_max: 512 * 1024 * 1024,
            array_elements_max: 1024 * 1024,
            nesting_depth_max: 32,
            line_size_bytes_max: 64 * 1024,
        }
    }
}

/// Which side of a connection the parser serves; it decides what is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    /// Requests as a Redis server reads them: an array of bulk strings, or an
    /// inline command (any frame that does not start with `*`).
    Request,
    /// Any RESP2 frame, as a client reads replies.
    Reply,
}

/// The kinds of line-based frames, named by their type byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Simple,
    Error,
    Integer,
    Bulk,
    Array,
}

impl Kind {
    fn line_too_big(self) -> ParseError {
        match self {
            Kind::Bulk => ParseError::TooBigBulkCountString,
            Kind::Array => ParseError::TooBigMultibulkCountString,
            Kind::Simple | Kind::Error | Kind::Integer => ParseError::TooBigLine,
        }
    }
}

/// How far validation of the frame at the front of the buffer has come.
#[derive(Debug, Default)]
struct Progress {
    /// The validated pieces, in pre-order.
    tokens: Vec<Token>,
    /// Bytes at the front of the buffer that hold validated tokens.
    validated_bytes: usize,
    /// For each array not yet complete, outermost first, how many of its
    /// elements are still to come.
    open_arrays: Vec<usize>,
    /// The buffer offset up to which the current line was searched for its
    /// end in vain, so that a long line arriving in small chunks is scanned
    /// once.
    searched_bytes: usize,
}

impl Progress {
    fn is_complete(&self) -> bool {
        !self.tokens.is_empty() && self.open_arrays.is_empty()
    }

    /// Counts one finished element against the open arrays, closing every
    /// array that it completes.
    fn close_completed_arrays(&mut self) {
        while let Some(remaining) = self.open_arrays.last_mut() {
            *remaining -= 1;
            if *remaining > 0 {
                return;
            }
            self.open_arrays.pop();
        }
    }
}

/// An incremental RESP2 parser for one connection's receive buffer.
///
/// Call [`Parser::parse`] whenever bytes are appended to the buffer, and again
/// after each frame it returns, since one read may carry several pipelined
/// frames. Use one parser per buffer: it remembers how much of that buffer it
/// has validated, so only the parser may remove bytes from it.
#[derive(Debug)]
pub struct Parser {
    limits: ParseLimits,
    dialect: Dialect,
    progress: Progress,
}

impl Parser {
    /// A parser for a server reading requests, which accepts what Redis
    /// accepts: arrays of bulk strings and inline commands (`SET a b\r\n`, as
    /// telnet sends), which become arrays of bulk strings.
    pub fn for_requests(limits: ParseLimits) -> Parser {
        Parser::new(limits, Dialect::Request)
    }

    /// A parser for a client reading replies, which accepts any RESP2 frame.
    pub fn for_replies(limits: ParseLimits) -> Parser {
        Parser::new(limits, Dialect::Reply)
    }

    fn new(limits: ParseLimits, dialect: Dialect) -> Parser {
        Parser { limits, dialect, progress: Progress::default() }
    }

    /// Takes the frame at the front of `buffer`.
    ///
    /// Returns `Ok(Some(frame))` and removes exactly that frame's bytes;
    /// `Ok(None)` when the frame has not fully arrived, leaving `buffer`
    /// untouched; or an error for malformed input, after which the connection
    /// must be closed (see [`ParseError`]).
    pub fn parse(&mut self, buffer: &mut BytesMut) -> Result<Option<Frame>, ParseError> {
        let seen_bytes = self.progress.validated_bytes.max(self.progress.searched_bytes);
        assert!(buffer.len() >= seen_bytes, "bytes the parser validated were removed from its buffer by someone else");
        match self.advance(buffer) {
            Ok(true) => Ok(Some(self.take_frame(buffer))),
            Ok(false) => Ok(None),
            Err(error) => {
                self.progress = Progress::default();
                Err(error)
            }
        }
    }

    /// Validates as much of the pending frame as has arrived; true once the
    /// whole frame is validated.
    fn advance(&mut self, buffer: &[u8]) -> Result<bool, ParseError> {
        while !self.progress.is_complete() {
            let start = self.progress.validated_bytes;
            let Some(&type_byte) = buffer.get(start) else {
                return Ok(false);
            };
            let end = if self.is_inline(type_byte) {
                self.read_inline(buffer, start)?
            } else {
                self.read_item(buffer, start, type_byte)?
            };
            let Some(end) = end else {
                return Ok(false);
            };
            debug_assert!(end > start, "every token consumes bytes");
            self.progress.validated_bytes = end;
        }
        Ok(true)
    }

    fn take_frame(&mut self, buffer: &mut BytesMut) -> Frame {
        let progress = mem::take(&mut self.progress);
        let bytes = buffer.split_to(progress.validated_bytes).freeze();
        assemble(&bytes, progress.tokens)
    }

    fn is_inline(&self, type_byte: u8) -> bool {
        let at_frame_start = self.progress.tokens.is_empty();
        self.dialect == Dialect::Request && at_frame_start && type_byte != b'*'
    }

    /// Which frame `type_byte` starts, if it may start one here.
    fn kind(&self, type_byte: u8) -> Result<Kind, ParseError> {
        let inside_request = self.dialect == Dialect::Request && !self.progress.tokens.is_empty();
        match type_byte {
            // Redis accepts only bulk strings inside a request array.
            b'$' => Ok(Kind::Bulk),
            _ if inside_request => Err(ParseError::ExpectedBulk { got: type_byte }),
            b'+' => Ok(Kind::Simple),
            b'-' => Ok(Kind::Error),
            b':' => Ok(Kind::Integer),
            b'*' => Ok(Kind::Array),
            _ => Err(ParseError::UnknownType { got: type_byte }),
        }
    }

    /// Validates the line-based frame at `start`; returns where it ends, or
    /// None if it has not fully arrived.
    fn read_item(&mut self, buffer: &[u8], start: usize, type_byte: u8) -> Result<Option<usize>, ParseError> {
        let kind = self.kind(type_byte)?;
        let content_start = start + 1;
        let Some(line_end) = self.find_line_end(buffer, content_start, kind.line_too_big())? else {
            return Ok(None);
        };
        let line = &buffer[content_start..line_end];
        let after_line = line_end + 2;
        let (token, end) = match kind {
            Kind::Simple => (Token::Simple(single_line(line, content_start)?), after_line),
            Kind::Error => (Token::Error(single_line(line, content_start)?), after_line),
            Kind::Integer => {
                let value = parse_decimal(line).ok_or(ParseError::InvalidInteger)?;
                (Token::Integer(value), after_line)
            }
            Kind::Bulk => match self.bulk_length(line)? {
                None => (Token::NullBulk, after_line),
                Some(length) => match bulk_end(buffer, after_line, length)? {
                    None => return Ok(None),
                    Some(end) => (Token::Bulk(after_line..end - 2), end),
                },
            },
            Kind::Array => (self.array_token(line)?, after_line),
        };
        self.accept(token)?;
        Ok(Some(end))
    }

    /// Reads a bulk length header: None for the null bulk string.
    fn bulk_length(&self, line: &[u8]) -> Result<Option<usize>, ParseError> {
        let declared = parse_decimal(line).ok_or(ParseError::InvalidBulkLength)?;
        // Redis rejects a null bulk string inside a request.
        if declared == -1 && self.dialect == Dialect::Reply {
            return Ok(None);
        }
        match usize::try_from(declared) {
            Ok(length) if length <= self.limits.bulk_size_bytes_max => Ok(Some(length)),
            _ => Err(ParseError::InvalidBulkLength),
        }
    }

    fn array_token(&self, line: &[u8]) -> Result<Token, ParseError> {
        let declared = parse_decimal(line).ok_or(ParseError::InvalidMultibulkLength)?;
        if declared == -1 {
            return Ok(Token::NullArray);
        }
        match usize::try_from(declared) {
            Ok(length) if length <= self.limits.array_elements_max => Ok(Token::Array(length)),
            _ => Err(ParseError::InvalidMultibulkLength),
        }
    }

    /// Validates the inline command at `start`, recording it as an array of
    /// bulk strings split on whitespace; returns where it ends, or None if its
    /// line feed has not arrived.
    fn read_inline(&mut self, buffer: &[u8], start: usize) -> Result<Option<usize>, ParseError> {
        let too_big = ParseError::TooBigInlineRequest;
        let Some(line_feed) = self.find_byte(buffer, start, b'\n', too_big)? else {
            return Ok(None);
        };
        // A carriage return before the line feed is whitespace, so splitting
        // drops it along with the spaces.
        let words = word_ranges(&buffer[start..line_feed], start);
        self.accept(Token::Array(words.len()))?;
        for word in words {
            self.accept(Token::Bulk(word))?;
        }
        Ok(Some(line_feed + 1))
    }

    /// Records a validated token and updates the open arrays.
    fn accept(&mut self, token: Token) -> Result<(), ParseError> {
        let progress = &mut self.progress;
        if matches!(token, Token::Array(_)) && progress.open_arrays.len() >= self.limits.nesting_depth_max {
            return Err(ParseError::NestingTooDeep);
        }
        let opens_array = match token {
            Token::Array(length) if length > 0 => Some(length),
            _ => None,
        };
        progress.tokens.push(token);
        match opens_array {
            Some(length) => progress.open_arrays.push(length),
            None => progress.close_completed_arrays(),
        }
        Ok(())
    }

    /// Finds the CRLF that ends the line starting at `content_start` and
    /// returns the offset of its CR, or None if it has not arrived yet.
    fn find_line_end(
        &mut self,
        buffer: &[u8],
        content_start: usize,
        too_big: ParseError,
    ) -> Result<Option<usize>, ParseError> {
        let Some(carriage_return) = self.find_byte(buffer, content_start, b'\r', too_big)? else {
            return Ok(None);
        };
        match buffer.get(carriage_return + 1) {
            Some(b'\n') => Ok(Some(carriage_return)),
            Some(_) => Err(ParseError::StrayLineBreak),
            None => {
                // Resume at the CR when its LF arrives.
                self.progress.searched_bytes = carriage_return;
                Ok(None)
            }
        }
    }

    /// Finds the first `wanted` byte of the line starting at `content_start`,
    /// or None if it has not arrived yet. A line whose content exceeds
    /// [`ParseLimits::line_size_bytes_max`] is `too_big`, whether or not its
    /// end has arrived, so the outcome does not depend on how input is split.
    fn find_byte(
        &mut self,
        buffer: &[u8],
        content_start: usize,
        wanted: u8,
        too_big: ParseError,
    ) -> Result<Option<usize>, ParseError> {
        let last_allowed = content_start.saturating_add(self.limits.line_size_bytes_max);
        // Bytes before `searched_bytes` belong to an earlier line or were
        // already searched; neither holds the end of this line.
        let search_start = self.progress.searched_bytes.max(content_start);
        let search_end = buffer.len().min(last_allowed.saturating_add(1));
        let found = buffer[search_start..search_end].iter().position(|&byte| byte == wanted);
        if let Some(offset) = found {
            return Ok(Some(search_start + offset));
        }
        if buffer.len() > last_allowed {
            return Err(too_big);
        }
        self.progress.searched_bytes = search_end;
        Ok(None)
    }
}

/// The range of a simple string or error line, which must not hold a line
/// feed: the spec forbids it, and it could not be encoded back.
fn single_line(line: &[u8], content_start: usize) -> Result<Range<usize>, ParseError> {
    if line.contains(&b'\n') {
        return Err(ParseError::StrayLineBreak);
    }
    Ok(content_start..content_start + line.len())
}

/// Where the bulk string whose data starts at `data_start` ends, including
/// its CRLF; None if it has not fully arrived.
fn bulk_end(buffer: &[u8], data_start: usize, length: usize) -> Result<Option<usize>, ParseError> {
    // Only a limit near usize::MAX could overflow; treat that as too long.
    let end = data_start
        .checked_add(length)
        .and_then(|data_end| data_end.checked_add(2))
        .ok_or(ParseError::InvalidBulkLength)?;
    let Some(terminator) = buffer.get(end - 2..end) else {
        return Ok(None);
    };
    if terminator != b"\r\n" {
        return Err(ParseError::UnterminatedBulk);
    }
    Ok(Some(end))
}

/// The ranges of the whitespace-separated words of `line`, shifted by
/// `offset` so that they index the buffer.
fn word_ranges(line: &[u8], offset: usize) -> Vec<Range<usize>> {
    let mut words = Vec::new();
    let mut word_start = None;
    for (index, byte) in line.iter().enumerate() {
        match (byte.is_ascii_whitespace(), word_start) {
            (true, Some(first)) => {
                words.push(offset + first..offset + index);
                word_start = None;
            }
            (false, None) => word_start = Some(index),
            _ => {}
        }
    }
    if let Some(first) = word_start {
        words.push(offset + first..offset + line.len());
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk_array(elements: usize) -> Vec<u8> {
        let mut bytes = format!("*{elements}\r\n").into_bytes();
        for _ in 0..elements {
            bytes.extend_from_slice(b"$1\r\nx\r\n");
        }
        bytes
    }

    #[test]
    fn large_array_in_small_chunks_resumes_where_it_stopped() {
        let input = bulk_array(100_000);
        let mut parser = Parser::for_replies(ParseLimits::default());
        let mut buffer = BytesMut::new();
        let mut validated_before = 0;
        for chunk in input.chunks(5) {
            buffer.extend_from_slice(chunk);
            if let Some(frame) = parser.parse(&mut buffer).unwrap() {
                assert!(matches!(frame, Frame::Array(elements) if elements.len() == 100_000));
                assert!(buffer.is_empty());
                return;
            }
            // Validation only moves forward, and stops at most one element
            // (7 bytes) short of what has arrived: earlier elements are never
            // validated twice.
            let validated = parser.progress.validated_bytes;
            assert!(validated >= validated_before);
            assert!(buffer.len() - validated < 7, "{} of {}", validated, buffer.len());
            validated_before = validated;
        }
        panic!("the complete array was never returned");
    }

    #[test]
    fn long_line_arriving_byte_by_byte_is_searched_once() {
        let mut parser = Parser::for_replies(ParseLimits::default());
        let mut buffer = BytesMut::from(&b"+"[..]);
        for _ in 0..50_000 {
            buffer.extend_from_slice(b"a");
            assert_eq!(parser.parse(&mut buffer), Ok(None));
            assert_eq!(parser.progress.searched_bytes, buffer.len());
        }
        buffer.extend_from_slice(b"\r");
        assert_eq!(parser.parse(&mut buffer), Ok(None));
        buffer.extend_from_slice(b"\n");
        let frame = parser.parse(&mut buffer).unwrap().unwrap();
        assert!(matches!(frame, Frame::Simple(text) if text.len() == 50_000));
    }

    #[test]
    fn large_bulk_in_chunks_stays_pending_until_its_terminator_arrives() {
        let mut parser = Parser::for_replies(ParseLimits::default());
        let mut buffer = BytesMut::from(&b"$1000000\r\n"[..]);
        for _ in 0..1_000_000 / 1000 {
            assert_eq!(parser.parse(&mut buffer), Ok(None));
            assert!(parser.progress.tokens.is_empty());
            buffer.extend_from_slice(&[b'z'; 1000]);
        }
        buffer.extend_from_slice(b"\r\n");
        let frame = parser.parse(&mut buffer).unwrap().unwrap();
        assert!(matches!(frame, Frame::Bulk(data) if data.len() == 1_000_000));
    }

    #[test]
    fn progress_is_reset_after_each_frame_and_each_error() {
        let mut parser = Parser::for_replies(ParseLimits::default());
        let mut buffer = BytesMut::from(&b"*2\r\n:1\r\n:2\r\n+par"[..]);
        assert!(parser.parse(&mut buffer).unwrap().is_some());
        assert_eq!(parser.progress.validated_bytes, 0);
        assert!(parser.progress.tokens.is_empty());
        assert_eq!(parser.parse(&mut buffer), Ok(None));
        buffer.extend_from_slice(b"\rX");
        assert_eq!(parser.parse(&mut buffer), Err(ParseError::StrayLineBreak));
        assert_eq!(parser.progress.searched_bytes, 0);
        assert!(parser.progress.open_arrays.is_empty());
    }

    #[test]
    fn word_ranges_split_on_any_run_of_whitespace() {
        let line = b"  SET\tkey  value \r";
        let words: Vec<&[u8]> =
            word_ranges(line, 10).into_iter().map(|range| &line[range.start - 10..range.end - 10]).collect();
        assert_eq!(words, vec![&b"SET"[..], b"key", b"value"]);
        assert!(word_ranges(b" \t\r", 0).is_empty());
    }
}
