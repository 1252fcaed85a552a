//! Splitting a parsed request into a command name and its arguments.

use bytes::Bytes;

use super::frame::Frame;

/// A client request as words: the command name and its arguments, not yet
/// interpreted. Redis matches command names without regard to ASCII case, so
/// compare with `name.eq_ignore_ascii_case(b"GET")`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawCommand {
    /// The first word, such as `SET`.
    pub name: Bytes,
    /// The words after the name.
    pub arguments: Vec<Bytes>,
}

/// A request frame that is not an array of bulk strings.
///
/// [`Parser::for_requests`](super::Parser::for_requests) already rejects such
/// input, so this error arises only for frames from elsewhere. Like a
/// [`ParseError`](super::ParseError), it ends the connection after the reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The request is not an array.
    #[error("Protocol error: expected '*', got '{}'", .got.escape_ascii())]
    NotArray {
        /// The type byte of the frame that arrived instead.
        got: u8,
    },
    /// An element of the request is not a bulk string.
    #[error("Protocol error: expected '$', got '{}'", .got.escape_ascii())]
    ExpectedBulk {
        /// The type byte of the element that arrived instead.
        got: u8,
    },
    /// An element of the request is the null bulk string.
    #[error("Protocol error: invalid bulk length")]
    NullArgument,
}

impl RequestError {
    /// The error reply to send before closing the connection.
    pub fn reply(&self) -> Frame {
        Frame::error(format!("ERR {self}"))
    }
}

impl RawCommand {
    /// A command with the given name and arguments, as a client builds it.
    pub fn new(name: impl Into<Bytes>, arguments: Vec<Bytes>) -> RawCommand {
        RawCommand { name: name.into(), arguments }
    }

    /// Splits a request frame into words.
    ///
    /// Returns `Ok(None)` for an empty request (`*0`, `*-1` or a blank inline
    /// line), which Redis skips without a reply.
    pub fn from_frame(frame: Frame) -> Result<Option<RawCommand>, RequestError> {
        let elements = match frame {
            Frame::Array(elements) => elements,
            Frame::NullArray => return Ok(None),
            other => return Err(RequestError::NotArray { got: other.type_byte() }),
        };
        let mut words = elements.into_iter().map(word);
        let Some(name) = words.next().transpose()? else {
            return Ok(None);
        };
        let arguments = words.collect::<Result<Vec<Bytes>, RequestError>>()?;
        Ok(Some(RawCommand { name, arguments }))
    }

    /// The request frame for this command, as a client sends it: an array of
    /// bulk strings.
    pub fn into_frame(self) -> Frame {
        let words = std::iter::once(self.name).chain(self.arguments);
        Frame::Array(words.map(Frame::Bulk).collect())
    }
}

fn word(frame: Frame) -> Result<Bytes, RequestError> {
    match frame {
        Frame::Bulk(data) => Ok(data),
        Frame::NullBulk => Err(RequestError::NullArgument),
        other => Err(RequestError::ExpectedBulk { got: other.type_byte() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulks(words: &[&'static str]) -> Vec<Frame> {
        words.iter().map(|word| Frame::bulk(*word)).collect()
    }

    #[test]
    fn splits_name_from_arguments() {
        let frame = Frame::array(bulks(&["SET", "key", "value"]));
        let command = RawCommand::from_frame(frame).unwrap().unwrap();
        assert_eq!(command.name, "SET");
        assert_eq!(command.arguments, vec![Bytes::from("key"), Bytes::from("value")]);
    }

    #[test]
    fn empty_requests_are_skipped() {
        assert_eq!(RawCommand::from_frame(Frame::array(vec![])), Ok(None));
        assert_eq!(RawCommand::from_frame(Frame::null_array()), Ok(None));
    }

    #[test]
    fn non_array_requests_are_rejected_with_their_type() {
        let error = RawCommand::from_frame(Frame::ok()).unwrap_err();
        assert_eq!(error, RequestError::NotArray { got: b'+' });
        assert_eq!(error.to_string(), "Protocol error: expected '*', got '+'");
    }

    #[test]
    fn non_bulk_words_are_rejected_like_redis() {
        let frame = Frame::array(vec![Frame::bulk("GET"), Frame::integer(1)]);
        let error = RawCommand::from_frame(frame).unwrap_err();
        assert_eq!(error.to_string(), "Protocol error: expected '$', got ':'");
        let frame = Frame::array(vec![Frame::array(vec![])]);
        assert_eq!(RawCommand::from_frame(frame), Err(RequestError::ExpectedBulk { got: b'*' }));
        let frame = Frame::array(vec![Frame::bulk("GET"), Frame::null()]);
        assert_eq!(RawCommand::from_frame(frame), Err(RequestError::NullArgument));
    }

    #[test]
    fn into_frame_is_the_inverse_of_from_frame() {
        let command = RawCommand::new("GET", vec![Bytes::from("key")]);
        let frame = command.clone().into_frame();
        assert_eq!(frame, Frame::array(bulks(&["GET", "key"])));
        assert_eq!(RawCommand::from_frame(frame), Ok(Some(command)));
    }

    #[test]
    fn reply_wraps_the_message_in_an_err_error() {
        let reply = RequestError::NullArgument.reply();
        assert_eq!(reply, Frame::error("ERR Protocol error: invalid bulk length"));
    }
}
