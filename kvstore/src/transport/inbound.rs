//! The accepting side: the accept loop and one task per accepted connection, which checks
//! the dialer's hello, answers it, then decodes frames and forwards their messages.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use serde::de::DeserializeOwned;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::frame::decode_batch_frame;
use super::handshake::{decode_hello, encode_hello, Hello};
use super::status::{count, Direction, PeerShared};
use super::stream::{read_decoded, with_timeout, write_flushed, ConnectionError};
use super::Shared;

/// Pause after a failed accept (such as running out of file descriptors), so the loop does
/// not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE_MS: u64 = 100;

/// The tasks of accepted connections. Dropping it (when the accept loop is aborted) aborts
/// them, so shutting the transport down ends every connection.
#[derive(Debug, Default)]
struct ConnectionTasks {
    tasks: Vec<JoinHandle<()>>,
}

impl ConnectionTasks {
    fn live_count(&mut self) -> usize {
        self.tasks.retain(|task| !task.is_finished());
        self.tasks.len()
    }
}

impl Drop for ConnectionTasks {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Accepts connections until aborted, giving each its own task.
pub(crate) async fn accept_loop<M>(listener: TcpListener, shared: Arc<Shared>, inbound: mpsc::Sender<(u64, M)>)
where
    M: DeserializeOwned + Send + 'static,
{
    let mut connections = ConnectionTasks::default();
    loop {
        let (stream, address) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accepting a peer connection failed");
                tokio::time::sleep(Duration::from_millis(ACCEPT_ERROR_PAUSE_MS)).await;
                continue;
            }
        };
        if connections.live_count() >= shared.config.inbound_connections_max {
            tracing::warn!(%address, "too many inbound connections; closing the new one");
            count(&shared.connections_over_limit, 1);
            continue;
        }
        let task = serve_connection(stream, address, Arc::clone(&shared), inbound.clone());
        connections.tasks.push(tokio::spawn(task));
    }
}

async fn serve_connection<M>(
    stream: TcpStream,
    address: SocketAddr,
    shared: Arc<Shared>,
    inbound: mpsc::Sender<(u64, M)>,
) where
    M: DeserializeOwned + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut buffer = BytesMut::new();
    let timeout = Duration::from_millis(shared.config.connect_timeout_ms);
    let handshake = answer_hello(&mut reader, &mut writer, &mut buffer, &shared, timeout);
    let (hello, peer) = match with_timeout(timeout, "handshaking", handshake).await {
        Ok(accepted) => accepted,
        Err(error) => {
            tracing::warn!(%address, %error, "refused a peer connection");
            count(&shared.connections_refused, 1);
            return;
        }
    };
    let peer_id = hello.node_id;
    let (registration, superseded) = shared.register_inbound(peer_id);
    peer.set_connected(Direction::Inbound, hello.client_address);
    let connection =
        InboundConnection { peer_id, peer: &peer, frame_size_bytes_max: shared.config.frame_size_bytes_max };
    let result = tokio::select! {
        // Biased for a fixed polling order, which keeps simulation runs deterministic.
        biased;
        _superseded = superseded => {
            tracing::debug!(peer = peer_id, "a newer connection from the peer replaced this one");
            return;
        }
        result = connection.receive(&mut reader, &mut buffer, &inbound) => result,
    };
    let error = result.err().filter(|error| !matches!(error, ConnectionError::Closed));
    if let Some(error) = &error {
        tracing::warn!(peer = peer_id, %address, %error, "closed a peer connection");
    }
    // A newer connection may have registered meanwhile; the state is then its to report.
    if shared.unregister_inbound(peer_id, registration) {
        peer.set_disconnected(Direction::Inbound, error.map(|error| error.to_string()));
    }
}

/// Reads and checks the dialer's hello against the current peers, then answers with ours.
/// Returns the hello and the dialer's peer state.
async fn answer_hello(
    reader: &mut ReadHalf<TcpStream>,
    writer: &mut WriteHalf<TcpStream>,
    buffer: &mut BytesMut,
    shared: &Shared,
    timeout: Duration,
) -> Result<(Hello, Arc<PeerShared>), ConnectionError> {
    let (hello, _size_bytes) = read_decoded(reader, buffer, decode_hello).await?;
    let peer = shared.accept_dialer(&hello)?;
    let mut reply = Vec::new();
    encode_hello(&mut reply, &shared.hello());
    write_flushed(writer, &reply, timeout).await?;
    Ok((hello, peer))
}

/// An accepted connection after its handshake.
struct InboundConnection<'a> {
    peer_id: u64,
    peer: &'a PeerShared,
    frame_size_bytes_max: u32,
}

impl InboundConnection<'_> {
    /// Forwards messages until the connection fails, or returns `Ok` when the node stopped
    /// listening. Forwarding awaits the node, so a slow node slows the peer down through TCP
    /// instead of growing a buffer here.
    async fn receive<M: DeserializeOwned>(
        &self,
        reader: &mut ReadHalf<TcpStream>,
        buffer: &mut BytesMut,
        inbound: &mpsc::Sender<(u64, M)>,
    ) -> Result<(), ConnectionError> {
        let frame_size_bytes_max = self.frame_size_bytes_max;
        loop {
            let decode = |bytes: &[u8]| decode_batch_frame::<M>(bytes, frame_size_bytes_max);
            let (messages, size_bytes) = read_decoded(reader, buffer, decode).await?;
            count(&self.peer.frames_received, 1);
            count(&self.peer.bytes_received, size_bytes as u64);
            count(&self.peer.messages_received, messages.len() as u64);
            for message in messages {
                if inbound.send((self.peer_id, message)).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
}
