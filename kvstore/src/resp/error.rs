//! What can be wrong with the bytes a peer sent.

use super::frame::Frame;

/// Malformed or oversized input. The messages follow Redis' protocol errors.
///
/// A parse error leaves the stream at an unknown position, so the connection
/// cannot continue: the server replies [`ParseError::reply`] and closes it, as
/// Redis does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A bulk length that is not a number, is negative (other than the null
    /// bulk `$-1`) or exceeds [`ParseLimits::bulk_size_bytes_max`](super::ParseLimits).
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// An array length that is not a number, is negative (other than the null
    /// array `*-1`) or exceeds [`ParseLimits::array_elements_max`](super::ParseLimits).
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// An integer frame whose line is not a decimal `i64`.
    #[error("Protocol error: invalid integer")]
    InvalidInteger,
    /// A bulk length line longer than the line limit.
    #[error("Protocol error: too big bulk count string")]
    TooBigBulkCountString,
    /// An array length line longer than the line limit.
    #[error("Protocol error: too big mbulk count string")]
    TooBigMultibulkCountString,
    /// An inline command longer than the line limit.
    #[error("Protocol error: too big inline request")]
    TooBigInlineRequest,
    /// A simple string, error or integer line longer than the line limit.
    #[error("Protocol error: too big line")]
    TooBigLine,
    /// A carriage return not followed by a line feed, or a line feed inside a
    /// simple string or an error.
    #[error("Protocol error: CR or LF inside a line")]
    StrayLineBreak,
    /// A bulk string whose declared length is not followed by CRLF.
    #[error("Protocol error: bulk string not followed by CRLF")]
    UnterminatedBulk,
    /// A request array element that is not a bulk string.
    #[error("Protocol error: expected '$', got '{}'", .got.escape_ascii())]
    ExpectedBulk {
        /// The type byte that arrived instead.
        got: u8,
    },
    /// A byte that starts no RESP2 frame.
    #[error("Protocol error: unknown type byte '{}'", .got.escape_ascii())]
    UnknownType {
        /// The byte that arrived.
        got: u8,
    },
    /// Arrays nested deeper than [`ParseLimits::nesting_depth_max`](super::ParseLimits).
    #[error("Protocol error: nesting too deep")]
    NestingTooDeep,
}

impl ParseError {
    /// The error reply to send before closing the connection, as Redis
    /// words it (`-ERR Protocol error: ...`).
    pub fn reply(&self) -> Frame {
        Frame::error(format!("ERR {self}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_redis_wording() {
        assert_eq!(ParseError::InvalidBulkLength.to_string(), "Protocol error: invalid bulk length");
        assert_eq!(ParseError::InvalidMultibulkLength.to_string(), "Protocol error: invalid multibulk length");
        assert_eq!(ParseError::TooBigBulkCountString.to_string(), "Protocol error: too big bulk count string");
        assert_eq!(ParseError::ExpectedBulk { got: b'x' }.to_string(), "Protocol error: expected '$', got 'x'");
    }

    #[test]
    fn unprintable_bytes_are_escaped_so_the_reply_stays_one_line() {
        let message = ParseError::UnknownType { got: b'\n' }.to_string();
        assert_eq!(message, "Protocol error: unknown type byte '\\n'");
        let message = ParseError::ExpectedBulk { got: 0xff }.to_string();
        assert_eq!(message, "Protocol error: expected '$', got '\\xff'");
    }

    #[test]
    fn reply_is_an_err_error_frame() {
        let reply = ParseError::NestingTooDeep.reply();
        assert_eq!(reply.to_bytes(), &b"-ERR Protocol error: nesting too deep\r\n"[..]);
    }
}
