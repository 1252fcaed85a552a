//! A one-command RESP client, for what a node or an operator asks of a running node: `--join`
//! (`RAFT.ADDLEARNER`) and `tally admin`.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::resp::{Frame, ParseLimits, Parser, RawCommand};

/// A node that does not accept within this is reported unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Every Tally request is answered within its request timeout (10 s by default); a
/// membership change waits for a commit, so allow more.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends `words` as one command to the node at `address` and returns its reply (an error
/// reply is returned as a [`Frame::Error`], not as `Err`). `Err` says why there was no reply.
pub async fn call(address: &str, words: &[&str]) -> Result<Frame, String> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return Err(format!("cannot connect to {address}: {error}")),
        Err(_) => return Err(format!("cannot connect to {address}: no answer within {} s", CONNECT_TIMEOUT.as_secs())),
    };
    match tokio::time::timeout(REPLY_TIMEOUT, exchange(stream, words)).await {
        Ok(result) => result.map_err(|reason| format!("{address}: {reason}")),
        Err(_) => Err(format!("{address}: no reply within {} s", REPLY_TIMEOUT.as_secs())),
    }
}

async fn exchange(mut stream: TcpStream, words: &[&str]) -> Result<Frame, String> {
    let mut words = words.iter().map(|word| Bytes::copy_from_slice(word.as_bytes()));
    let name = words.next().ok_or("no command given")?;
    let request = RawCommand::new(name, words.collect()).into_frame().to_bytes();
    stream.write_all(&request).await.map_err(|error| error.to_string())?;
    // The simulator's streams hold written bytes until flushed.
    stream.flush().await.map_err(|error| error.to_string())?;
    let mut parser = Parser::for_replies(ParseLimits::default());
    let mut received = BytesMut::with_capacity(4096);
    loop {
        if let Some(frame) = parser.parse(&mut received).map_err(|error| format!("bad reply: {error}"))? {
            return Ok(frame);
        }
        if stream.read_buf(&mut received).await.map_err(|error| error.to_string())? == 0 {
            return Err("the connection closed before the reply".to_string());
        }
    }
}

/// A reply as redis-cli would print it, one line per element for arrays.
pub fn render(frame: &Frame) -> String {
    match frame {
        Frame::Simple(text) | Frame::Error(text) => String::from_utf8_lossy(text).into_owned(),
        Frame::Bulk(data) => String::from_utf8_lossy(data).into_owned(),
        Frame::Integer(value) => value.to_string(),
        Frame::NullBulk | Frame::NullArray => "(nil)".to_string(),
        Frame::Array(items) => items.iter().map(render).collect::<Vec<_>>().join("\n"),
    }
}
