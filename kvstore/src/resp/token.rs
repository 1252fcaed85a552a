//! The pieces the parser validates one at a time, and how a complete frame is
//! built from them.
//!
//! The parser records each validated piece as a [`Token`] holding offsets
//! into the buffer rather than bytes, so that it can stop when input runs out
//! and resume later without copying. Once the whole frame has arrived, it is
//! cut off the buffer and [`assemble`] turns the tokens into a [`Frame`] whose
//! strings are zero-copy slices of that cut.

use std::ops::Range;

use bytes::Bytes;

use super::frame::Frame;

/// One validated piece of a frame, in pre-order: an array token is followed
/// by the tokens of its elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Token {
    /// A simple string; the range excludes the type byte and the CRLF.
    Simple(Range<usize>),
    /// An error line; the range excludes the type byte and the CRLF.
    Error(Range<usize>),
    Integer(i64),
    /// A bulk string; the range covers its data only.
    Bulk(Range<usize>),
    NullBulk,
    /// An array header with its number of elements.
    Array(usize),
    NullArray,
}

/// Builds the frame that `tokens` describe, from the bytes of that frame.
///
/// The tokens must describe exactly one complete frame within `bytes`, as the
/// parser guarantees; anything else is a bug in the parser, hence the panics.
/// Recursion is bounded by the nesting depth the parser enforced.
pub(super) fn assemble(bytes: &Bytes, tokens: Vec<Token>) -> Frame {
    let mut tokens = tokens.into_iter();
    let frame = assemble_next(bytes, &mut tokens);
    assert!(tokens.next().is_none(), "tokens left after a complete frame");
    frame
}

fn assemble_next(bytes: &Bytes, tokens: &mut std::vec::IntoIter<Token>) -> Frame {
    let token = tokens.next().expect("the parser validated every element of the frame");
    match token {
        Token::Simple(range) => Frame::Simple(bytes.slice(range)),
        Token::Error(range) => Frame::Error(bytes.slice(range)),
        Token::Integer(value) => Frame::Integer(value),
        Token::Bulk(range) => Frame::Bulk(bytes.slice(range)),
        Token::NullBulk => Frame::NullBulk,
        // Collecting allocates `length` elements at once, which is safe here:
        // every one of them has already arrived and been validated.
        Token::Array(length) => Frame::Array((0..length).map(|_| assemble_next(bytes, tokens)).collect()),
        Token::NullArray => Frame::NullArray,
    }
}

/// Parses a decimal integer as Redis' `string2ll` does: an optional minus
/// sign, then digits without a leading zero ("0" itself excepted). Plus signs,
/// spaces, "-0" and overflow are rejected, so every accepted line is the one
/// [`Frame::encode`] writes for its value.
pub(super) fn parse_decimal(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    match digits {
        [b'0'] if !negative => return Some(0),
        [b'1'..=b'9', ..] => {}
        _ => return None,
    }
    let mut magnitude: u64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude.checked_mul(10)?.checked_add(u64::from(digit - b'0'))?;
    }
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_accepts_canonical_integers() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"7"), Some(7));
        assert_eq!(parse_decimal(b"-1"), Some(-1));
        assert_eq!(parse_decimal(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_decimal(b"-9223372036854775808"), Some(i64::MIN));
    }

    #[test]
    fn decimal_rejects_non_canonical_and_overflowing_text() {
        for text in [
            &b""[..],
            b"-",
            b"+1",
            b" 1",
            b"1 ",
            b"01",
            b"-0",
            b"-01",
            b"1a",
            b"0x10",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"99999999999999999999999",
        ] {
            assert_eq!(parse_decimal(text), None, "{:?}", text.escape_ascii().to_string());
        }
    }

    #[test]
    fn assemble_builds_nested_arrays_from_pre_order_tokens() {
        let bytes = Bytes::from_static(b"*2\r\n*1\r\n+OK\r\n$1\r\nx\r\n");
        let tokens = vec![Token::Array(2), Token::Array(1), Token::Simple(9..11), Token::Bulk(17..18)];
        let expected = Frame::Array(vec![
            Frame::Array(vec![Frame::Simple(Bytes::from_static(b"OK"))]),
            Frame::Bulk(Bytes::from_static(b"x")),
        ]);
        assert_eq!(assemble(&bytes, tokens), expected);
    }
}
