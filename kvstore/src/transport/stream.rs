//! The async edges shared by both directions: reading decoded items from a stream, writing
//! bytes with a deadline, and the errors that end a connection.

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::frame::{Decoded, FrameDefect};
use super::handshake::{HandshakeDefect, HelloRefusal};

/// Bytes reserved per read. Reading in chunks means a peer announcing a large frame gets
/// buffer space only as fast as it actually sends bytes.
const READ_CHUNK_SIZE_BYTES: usize = 64 * 1024;

/// Why a connection ended. Every variant closes that one connection; none stops the
/// transport.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The operating system (or simulator) reported an error.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// A connect, handshake or write took longer than its configured bound.
    #[error("timed out while {during}")]
    Timeout {
        /// What was under way.
        during: &'static str,
    },
    /// The peer closed the connection between items.
    #[error("closed by the peer")]
    Closed,
    /// The peer closed the connection in the middle of an item.
    #[error("closed by the peer in the middle of a frame")]
    Truncated,
    /// The handshake bytes were not a hello.
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeDefect),
    /// The hello was well formed but refused.
    #[error("refused: {0}")]
    Refused(#[from] HelloRefusal),
    /// A frame was damaged, oversized or not a batch.
    #[error("frame: {0}")]
    Frame(#[from] FrameDefect),
    /// The acceptor closed the connection instead of answering our hello: it does not
    /// know us as a peer of its cluster.
    #[error("refused by the peer in the handshake (check its cluster id and peer list)")]
    RefusedByPeer,
    /// The acceptor wrote after the handshake, which the protocol never does.
    #[error("unexpected bytes from the acceptor after the handshake")]
    UnexpectedBytes,
}

/// Reads from `reader` into `buffer` until `decode` yields a whole item, then removes that
/// item's bytes from the buffer. Bytes after the item stay buffered for the next call.
///
/// Cancel safe: bytes read before a cancellation stay in `buffer`.
pub async fn read_decoded<R, T, E>(
    reader: &mut R,
    buffer: &mut BytesMut,
    decode: impl Fn(&[u8]) -> Result<Decoded<T>, E>,
) -> Result<(T, usize), ConnectionError>
where
    R: AsyncRead + Unpin,
    ConnectionError: From<E>,
{
    loop {
        match decode(buffer)? {
            Decoded::Complete { value, size_bytes } => {
                let _consumed = buffer.split_to(size_bytes);
                return Ok((value, size_bytes));
            }
            Decoded::Incomplete { bytes_needed } => {
                buffer.reserve(bytes_needed.min(READ_CHUNK_SIZE_BYTES));
                if reader.read_buf(buffer).await? == 0 {
                    return Err(if buffer.is_empty() { ConnectionError::Closed } else { ConnectionError::Truncated });
                }
            }
        }
    }
}

/// Writes all of `bytes` and flushes them: the simulated stream sends nothing until a
/// flush, and a real one may hold bytes in user-space buffers.
pub async fn write_flushed<W: AsyncWrite + Unpin>(
    writer: &mut W,
    bytes: &[u8],
    timeout: Duration,
) -> Result<(), ConnectionError> {
    let write = async {
        writer.write_all(bytes).await?;
        writer.flush().await
    };
    match tokio::time::timeout(timeout, write).await {
        Ok(result) => Ok(result?),
        Err(_elapsed) => Err(ConnectionError::Timeout { during: "writing" }),
    }
}

/// Runs `future` under a deadline, naming what timed out.
pub async fn with_timeout<T>(
    timeout: Duration,
    during: &'static str,
    future: impl std::future::Future<Output = Result<T, ConnectionError>>,
) -> Result<T, ConnectionError> {
    match tokio::time::timeout(timeout, future).await {
        Ok(result) => result,
        Err(_elapsed) => Err(ConnectionError::Timeout { during }),
    }
}
