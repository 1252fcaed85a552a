//! A small blocking RESP client over `std::net`, built on the crate's own codec, and the
//! reply shapes the tests compare against.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kvstore::resp::{Frame, ParseLimits, Parser, RawCommand};

/// How long one request may wait for its reply; a server that takes longer is broken, not slow.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait between attempts when a node is not ready yet.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// One connection to one node.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    buffer: BytesMut,
    parser: Parser,
}

impl Client {
    /// Connects once; fails if the node is not listening.
    pub fn connect(address: SocketAddr) -> io::Result<Client> {
        let stream = TcpStream::connect_timeout(&address, REPLY_TIMEOUT)?;
        stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        stream.set_write_timeout(Some(REPLY_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Client { stream, buffer: BytesMut::new(), parser: Parser::for_replies(ParseLimits::default()) })
    }

    /// Connects, retrying while the node starts; fails the test at the deadline.
    pub fn connect_within(address: SocketAddr, timeout: Duration) -> Client {
        let deadline = Instant::now() + timeout;
        loop {
            match Client::connect(address) {
                Ok(client) => return client,
                Err(error) if Instant::now() >= deadline => panic!("cannot connect to {address}: {error}"),
                Err(_) => std::thread::sleep(POLL_INTERVAL),
            }
        }
    }

    /// Sends one command and returns its reply; fails the test on a network error.
    pub fn command(&mut self, words: &[&str]) -> Frame {
        self.try_command(words).unwrap_or_else(|error| panic!("{words:?} failed: {error}"))
    }

    /// Sends one command and returns its reply, or the network error.
    pub fn try_command(&mut self, words: &[&str]) -> io::Result<Frame> {
        self.stream.write_all(&request(words))?;
        self.next_frame()
    }

    /// `INFO raft` as a map from field to value.
    pub fn info_raft(&mut self) -> io::Result<BTreeMap<String, String>> {
        match self.try_command(&["INFO", "raft"])? {
            Frame::Bulk(text) => Ok(parse_info(&String::from_utf8_lossy(&text))),
            other => Err(io::Error::other(format!("INFO raft replied {other:?}"))),
        }
    }

    /// Sends a command until the cluster answers something other than `TRYAGAIN` (no leader
    /// yet, or a leader change), so that a test survives an election it did not cause.
    /// `TRYAGAIN` promises the command was not applied, so any command may be retried;
    /// `UNKNOWN` (the outcome of a write cannot be known) is returned for the test to judge.
    pub fn command_retrying(&mut self, words: &[&str], timeout: Duration) -> Frame {
        let deadline = Instant::now() + timeout;
        loop {
            let reply = self.command(words);
            if !is_retryable(&reply) || Instant::now() >= deadline {
                return reply;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    fn next_frame(&mut self) -> io::Result<Frame> {
        loop {
            let parsed = self.parser.parse(&mut self.buffer).map_err(|error| io::Error::other(error.to_string()))?;
            if let Some(frame) = parsed {
                return Ok(frame);
            }
            let mut chunk = [0; 16 * 1024];
            let read = self.stream.read(&mut chunk)?;
            if read == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }
}

/// True for the replies that say the command was not served and may be sent again.
fn is_retryable(reply: &Frame) -> bool {
    matches!(reply, Frame::Error(text) if text.starts_with(b"TRYAGAIN"))
}

fn parse_info(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once(':'))
        .map(|(field, value)| (field.to_string(), value.trim().to_string()))
        .collect()
}

/// The wire form of a command: an array of bulk strings.
fn request(words: &[&str]) -> Vec<u8> {
    let mut words = words.iter().map(|word| Bytes::copy_from_slice(word.as_bytes()));
    let name = words.next().expect("a command has a name");
    RawCommand::new(name, words.collect()).into_frame().to_bytes().to_vec()
}

/// A bulk string reply.
pub fn bulk(text: &str) -> Frame {
    Frame::bulk(Bytes::copy_from_slice(text.as_bytes()))
}

/// An array of bulk strings.
pub fn bulks(texts: &[&str]) -> Frame {
    Frame::array(texts.iter().map(|text| bulk(text)).collect())
}
