//! [`BenchError`]: why a run could not start or finish. Failures during the measured time are
//! not errors of the run; they are counted in the summary by kind.

use std::path::PathBuf;

/// A run that stopped. Each message names the server or file concerned.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Nothing answered at this address (refused, timed out, or a host that does not resolve).
    #[error("cannot connect to {address}: {reason}")]
    Unreachable { address: String, reason: String },
    /// The server answered a setup command (`AUTH`, `READMODE`, `PING`) with an error.
    #[error("{address} refused `{command}`: {message}")]
    Refused { address: String, command: String, message: String },
    /// The server answered a setup command with something no Redis server sends.
    #[error("{address} answered `{command}` with an unexpected reply: {reply}")]
    UnexpectedReply { address: String, command: String, reply: String },
    /// The connection broke while setting up or populating.
    #[error("lost the connection to {address}: {reason}")]
    ConnectionLost { address: String, reason: String },
    /// A key could not be written before the run, even after retries.
    #[error("populating the keys failed: {address} answered `SET {key}` with: {message}")]
    Populate { address: String, key: String, message: String },
    /// A client task ended without its results (it panicked).
    #[error("a client task failed: {reason}")]
    ClientFailed { reason: String },
    /// The JSON report could not be written.
    #[error("cannot write the JSON report to {}: {reason}", .path.display())]
    WriteReport { path: PathBuf, reason: String },
}

/// The kind under which the summary counts an error the server replied: its first word, by
/// Redis convention the error code (`TRYAGAIN`, `UNKNOWN`, `ERR`, ...).
pub fn error_kind(message: &[u8]) -> String {
    /// Bounds the summary's keys, whatever a server sends.
    const KIND_LENGTH_MAX: usize = 32;
    let first_word = message.split(u8::is_ascii_whitespace).next().unwrap_or_default();
    if first_word.is_empty() {
        return "(empty error)".to_string();
    }
    let end = first_word.len().min(KIND_LENGTH_MAX);
    String::from_utf8_lossy(&first_word[..end]).into_owned()
}

impl BenchError {
    /// The kind under which a client counts this error when it happens during the run, where it
    /// is one failed attempt to reconnect rather than the end of the run.
    pub(super) fn kind(&self) -> String {
        match self {
            BenchError::Unreachable { .. } => "CONNECT_FAILED".to_string(),
            BenchError::Refused { message, .. } | BenchError::Populate { message, .. } => {
                error_kind(message.as_bytes())
            }
            BenchError::UnexpectedReply { .. } => UNEXPECTED_REPLY.to_string(),
            BenchError::ConnectionLost { .. } => CONNECTION_LOST.to_string(),
            BenchError::ClientFailed { .. } | BenchError::WriteReport { .. } => "BENCH".to_string(),
        }
    }
}

/// The kind counted when a connection breaks mid-run; its requests in flight are lost.
pub const CONNECTION_LOST: &str = "CONNECTION_LOST";
/// The kind counted for a reply of the wrong type, such as an integer for a GET.
pub const UNEXPECTED_REPLY: &str = "UNEXPECTED_REPLY";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_of_an_error_reply_is_its_first_word() {
        assert_eq!(error_kind(b"TRYAGAIN no leader (not applied; safe to retry)"), "TRYAGAIN");
        assert_eq!(error_kind(b"ERR unknown command 'READMODE'"), "ERR");
        assert_eq!(error_kind(b"NOAUTH"), "NOAUTH");
        assert_eq!(error_kind(b""), "(empty error)");
        assert_eq!(error_kind(&[b'X'; 100]).len(), 32);
    }

    #[test]
    fn messages_name_the_address() {
        let error = BenchError::Unreachable { address: "127.0.0.1:1".into(), reason: "Connection refused".into() };
        assert_eq!(error.to_string(), "cannot connect to 127.0.0.1:1: Connection refused");
        assert_eq!(error.kind(), "CONNECT_FAILED");
        let error = BenchError::Refused {
            address: "127.0.0.1:6379".into(),
            command: "READMODE stale".into(),
            message: "ERR unknown command 'READMODE'".into(),
        };
        assert_eq!(error.to_string(), "127.0.0.1:6379 refused `READMODE stale`: ERR unknown command 'READMODE'");
        assert_eq!(error.kind(), "ERR");
    }
}
