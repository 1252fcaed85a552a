//! A minimal RESP client for simulated clients: one request, one reply, with a deadline. It
//! speaks to the real server path of a node over (simulated) TCP.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kvstore::resp::{Frame, ParseLimits, Parser};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why a request got no reply.
#[derive(Debug)]
pub enum ClientError {
    /// No reply within the deadline, or the connection broke: the request may or may not
    /// have taken effect.
    NoReply,
}

/// One connection to one node.
#[derive(Debug)]
pub struct RespClient {
    stream: TcpStream,
    buffer: BytesMut,
    parser: Parser,
}

impl RespClient {
    pub async fn connect(address: SocketAddr, timeout: Duration) -> Result<RespClient, ClientError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
            .await
            .map_err(|_| ClientError::NoReply)?
            .map_err(|_| ClientError::NoReply)?;
        Ok(RespClient { stream, buffer: BytesMut::new(), parser: Parser::for_replies(ParseLimits::default()) })
    }

    /// Sends one command and waits for its reply.
    pub async fn call(&mut self, arguments: &[Bytes], timeout: Duration) -> Result<Frame, ClientError> {
        let request = Frame::Array(arguments.iter().cloned().map(Frame::Bulk).collect());
        let mut out = BytesMut::new();
        request.encode(&mut out);
        let exchange = async {
            self.stream.write_all(&out).await.map_err(|_| ClientError::NoReply)?;
            self.stream.flush().await.map_err(|_| ClientError::NoReply)?;
            loop {
                if let Some(frame) = self.parser.parse(&mut self.buffer).map_err(|_| ClientError::NoReply)? {
                    return Ok(frame);
                }
                let read = self.stream.read_buf(&mut self.buffer).await.map_err(|_| ClientError::NoReply)?;
                if read == 0 {
                    return Err(ClientError::NoReply);
                }
            }
        };
        tokio::time::timeout(timeout, exchange).await.map_err(|_| ClientError::NoReply)?
    }
}
