//! One RESP connection to one server, set up the way every benchmark connection is: connected
//! within a timeout, then `AUTH` and `READMODE` if the options ask for them.

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;

use super::config::BenchConfig;
use super::error::BenchError;
use crate::resp::{Frame, ParseLimits, Parser, RawCommand};

/// A server that has not accepted within this is reported unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A setup command's reply must come within this. Tally answers every request within its
/// request timeout (10 s by default), so a longer wait means the connection is dead.
const SETUP_REPLY_TIMEOUT: Duration = Duration::from_secs(15);
/// Room made in the receive buffer before each read, so that a large reply arrives in few reads.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// A connection ready for requests.
pub(super) struct Connection {
    address: String,
    reader: ReadHalf<TcpStream>,
    writer: WriteHalf<TcpStream>,
    received: BytesMut,
    parser: Parser,
}

impl Connection {
    /// Connects to `address` and sends the setup commands the options ask for. An error names
    /// the address, and for a refused command, the server's answer.
    pub async fn open(address: &str, config: &BenchConfig) -> Result<Connection, BenchError> {
        let unreachable = |reason: String| BenchError::Unreachable { address: address.to_string(), reason };
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return Err(unreachable(error.to_string())),
            Err(_) => return Err(unreachable(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))),
        };
        // Without this, Nagle's algorithm would hold back every small batch for an
        // acknowledgement and add its delay to the latencies measured.
        stream.set_nodelay(true).map_err(|error| unreachable(error.to_string()))?;
        let (reader, writer) = tokio::io::split(stream);
        let mut connection = Connection {
            address: address.to_string(),
            reader,
            writer,
            received: BytesMut::with_capacity(READ_CHUNK_BYTES),
            parser: Parser::for_replies(ParseLimits::default()),
        };
        if let Some(password) = &config.password {
            // The password stays out of error messages.
            connection.set_up(&["AUTH", password], "AUTH").await?;
        }
        if let Some(mode) = &config.read_mode {
            connection.set_up(&["READMODE", mode], &format!("READMODE {mode}")).await?;
        }
        Ok(connection)
    }

    /// The `host:port` this connection was opened to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends one command outside the measured loop and returns its reply; an error reply is a
    /// [`BenchError::Refused`] that shows the command as `shown_as`.
    pub async fn set_up(&mut self, words: &[&str], shown_as: &str) -> Result<Frame, BenchError> {
        let reply = self.call(&command(words).to_bytes(), 1).await?.pop();
        match reply.expect("a call of one request returns one reply") {
            Frame::Error(message) => Err(BenchError::Refused {
                address: self.address.clone(),
                command: shown_as.to_string(),
                message: String::from_utf8_lossy(&message).into_owned(),
            }),
            frame => Ok(frame),
        }
    }

    /// Sends `replies_expected` encoded commands outside the measured loop and returns their
    /// replies in order. A broken connection, or a reply that does not come in time, is a
    /// [`BenchError::ConnectionLost`].
    pub async fn call(&mut self, requests: &[u8], replies_expected: usize) -> Result<Vec<Frame>, BenchError> {
        let mut replies = Vec::with_capacity(replies_expected);
        let exchange = self.exchange(requests, replies_expected, |_, frame| replies.push(frame));
        let outcome = tokio::time::timeout(SETUP_REPLY_TIMEOUT, exchange).await;
        let reason = match outcome {
            Ok(Ok(())) => return Ok(replies),
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no reply within {} s", SETUP_REPLY_TIMEOUT.as_secs()),
        };
        Err(BenchError::ConnectionLost { address: self.address.clone(), reason })
    }

    /// Writes `requests` (the encoding of `replies_expected` commands) while reading their
    /// replies, handing each to `on_reply` with its position as soon as it arrives.
    ///
    /// Writing and reading run together because a server stops reading a connection whose
    /// replies pile up unread (Tally and Redis both do): a large pipeline written before
    /// reading anything could wait forever.
    pub async fn exchange(
        &mut self,
        requests: &[u8],
        replies_expected: usize,
        mut on_reply: impl FnMut(usize, Frame),
    ) -> io::Result<()> {
        let Connection { reader, writer, received, parser, .. } = self;
        let send = async {
            writer.write_all(requests).await?;
            writer.flush().await
        };
        let receive = async move {
            for index in 0..replies_expected {
                let frame = next_frame(reader, received, parser).await?;
                on_reply(index, frame);
            }
            Ok(())
        };
        futures::future::try_join(send, receive).await.map(|_| ())
    }
}

async fn next_frame(
    reader: &mut ReadHalf<TcpStream>,
    received: &mut BytesMut,
    parser: &mut Parser,
) -> io::Result<Frame> {
    loop {
        match parser.parse(received) {
            Ok(Some(frame)) => return Ok(frame),
            Ok(None) => {}
            Err(error) => return Err(io::Error::new(io::ErrorKind::InvalidData, error)),
        }
        received.reserve(READ_CHUNK_BYTES);
        if reader.read_buf(received).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection"));
        }
    }
}

/// A command as a client sends it: an array of bulk strings.
pub(super) fn command(words: &[&str]) -> Frame {
    let mut words = words.iter().map(|word| Bytes::copy_from_slice(word.as_bytes()));
    let name = words.next().expect("a command has a name");
    RawCommand::new(name, words.collect()).into_frame()
}
