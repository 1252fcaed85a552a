//! The one place where the node's answers become RESP frames.

use crate::node::{AdminError, AdminReply, ReadError, WriteError};
use crate::resp::Frame;
use crate::state::Reply;

/// A state machine reply as RESP2: `+OK`, `:n`, a bulk string or nil, an array, or the
/// command error's Redis-style message (which already starts with `ERR`).
pub(super) fn frame_of(reply: Reply) -> Frame {
    match reply {
        Reply::Ok => Frame::ok(),
        Reply::Integer(value) => Frame::integer(value),
        Reply::Bulk(Some(data)) => Frame::bulk(data),
        Reply::Bulk(None) => Frame::null(),
        Reply::Array(elements) => Frame::array(elements.into_iter().map(frame_of).collect()),
        Reply::Error(error) => Frame::error(error.to_string()),
    }
}

/// A write that got no reply: `-TRYAGAIN` when it certainly did not apply, `-UNKNOWN` when
/// it may have.
pub(super) fn frame_of_write_error(error: &WriteError) -> Frame {
    match error {
        WriteError::NotApplied { reason } => not_applied(reason),
        WriteError::OutcomeUnknown { reason } => {
            Frame::error(format!("UNKNOWN {reason} (the write may or may not have been applied)"))
        }
    }
}

/// A read that got no reply; reads change nothing, so they are always safe to retry.
pub(super) fn frame_of_read_error(error: &ReadError) -> Frame {
    match error {
        ReadError::Unavailable { reason } => {
            Frame::error(format!("TRYAGAIN {reason} (read not served; safe to retry)"))
        }
    }
}

/// A `RAFT.*` change: `+OK` once done, the peer addresses for an added learner (one
/// `id=host:port` per member), or an error that says whether anything may have changed.
pub(super) fn frame_of_admin(outcome: Result<AdminReply, AdminError>) -> Frame {
    match outcome {
        Ok(AdminReply::Done) => Frame::ok(),
        Ok(AdminReply::Peers(peers)) => {
            Frame::array(peers.into_iter().map(|(id, address)| Frame::bulk(format!("{id}={address}"))).collect())
        }
        Err(AdminError::Refused { reason }) => Frame::error(format!("ERR {reason}")),
        Err(AdminError::Unavailable { reason }) => Frame::error(format!("TRYAGAIN {reason} (nothing changed)")),
        Err(AdminError::OutcomeUnknown { reason }) => Frame::error(format!("UNKNOWN {reason}")),
    }
}

/// A write refused before it reached the log, such as one whose session could not be
/// registered.
pub(super) fn not_applied(reason: &str) -> Frame {
    Frame::error(format!("TRYAGAIN {reason} (not applied; safe to retry)"))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::state::CommandError;

    #[test]
    fn replies_map_to_their_resp_kinds() {
        let reply = Reply::Array(vec![Reply::Bulk(Some(Bytes::from("v"))), Reply::Bulk(None), Reply::Integer(7)]);
        let expected = Frame::array(vec![Frame::bulk("v"), Frame::null(), Frame::integer(7)]);
        assert_eq!(frame_of(reply), expected);
        assert_eq!(frame_of(Reply::Ok), Frame::ok());
    }

    #[test]
    fn command_errors_keep_their_redis_message() {
        let frame = frame_of(Reply::Error(CommandError::NotAnInteger));
        assert_eq!(frame, Frame::error("ERR value is not an integer or out of range"));
    }

    #[test]
    fn write_errors_say_whether_a_retry_is_safe() {
        let frame = frame_of_write_error(&WriteError::NotApplied { reason: "no leader".into() });
        assert_eq!(frame, Frame::error("TRYAGAIN no leader (not applied; safe to retry)"));
        let frame = frame_of_write_error(&WriteError::OutcomeUnknown { reason: "leader lost".into() });
        assert!(matches!(frame, Frame::Error(message) if message.starts_with(b"UNKNOWN leader lost")));
    }
}
