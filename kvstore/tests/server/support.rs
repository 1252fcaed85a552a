//! A fake node behind the [`Backend`] trait, a server on a loopback port, and a small RESP
//! client, for testing the server over real TCP.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use engine::Role;
use kvstore::node::{AdminError, AdminReply, AdminRequest, Backend, NodeStatus, ReadError, ReadMode, WriteError};
use kvstore::resp::{Frame, ParseLimits, Parser, RawCommand};
use kvstore::server::{Server, ServerConfig, ServerMetrics};
use kvstore::state::{Command, Limits, Query, Reply, Request, SessionId, StateMachine};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long a test waits for a reply before it fails.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// A node in one piece: a state machine behind a mutex that applies every write at once, at
/// increasing indexes, and records what it was asked.
#[derive(Clone, Debug, Default)]
pub struct FakeBackend {
    inner: Arc<Mutex<FakeState>>,
}

#[derive(Debug)]
pub struct FakeState {
    pub machine: StateMachine,
    /// Every write request, in the order it arrived.
    pub requests: Vec<Request>,
    /// Every registered session, in order.
    pub sessions: Vec<SessionId>,
    /// Every read, with its mode.
    pub reads: Vec<(Query, ReadMode)>,
    /// Every admin request, in order; each is answered `Done` (`Peers` of itself for a learner).
    pub admins: Vec<AdminRequest>,
    /// The next write (or registration) fails with this instead of applying.
    pub write_failure: Option<WriteError>,
    /// The next read fails with this.
    pub read_failure: Option<ReadError>,
    /// How long each write takes, to make ordering mistakes visible.
    pub write_delay: Duration,
    pub status: NodeStatus,
}

impl Default for FakeState {
    fn default() -> FakeState {
        FakeState {
            machine: StateMachine::new(Limits::default()),
            requests: Vec::new(),
            sessions: Vec::new(),
            reads: Vec::new(),
            admins: Vec::new(),
            write_failure: None,
            read_failure: None,
            write_delay: Duration::ZERO,
            status: NodeStatus {
                id: 1,
                role: Role::Leader,
                term: 3,
                leader_id: Some(1),
                commit_index: 0,
                applied_index: 0,
                last_log_index: 0,
                log_entries: 0,
                voters: vec![1, 2, 3],
                snapshot_index: 0,
                snapshots_saved: 0,
                snapshots_installed: 0,
                membership: Default::default(),
            },
        }
    }
}

impl FakeBackend {
    /// The fake's state, to inspect or to change.
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.inner.lock().unwrap()
    }

    fn apply(&self, request: Request) -> Result<Reply, WriteError> {
        let mut state = self.state();
        if let Some(failure) = state.write_failure.take() {
            return Err(failure);
        }
        let index = state.machine.applied_index() + 1;
        if request.command != Command::RegisterSession {
            state.requests.push(request.clone());
        }
        Ok(state.machine.apply(index, request))
    }
}

impl Backend for FakeBackend {
    async fn register_session(&self) -> Result<SessionId, WriteError> {
        let reply = self.apply(Request { session: None, sequence: 0, command: Command::RegisterSession })?;
        let Reply::Integer(id) = reply else { panic!("registration replied {reply:?}") };
        let session = SessionId(id as u64);
        self.state().sessions.push(session);
        Ok(session)
    }

    async fn write(&self, request: Request) -> Result<Reply, WriteError> {
        let delay = self.state().write_delay;
        tokio::time::sleep(delay).await;
        self.apply(request)
    }

    async fn read(&self, query: Query, mode: ReadMode) -> Result<Reply, ReadError> {
        let mut state = self.state();
        if let Some(failure) = state.read_failure.take() {
            return Err(failure);
        }
        state.reads.push((query.clone(), mode));
        Ok(query.execute(&state.machine))
    }

    async fn admin(&self, request: AdminRequest) -> Result<AdminReply, AdminError> {
        self.state().admins.push(request.clone());
        match request {
            AdminRequest::AddLearner { id, raft_address, .. } => Ok(AdminReply::Peers([(id, raft_address)].into())),
            _ => Ok(AdminReply::Done),
        }
    }

    fn status(&self) -> NodeStatus {
        self.state().status.clone()
    }
}

/// A server on an ephemeral loopback port, running in the background of the test runtime.
pub struct TestServer {
    pub address: SocketAddr,
    pub backend: FakeBackend,
    pub metrics: Arc<ServerMetrics>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(ServerConfig::default()).await
    }

    pub async fn start_with(config: ServerConfig) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let backend = FakeBackend::default();
        let server = Server::new(backend.clone(), config);
        let metrics = server.metrics();
        tokio::spawn(async move { server.serve(listener).await });
        TestServer { address, backend, metrics }
    }

    pub async fn client(&self) -> TestClient {
        TestClient::connect(self.address).await
    }
}

/// A minimal RESP client.
pub struct TestClient {
    stream: TcpStream,
    buffer: BytesMut,
    parser: Parser,
}

impl TestClient {
    pub async fn connect(address: SocketAddr) -> TestClient {
        let stream = TcpStream::connect(address).await.unwrap();
        TestClient { stream, buffer: BytesMut::new(), parser: Parser::for_replies(ParseLimits::default()) }
    }

    /// Sends one command and returns its reply.
    pub async fn call(&mut self, words: &[&str]) -> Frame {
        self.send(words).await;
        self.reply().await
    }

    /// Sends one command as an array of bulk strings.
    pub async fn send(&mut self, words: &[&str]) {
        self.send_raw(&request(words)).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
        self.stream.flush().await.unwrap();
    }

    /// The next reply; fails the test if none comes.
    pub async fn reply(&mut self) -> Frame {
        let reply = tokio::time::timeout(REPLY_TIMEOUT, self.next_frame()).await.expect("no reply in time");
        reply.expect("the server closed the connection instead of replying")
    }

    /// Reads until the server closes the connection, failing on any further reply.
    pub async fn expect_closed(&mut self) {
        let next = tokio::time::timeout(REPLY_TIMEOUT, self.next_frame()).await.expect("the connection stayed open");
        assert_eq!(next, None, "expected the connection to close");
    }

    /// Closes the client's side of the connection.
    pub async fn shut_down(&mut self) {
        self.stream.shutdown().await.unwrap();
    }

    async fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.parser.parse(&mut self.buffer).unwrap() {
                return Some(frame);
            }
            match self.stream.read_buf(&mut self.buffer).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }
}

/// The wire form of a command.
pub fn request(words: &[&str]) -> Vec<u8> {
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

/// The text of an error reply; fails the test for any other reply.
pub fn error_text(frame: &Frame) -> String {
    match frame {
        Frame::Error(message) => String::from_utf8_lossy(message).into_owned(),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// The text of a bulk reply; fails the test for any other reply.
pub fn bulk_text(frame: &Frame) -> String {
    match frame {
        Frame::Bulk(data) => String::from_utf8_lossy(data).into_owned(),
        other => panic!("expected a bulk string, got {other:?}"),
    }
}
