//! One client connection: it owns its buffers, parses requests as bytes arrive, starts them
//! through the [`Dispatcher`], and writes the replies back in request order.
//!
//! The loop waits on three things at once: a reply becoming ready, the socket accepting
//! output, and the socket delivering input. Ready replies are collected before writing, so
//! replies to a pipeline go out in few writes, each followed by a flush (the simulator sends
//! bytes only on flush). The connection stops reading while it has
//! [`ServerConfig::pipeline_depth_max`](super::ServerConfig) requests in flight, while a
//! request waits for the ones before it, or while too much output is unsent: that is its
//! backpressure.
//!
//! It ends when the client leaves, after QUIT, or after malformed input; in each case the
//! requests already received still run, and their replies are sent if the client is still
//! there to read them.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;

use super::commands::{self, Action, Local};
use super::dispatch::{Dispatcher, Metered, Request};
use super::listener::Shared;
use super::local::Client;
use crate::node::Backend;
use crate::resp::{Frame, Parser, RawCommand};

/// How much room to make in the input buffer before each read.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Serves one client until it leaves; never panics on its input.
pub(super) async fn run<B: Backend>(shared: Arc<Shared<B>>, stream: TcpStream, peer: SocketAddr) {
    shared.metrics.connection_opened();
    let local = stream.local_addr().ok();
    let (reader, writer) = tokio::io::split(stream);
    let mut connection = Connection::new(Arc::clone(&shared), reader, writer, peer, local);
    connection.serve().await;
    shared.metrics.connection_closed();
    tracing::debug!(%peer, client = connection.client.id, "connection closed");
}

struct Connection<B: Backend> {
    shared: Arc<Shared<B>>,
    client: Client,
    reader: ReadHalf<TcpStream>,
    writer: WriteHalf<TcpStream>,
    /// Bytes received and not yet parsed; only the parser removes bytes from it.
    input: BytesMut,
    parser: Parser,
    /// Encoded replies not yet written.
    output: BytesMut,
    dispatcher: Dispatcher<B>,
    /// A parsed request that may not start until the ones before it finish.
    waiting: Option<Request>,
    /// No more requests will be read: the client closed its side, sent QUIT, or sent
    /// something that ends the connection.
    input_done: bool,
    /// Writing failed, so the client is gone; replies are dropped from then on.
    output_failed: bool,
}

impl<B: Backend> Connection<B> {
    fn new(
        shared: Arc<Shared<B>>,
        reader: ReadHalf<TcpStream>,
        writer: WriteHalf<TcpStream>,
        peer: SocketAddr,
        local: Option<SocketAddr>,
    ) -> Connection<B> {
        let client = Client {
            id: shared.next_client_id(),
            name: None,
            authenticated: shared.config.requirepass.is_none(),
            read_mode: shared.config.default_read_mode,
            peer,
            local,
        };
        let parser = Parser::for_requests(shared.config.parse_limits());
        let dispatcher = Dispatcher::new(Arc::clone(&shared));
        Connection {
            shared,
            client,
            reader,
            writer,
            input: BytesMut::with_capacity(READ_CHUNK_BYTES),
            parser,
            output: BytesMut::new(),
            dispatcher,
            waiting: None,
            input_done: false,
            output_failed: false,
        }
    }

    async fn serve(&mut self) {
        loop {
            self.start_requests();
            if self.finished() {
                break;
            }
            self.wait_for_progress().await;
        }
        if !self.output_failed {
            // The client may already be gone; there is nobody left to tell.
            if let Err(error) = self.writer.shutdown().await {
                tracing::debug!(%error, "closing a client connection failed");
            }
        }
    }

    fn finished(&self) -> bool {
        let output_settled = self.output.is_empty() || self.output_failed;
        self.input_done && self.waiting.is_none() && self.dispatcher.in_flight() == 0 && output_settled
    }

    /// Waits for a reply, for the socket to take output, or for input, and handles it.
    async fn wait_for_progress(&mut self) {
        let may_write = !self.output.is_empty() && !self.output_failed;
        let may_read = self.may_read();
        let replies_pending = self.dispatcher.in_flight() > 0;
        // Biased, replies first: every reply that is ready joins the output before it is
        // written, so a pipeline's replies leave in one write.
        tokio::select! {
            biased;
            Some(frame) = self.dispatcher.next_reply(), if replies_pending => self.queue_reply(frame),
            written = self.writer.write_buf(&mut self.output), if may_write => self.after_write(written).await,
            read = self.reader.read_buf(&mut self.input), if may_read => self.after_read(read),
            else => self.give_up(),
        }
    }

    /// Nothing to wait for although the connection is not finished: the ordering rules
    /// make this impossible, but should it happen, closing beats spinning or panicking.
    fn give_up(&mut self) {
        tracing::error!(client = self.client.id, "connection stalled with nothing to wait for; closing it");
        debug_assert!(false, "a connection stalled");
        self.stop_reading();
        self.waiting = None;
        self.output_failed = true;
        self.output.clear();
    }

    fn may_read(&self) -> bool {
        !self.input_done
            && self.waiting.is_none()
            && self.dispatcher.in_flight() < self.shared.config.pipeline_depth_max
            && self.output.len() < self.shared.config.output_buffer_bytes_max
    }

    fn queue_reply(&mut self, frame: Frame) {
        if !self.output_failed {
            frame.encode(&mut self.output);
        }
    }

    async fn after_write(&mut self, written: std::io::Result<usize>) {
        let result = match written {
            Ok(0) => Err(std::io::ErrorKind::WriteZero.into()),
            Ok(_) if self.output.is_empty() => self.writer.flush().await,
            Ok(_) => Ok(()),
            Err(error) => Err(error),
        };
        if let Err(error) = result {
            tracing::debug!(client = self.client.id, %error, "client went away; dropping its replies");
            self.output_failed = true;
            self.output.clear();
        }
    }

    fn after_read(&mut self, read: std::io::Result<usize>) {
        match read {
            Ok(0) => self.input_done = true,
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(client = self.client.id, %error, "reading from a client failed");
                self.input_done = true;
            }
        }
        if !self.input_done {
            self.input.reserve(READ_CHUNK_BYTES);
        }
    }

    /// Parses and starts requests until one must wait, the pipeline is full, or no complete
    /// request is left in the buffer.
    fn start_requests(&mut self) {
        loop {
            if let Some(request) = self.waiting.take() {
                if let Some(request) = self.dispatcher.start(request, &mut self.client) {
                    self.waiting = Some(request);
                    return;
                }
            }
            if self.dispatcher.in_flight() >= self.shared.config.pipeline_depth_max {
                return;
            }
            match self.next_request() {
                Some(request) => self.waiting = Some(request),
                None => return,
            }
        }
    }

    /// The next complete request in the input buffer, if any. Malformed or oversized input
    /// becomes a final error reply; after it, and after QUIT, no more input is read.
    fn next_request(&mut self) -> Option<Request> {
        loop {
            let buffered_bytes = self.input.len();
            let frame = match self.parser.parse(&mut self.input) {
                Ok(Some(frame)) => frame,
                Ok(None) => return self.check_incomplete_request(),
                Err(error) => return Some(self.protocol_error(error.reply())),
            };
            // A request that arrived whole is held to the same bound as one still arriving.
            if buffered_bytes - self.input.len() > self.shared.config.request_size_bytes_max {
                return Some(self.request_too_large());
            }
            match RawCommand::from_frame(frame) {
                // An empty request gets no reply, as in Redis.
                Ok(None) => continue,
                Ok(Some(raw)) => return Some(self.request_of(&raw)),
                Err(error) => return Some(self.protocol_error(error.reply())),
            }
        }
    }

    /// Bounds a request that has not fully arrived by the configured request size.
    fn check_incomplete_request(&mut self) -> Option<Request> {
        let limit = self.shared.config.request_size_bytes_max;
        if self.input.len() <= limit {
            if self.input_done && !self.input.is_empty() {
                // Half a request and then the end of the stream: there is nothing to run.
                self.stop_reading();
            }
            return None;
        }
        Some(self.request_too_large())
    }

    fn request_too_large(&mut self) -> Request {
        let limit = self.shared.config.request_size_bytes_max;
        self.protocol_error(Frame::error(format!("ERR Protocol error: request larger than {limit} bytes")))
    }

    /// The final reply for input that cannot be parsed: the connection reads no more.
    fn protocol_error(&mut self, frame: Frame) -> Request {
        tracing::debug!(client = self.client.id, peer = %self.client.peer, ?frame, "protocol error; closing");
        self.shared.metrics.record_protocol_error();
        self.stop_reading();
        Request { metered: Metered::Uncounted, action: Ok(Action::Local(Local::Reply(frame))) }
    }

    /// Reads no more requests and drops any unparsed input, with the parser's memory of it.
    fn stop_reading(&mut self) {
        self.input_done = true;
        self.input.clear();
        self.parser = Parser::for_requests(self.shared.config.parse_limits());
    }

    /// Looks the command up, checks authentication as Redis does (after the name and arity,
    /// before the arguments), and parses its arguments.
    fn request_of(&mut self, raw: &RawCommand) -> Request {
        let command_index = match commands::lookup(raw) {
            Ok(index) => index,
            Err(frame) => return Request { metered: Metered::UnknownCommand, action: Err(frame) },
        };
        let metered = Metered::Command(command_index);
        let spec = &commands::COMMANDS[command_index];
        if !self.client.authenticated && !spec.flags.contains(&"no_auth") {
            return Request { metered, action: Err(Frame::error("NOAUTH Authentication required.")) };
        }
        let action = (spec.parse)(&raw.arguments);
        if matches!(action, Ok(Action::Local(Local::Quit))) {
            self.stop_reading();
        }
        Request { metered, action }
    }
}
