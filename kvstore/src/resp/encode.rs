//! Byte-exact RESP2 encoding.

use bytes::{BufMut, Bytes, BytesMut};

use super::frame::{is_line_break, Frame};

const LINE_END: &[u8] = b"\r\n";

impl Frame {
    /// Appends the RESP2 encoding of this frame to `out`.
    ///
    /// The encoding is canonical (no leading zeros, no plus signs), so a frame
    /// parsed by [`Parser::for_replies`](super::Parser::for_replies) encodes
    /// back to exactly the bytes it was parsed from. Carriage returns and line
    /// feeds inside a simple string or an error are written as spaces (see
    /// [`Frame`]). Nested arrays recurse once per level; frames from the parser
    /// are bounded by [`ParseLimits::nesting_depth_max`](super::ParseLimits).
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Frame::Simple(text) => put_line(out, b'+', text),
            Frame::Error(message) => put_line(out, b'-', message),
            Frame::Integer(value) => {
                out.put_u8(b':');
                put_signed(out, *value);
                out.put_slice(LINE_END);
            }
            Frame::Bulk(data) => {
                put_header(out, b'$', data.len());
                out.put_slice(data);
                out.put_slice(LINE_END);
            }
            Frame::NullBulk => out.put_slice(b"$-1\r\n"),
            Frame::Array(elements) => {
                put_header(out, b'*', elements.len());
                for element in elements {
                    element.encode(out);
                }
            }
            Frame::NullArray => out.put_slice(b"*-1\r\n"),
        }
    }

    /// The RESP2 encoding of this frame, in a buffer of its own.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.freeze()
    }
}

fn put_line(out: &mut BytesMut, type_byte: u8, text: &[u8]) {
    out.put_u8(type_byte);
    if text.iter().copied().any(is_line_break) {
        out.extend(text.iter().map(|&byte| if is_line_break(byte) { b' ' } else { byte }));
    } else {
        out.put_slice(text);
    }
    out.put_slice(LINE_END);
}

fn put_header(out: &mut BytesMut, type_byte: u8, length: usize) {
    out.put_u8(type_byte);
    // A length always fits: usize is at most 64 bits on every supported target.
    put_unsigned(out, length as u64);
    out.put_slice(LINE_END);
}

fn put_signed(out: &mut BytesMut, value: i64) {
    if value < 0 {
        out.put_u8(b'-');
    }
    // unsigned_abs, unlike abs, is defined for i64::MIN.
    put_unsigned(out, value.unsigned_abs());
}

fn put_unsigned(out: &mut BytesMut, mut value: u64) {
    // u64::MAX has 20 decimal digits.
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.put_slice(&digits[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(frame: &Frame) -> Bytes {
        frame.to_bytes()
    }

    #[test]
    fn scalars_encode_byte_exact() {
        assert_eq!(encoded(&Frame::ok()), &b"+OK\r\n"[..]);
        assert_eq!(encoded(&Frame::error("ERR no")), &b"-ERR no\r\n"[..]);
        assert_eq!(encoded(&Frame::integer(0)), &b":0\r\n"[..]);
        assert_eq!(encoded(&Frame::integer(-42)), &b":-42\r\n"[..]);
        assert_eq!(encoded(&Frame::bulk("foo")), &b"$3\r\nfoo\r\n"[..]);
        assert_eq!(encoded(&Frame::bulk("")), &b"$0\r\n\r\n"[..]);
        assert_eq!(encoded(&Frame::null()), &b"$-1\r\n"[..]);
        assert_eq!(encoded(&Frame::null_array()), &b"*-1\r\n"[..]);
    }

    #[test]
    fn integer_extremes_encode_in_full() {
        assert_eq!(encoded(&Frame::integer(i64::MIN)), &b":-9223372036854775808\r\n"[..]);
        assert_eq!(encoded(&Frame::integer(i64::MAX)), &b":9223372036854775807\r\n"[..]);
    }

    #[test]
    fn bulk_strings_are_binary_safe() {
        let frame = Frame::bulk(Bytes::from_static(b"a\r\nb\0"));
        assert_eq!(encoded(&frame), &b"$5\r\na\r\nb\0\r\n"[..]);
    }

    #[test]
    fn nested_arrays_encode_depth_first() {
        let frame = Frame::array(vec![
            Frame::bulk("GET"),
            Frame::array(vec![Frame::integer(1), Frame::null()]),
            Frame::array(vec![]),
        ]);
        assert_eq!(encoded(&frame), &b"*3\r\n$3\r\nGET\r\n*2\r\n:1\r\n$-1\r\n*0\r\n"[..]);
    }

    #[test]
    fn hand_built_lines_with_line_breaks_cannot_break_framing() {
        let frame = Frame::Error(Bytes::from_static(b"ERR a\r\n+OK"));
        assert_eq!(encoded(&frame), &b"-ERR a  +OK\r\n"[..]);
    }

    #[test]
    fn encode_appends_after_existing_bytes() {
        let mut out = BytesMut::from(&b"+OK\r\n"[..]);
        Frame::integer(7).encode(&mut out);
        assert_eq!(out, &b"+OK\r\n:7\r\n"[..]);
    }
}
