//! The per-peer sender task: owns our stream to one peer, dials it with backoff, and writes
//! queued messages in batches.
//!
//! The stream is one-way: after the handshake the acceptor never writes, so any byte or
//! end-of-stream read from it means the peer went away (or misbehaves), and we redial.
//! Watching the read side is how a restarted peer is noticed before the next write fails.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use serde::Serialize;
use tokio::io::{AsyncReadExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::faults::{FaultDecision, MessageFaults};
use super::frame::{encode_message, BatchEncoder};
use super::handshake::{check_acceptor, decode_hello, encode_hello};
use super::status::{count, Direction, PeerShared};
use super::stream::{read_decoded, with_timeout, write_flushed, ConnectionError};
use super::Shared;

/// The fault hook, shared by every peer task of one transport.
pub(crate) type SharedFaults<M> = Arc<Mutex<Box<dyn MessageFaults<M>>>>;

type Connection = (ReadHalf<TcpStream>, WriteHalf<TcpStream>);

/// Why the connected loop returned without an error.
struct Stopped;

/// What woke the connected loop.
enum Event<M> {
    Queued(M),
    QueueClosed,
    DelayElapsed,
    PeerSpoke(std::io::Result<usize>),
}

/// The state of one peer's sender task. Messages held back by the fault hook outlive a
/// connection; messages queued while the peer is unreachable are discarded.
pub(crate) struct Outbound<M> {
    peer_id: u64,
    shared: Arc<Shared>,
    peer: Arc<PeerShared>,
    queue: mpsc::Receiver<M>,
    faults: Option<SharedFaults<M>>,
    /// Encoded messages waiting for a frame, in sending order.
    ready: VecDeque<Vec<u8>>,
    ready_size_bytes: usize,
    /// Messages the fault hook delayed, by release time; the sequence number keeps equal
    /// deadlines in arrival order and the keys unique.
    delayed: BTreeMap<(Instant, u64), Vec<u8>>,
    delay_sequence: u64,
    batch: BatchEncoder,
}

impl<M: Serialize + Send + 'static> Outbound<M> {
    pub(crate) fn new(
        peer_id: u64,
        shared: Arc<Shared>,
        peer: Arc<PeerShared>,
        queue: mpsc::Receiver<M>,
        faults: Option<SharedFaults<M>>,
    ) -> Self {
        let batch = BatchEncoder::new(shared.config.frame_size_bytes_max);
        Outbound {
            peer_id,
            shared,
            peer,
            queue,
            faults,
            ready: VecDeque::new(),
            ready_size_bytes: 0,
            delayed: BTreeMap::new(),
            delay_sequence: 0,
            batch,
        }
    }

    /// Dials, sends, and redials after failures until the transport is dropped.
    pub(crate) async fn run(mut self) {
        let config = &self.shared.config;
        let (backoff_ms_min, backoff_ms_max) = (config.reconnect_backoff_ms_min, config.reconnect_backoff_ms_max);
        let mut backoff_ms = backoff_ms_min;
        loop {
            match self.connect().await {
                Ok(connection) => {
                    backoff_ms = backoff_ms_min;
                    if self.run_connected(connection).await.is_some() {
                        return;
                    }
                }
                Err(error) => {
                    tracing::debug!(peer = self.peer_id, %error, "dialling peer failed");
                    self.peer.set_error(Direction::Outbound, error.to_string());
                }
            }
            if self.back_off(backoff_ms).await.is_some() {
                return;
            }
            backoff_ms = backoff_ms.saturating_mul(2).min(backoff_ms_max);
        }
    }

    /// Waits out a backoff, discarding what is queued meanwhile (and what was left unsent):
    /// the peer is unreachable, and after reconnecting Raft is better served by fresh
    /// messages than by a backlog of stale heartbeats and appends. Returns `Some` when the
    /// transport was dropped.
    async fn back_off(&mut self, backoff_ms: u64) -> Option<Stopped> {
        let unsent = self.ready.len() as u64;
        self.ready.clear();
        self.ready_size_bytes = 0;
        count(&self.peer.messages_dropped_unreachable, unsent);
        let deadline = Instant::now() + Duration::from_millis(backoff_ms);
        loop {
            tokio::select! {
                biased;
                () = tokio::time::sleep_until(deadline) => return None,
                queued = self.queue.recv() => match queued {
                    Some(_discarded) => count(&self.peer.messages_dropped_unreachable, 1),
                    None => return Some(Stopped),
                },
            }
        }
    }

    async fn connect(&self) -> Result<Connection, ConnectionError> {
        let timeout = Duration::from_millis(self.shared.config.connect_timeout_ms);
        let connection = with_timeout(timeout, "connecting", self.dial(timeout)).await?;
        count(&self.peer.connections_established, 1);
        tracing::info!(peer = self.peer_id, address = %self.peer.address(), "connected to peer");
        Ok(connection)
    }

    async fn dial(&self, timeout: Duration) -> Result<Connection, ConnectionError> {
        let stream = TcpStream::connect(self.peer.address()).await?;
        // Our own batching decides when bytes leave; Nagle would only add latency to votes
        // and heartbeats.
        stream.set_nodelay(true)?;
        let (mut reader, mut writer) = tokio::io::split(stream);
        let mut hello = Vec::new();
        encode_hello(&mut hello, &self.shared.hello());
        write_flushed(&mut writer, &hello, timeout).await?;
        let mut buffer = BytesMut::new();
        let (reply, _size_bytes) = read_decoded(&mut reader, &mut buffer, decode_hello).await.map_err(|error| {
            // An acceptor answers a hello it refuses by closing the connection.
            match error {
                ConnectionError::Closed => ConnectionError::RefusedByPeer,
                other => other,
            }
        })?;
        check_acceptor(&reply, &self.shared.config.cluster_id, self.peer_id)?;
        if !buffer.is_empty() {
            return Err(ConnectionError::UnexpectedBytes);
        }
        self.peer.set_connected(Direction::Outbound, reply.client_address);
        Ok((reader, writer))
    }

    /// Sends until the connection fails (returns `None`) or the transport is dropped.
    async fn run_connected(&mut self, (mut reader, mut writer): Connection) -> Option<Stopped> {
        let result = self.send_until_stopped(&mut reader, &mut writer).await;
        let error = result.as_ref().err().map(ToString::to_string);
        if let Some(error) = &error {
            tracing::warn!(peer = self.peer_id, %error, "connection to peer lost");
        }
        self.peer.set_disconnected(Direction::Outbound, error);
        result.ok()
    }

    async fn send_until_stopped(
        &mut self,
        reader: &mut ReadHalf<TcpStream>,
        writer: &mut WriteHalf<TcpStream>,
    ) -> Result<Stopped, ConnectionError> {
        let mut probe = [0_u8; 1];
        loop {
            self.write_ready(writer).await?;
            match self.next_event(reader, &mut probe).await {
                Event::Queued(message) => {
                    self.admit(message);
                    self.drain_queue();
                }
                Event::QueueClosed => return Ok(Stopped),
                Event::DelayElapsed => self.release_due_delays(),
                Event::PeerSpoke(Ok(0)) => return Err(ConnectionError::Closed),
                Event::PeerSpoke(Ok(_)) => return Err(ConnectionError::UnexpectedBytes),
                Event::PeerSpoke(Err(error)) => return Err(error.into()),
            }
        }
    }

    /// Waits for a queued message, a delayed message's release, or the peer speaking. Each
    /// branch is cancel safe, so nothing is lost when another one wins.
    async fn next_event(&mut self, reader: &mut ReadHalf<TcpStream>, probe: &mut [u8]) -> Event<M> {
        let next_release = self.delayed.keys().next().map(|(release, _sequence)| *release);
        // Biased: a fixed polling order keeps simulation runs deterministic, and putting the
        // queue last means a flood of messages cannot starve delayed ones or hide a closed
        // connection.
        tokio::select! {
            biased;
            read = reader.read(probe) => Event::PeerSpoke(read),
            () = tokio::time::sleep_until(next_release.unwrap_or_else(Instant::now)), if next_release.is_some() => {
                Event::DelayElapsed
            }
            queued = self.queue.recv() => match queued {
                Some(message) => Event::Queued(message),
                None => Event::QueueClosed,
            },
        }
    }

    /// Takes whatever else is already queued, up to about one frame's worth, so that a burst
    /// leaves in one frame.
    fn drain_queue(&mut self) {
        while self.ready_size_bytes < self.shared.config.frame_size_bytes_max as usize {
            match self.queue.try_recv() {
                Ok(message) => self.admit(message),
                Err(_empty_or_closed) => return,
            }
        }
    }

    /// Applies the fault hook to one message and files it as ready, delayed or dropped.
    fn admit(&mut self, message: M) {
        let decision = self.decide(&message);
        if decision == FaultDecision::Drop {
            count(&self.peer.messages_dropped_by_fault, 1);
            return;
        }
        let Some(encoded) = self.encode(&message) else { return };
        match decision {
            FaultDecision::Deliver | FaultDecision::Drop => self.push_ready(encoded),
            FaultDecision::Duplicate => {
                self.push_ready(encoded.clone());
                self.push_ready(encoded);
            }
            FaultDecision::Delay { delay_ms } => self.hold(encoded, delay_ms),
        }
    }

    fn decide(&self, message: &M) -> FaultDecision {
        let Some(faults) = &self.faults else { return FaultDecision::Deliver };
        // The hook is plain data plus an RNG; if it panicked once, its state is still usable.
        let mut faults = faults.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        faults.decide(self.peer_id, message)
    }

    /// Encodes a message, or counts and logs why it can never be sent.
    fn encode(&self, message: &M) -> Option<Vec<u8>> {
        let frame_size_bytes_max = self.shared.config.frame_size_bytes_max;
        let failure = match encode_message(message) {
            Ok(encoded) if BatchEncoder::fits_alone(frame_size_bytes_max, encoded.len()) => return Some(encoded),
            Ok(encoded) => format!("message of {} bytes exceeds the frame limit", encoded.len()),
            Err(error) => format!("message does not encode: {error}"),
        };
        tracing::warn!(peer = self.peer_id, %failure, "dropping unsendable message");
        count(&self.peer.messages_dropped_unsendable, 1);
        None
    }

    fn push_ready(&mut self, encoded: Vec<u8>) {
        self.ready_size_bytes += encoded.len();
        self.ready.push_back(encoded);
    }

    fn hold(&mut self, encoded: Vec<u8>, delay_ms: u64) {
        // Delayed messages are bounded like the queue, so a hook cannot grow memory forever.
        if self.delayed.len() >= self.shared.config.queue_messages_max {
            count(&self.peer.messages_dropped_by_fault, 1);
            return;
        }
        let release = Instant::now() + Duration::from_millis(delay_ms);
        self.delayed.insert((release, self.delay_sequence), encoded);
        self.delay_sequence += 1;
    }

    fn release_due_delays(&mut self) {
        let now = Instant::now();
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                return;
            }
            let encoded = entry.remove();
            self.push_ready(encoded);
        }
    }

    /// Writes every ready message, as few frames as the frame limit allows.
    async fn write_ready(&mut self, writer: &mut WriteHalf<TcpStream>) -> Result<(), ConnectionError> {
        let timeout = Duration::from_millis(self.shared.config.write_timeout_ms);
        let mut frame = Vec::new();
        while !self.ready.is_empty() {
            self.fill_batch();
            let message_count = self.batch.message_count() as u64;
            frame.clear();
            self.batch.finish_into(&mut frame);
            if let Err(error) = write_flushed(writer, &frame, timeout).await {
                count(&self.peer.messages_lost_on_error, message_count);
                return Err(error);
            }
            count(&self.peer.frames_sent, 1);
            count(&self.peer.bytes_sent, frame.len() as u64);
            count(&self.peer.messages_sent, message_count);
        }
        Ok(())
    }

    fn fill_batch(&mut self) {
        while let Some(encoded) = self.ready.front() {
            if !self.batch.fits(encoded.len()) {
                break;
            }
            let encoded = self.ready.pop_front().expect("front exists");
            self.ready_size_bytes -= encoded.len();
            self.batch.push(&encoded);
        }
        assert!(!self.batch.is_empty(), "every ready message fits alone in a frame");
    }
}
