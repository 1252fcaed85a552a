//! Reading command arguments the way Redis does, with Redis' error replies.

use crate::resp::Frame;

/// `-ERR syntax error`.
pub(super) fn syntax_error() -> Frame {
    Frame::error("ERR syntax error")
}

/// `-ERR value is not an integer or out of range`.
pub(super) fn not_an_integer() -> Frame {
    Frame::error("ERR value is not an integer or out of range")
}

/// Whether `word` is `keyword`, ignoring ASCII case (`keyword` is given in capitals).
pub(super) fn is(word: &[u8], keyword: &str) -> bool {
    word.eq_ignore_ascii_case(keyword.as_bytes())
}

/// A decimal 64-bit integer, in the strict form Redis accepts: an optional minus sign, then
/// digits without a leading zero (other than "0" itself), nothing else.
pub(super) fn integer(word: &[u8]) -> Result<i64, Frame> {
    let digits = word.strip_prefix(b"-").unwrap_or(word);
    let canonical = match digits {
        [] => false,
        [b'0'] => digits.len() == word.len(),
        [b'0', ..] => false,
        _ => digits.iter().all(u8::is_ascii_digit),
    };
    if !canonical {
        return Err(not_an_integer());
    }
    std::str::from_utf8(word).ok().and_then(|text| text.parse().ok()).ok_or_else(not_an_integer)
}

/// A non-negative integer that fits a `usize`, or `error` if it is negative.
pub(super) fn count(word: &[u8], error: fn() -> Frame) -> Result<usize, Frame> {
    let value = integer(word)?;
    usize::try_from(value).map_err(|_| error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_parsed_strictly_like_redis() {
        assert_eq!(integer(b"0"), Ok(0));
        assert_eq!(integer(b"-12"), Ok(-12));
        assert_eq!(integer(b"9223372036854775807"), Ok(i64::MAX));
        assert_eq!(integer(b"-9223372036854775808"), Ok(i64::MIN));
        for bad in [&b""[..], b"-", b"+1", b"01", b"-0", b" 1", b"1x", b"9223372036854775808", b"\xff"] {
            assert_eq!(integer(bad), Err(not_an_integer()), "{}", bad.escape_ascii());
        }
    }

    #[test]
    fn keywords_match_without_regard_to_case() {
        assert!(is(b"withKeys", "WITHKEYS"));
        assert!(!is(b"withkey", "WITHKEYS"));
    }
}
