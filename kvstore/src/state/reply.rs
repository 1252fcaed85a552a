//! What a command answers, independent of any wire codec.
//!
//! The server turns a [`Reply`] into RESP: [`Reply::Ok`] into `+OK`,
//! [`Reply::Integer`] into `:n`, [`Reply::Bulk`] into a bulk string or nil,
//! [`Reply::Array`] into an array, and [`Reply::Error`] into `-` followed by the
//! error's `Display` text, which is already Redis-shaped (`ERR ...`).
//!
//! Replies are serialisable because a session caches its last reply, and the
//! session table is part of the snapshot.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The answer to one applied command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The simple string `OK`.
    Ok,
    /// An integer.
    Integer(i64),
    /// A bulk string, or nil when `None`.
    Bulk(Option<Bytes>),
    /// An array of replies.
    Array(Vec<Reply>),
    /// A Redis-style error.
    Error(CommandError),
}

/// Why a command was refused. `Display` gives the Redis-style message.
///
/// Two variants matter to the server beyond their text:
/// [`CommandError::SessionExpired`] and [`CommandError::StaleSequence`] say the
/// state machine can no longer tell whether an earlier attempt of the write
/// applied, so a retried write that gets one of them has an unknown outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CommandError {
    /// The stored value is not a decimal 64-bit integer.
    #[error("ERR value is not an integer or out of range")]
    NotAnInteger,
    /// The increment would leave the 64-bit signed range.
    #[error("ERR increment or decrement would overflow")]
    IncrementOverflow,
    /// The value the write would store is larger than the limit.
    #[error("ERR string exceeds maximum allowed size ({size_bytes_max} bytes)")]
    ValueTooLarge {
        /// The configured [`Limits::value_size_bytes_max`](super::Limits).
        size_bytes_max: usize,
    },
    /// The session does not exist: it was evicted, or never registered.
    #[error("ERR session expired")]
    SessionExpired,
    /// The sequence number is below the last one the session applied (or is 0).
    #[error("ERR stale request: sequence {sequence} is not after {last_sequence}, the last applied in this session")]
    StaleSequence {
        /// The sequence number of the refused request.
        sequence: u64,
        /// The highest sequence number the session has applied.
        last_sequence: u64,
    },
    /// A [`Command::RegisterSession`](super::Command) was sent inside a session.
    #[error("ERR a session cannot be registered from inside a session")]
    RegisterInsideSession,
    /// The log entry did not decode as a [`Request`](super::Request).
    #[error("ERR undecodable log entry")]
    Undecodable,
    /// A SCAN cursor that no SCAN returned.
    #[error("ERR invalid cursor")]
    InvalidCursor,
}

impl Reply {
    /// Whether the reply is an error.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
}

impl From<CommandError> for Reply {
    fn from(error: CommandError) -> Reply {
        Reply::Error(error)
    }
}
