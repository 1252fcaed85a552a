//! The RESP2 value type and constructors for the replies a server sends most.

use bytes::Bytes;

/// One RESP2 value, as it travels between a client and the server.
///
/// Simple strings and errors are single lines: on the wire they cannot hold a
/// carriage return or a line feed. The constructors ([`Frame::simple`],
/// [`Frame::error`]) replace both with spaces, as Redis does for error replies,
/// and [`Frame::encode`] does the same for a frame built by hand, so a message
/// that carries user input can never break the framing of the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A status line such as `+OK`.
    Simple(Bytes),
    /// An error line such as `-ERR unknown command`; by convention its first
    /// word is an error code (`ERR`, `WRONGTYPE`, ...).
    Error(Bytes),
    /// A signed 64-bit integer such as `:42`.
    Integer(i64),
    /// A binary-safe string, prefixed by its length.
    Bulk(Bytes),
    /// The null bulk string `$-1`, which Redis replies for a missing key.
    NullBulk,
    /// An array of frames, which may themselves be arrays.
    Array(Vec<Frame>),
    /// The null array `*-1`.
    NullArray,
}

impl Frame {
    /// The `+OK` reply.
    pub fn ok() -> Frame {
        Frame::Simple(Bytes::from_static(b"OK"))
    }

    /// A simple string reply; carriage returns and line feeds become spaces.
    pub fn simple(text: impl Into<String>) -> Frame {
        Frame::Simple(single_line(text.into()))
    }

    /// An error reply; carriage returns and line feeds become spaces.
    ///
    /// The message should start with an error code, as in
    /// `Frame::error("ERR unknown command 'FOO'")`, because clients such as
    /// redis-cli show the first word as the kind of error.
    pub fn error(message: impl Into<String>) -> Frame {
        Frame::Error(single_line(message.into()))
    }

    /// An integer reply.
    pub fn integer(value: i64) -> Frame {
        Frame::Integer(value)
    }

    /// A bulk string reply.
    pub fn bulk(data: impl Into<Bytes>) -> Frame {
        Frame::Bulk(data.into())
    }

    /// The null bulk string, which Redis replies for a missing key.
    pub fn null() -> Frame {
        Frame::NullBulk
    }

    /// The null array.
    pub fn null_array() -> Frame {
        Frame::NullArray
    }

    /// An array reply.
    pub fn array(elements: Vec<Frame>) -> Frame {
        Frame::Array(elements)
    }

    /// The byte that starts this frame on the wire (`+`, `-`, `:`, `$` or `*`).
    pub fn type_byte(&self) -> u8 {
        match self {
            Frame::Simple(_) => b'+',
            Frame::Error(_) => b'-',
            Frame::Integer(_) => b':',
            Frame::Bulk(_) | Frame::NullBulk => b'$',
            Frame::Array(_) | Frame::NullArray => b'*',
        }
    }
}

/// Whether `byte` would end a line early if written inside one.
pub(super) fn is_line_break(byte: u8) -> bool {
    byte == b'\r' || byte == b'\n'
}

fn single_line(text: String) -> Bytes {
    if text.bytes().any(is_line_break) {
        Bytes::from(text.replace(['\r', '\n'], " "))
    } else {
        Bytes::from(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_constructor_replaces_line_breaks_with_spaces() {
        let frame = Frame::error("ERR bad key 'a\r\nb'");
        assert_eq!(frame, Frame::Error(Bytes::from_static(b"ERR bad key 'a  b'")));
    }

    #[test]
    fn simple_constructor_keeps_clean_text_unchanged() {
        assert_eq!(Frame::simple("PONG"), Frame::Simple(Bytes::from_static(b"PONG")));
        assert_eq!(Frame::simple("a\nb"), Frame::Simple(Bytes::from_static(b"a b")));
    }

    #[test]
    fn type_byte_names_the_wire_prefix_of_each_kind() {
        assert_eq!(Frame::ok().type_byte(), b'+');
        assert_eq!(Frame::error("ERR x").type_byte(), b'-');
        assert_eq!(Frame::integer(1).type_byte(), b':');
        assert_eq!(Frame::bulk("x").type_byte(), b'$');
        assert_eq!(Frame::null().type_byte(), b'$');
        assert_eq!(Frame::array(vec![]).type_byte(), b'*');
        assert_eq!(Frame::null_array().type_byte(), b'*');
    }
}
