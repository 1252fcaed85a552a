//! The peer transport: framed TCP streams that carry batches of serde messages between
//! the nodes of one cluster.
//!
//! Code map:
//! - [`config`]: [`TransportConfig`], identities and limits.
//! - [`frame`]: pure framing of message batches (length, CRC32C, postcard `Vec<M>`).
//! - [`handshake`]: pure encoding and checks of the [`Hello`] that opens a connection.
//! - [`faults`]: the [`MessageFaults`] hook through which the simulator injects loss,
//!   duplication and delay.
//! - [`status`]: [`TransportStatus`], connection state and counters for metrics.
//! - `stream`, `outbound`, `inbound`: the async code, the only part that does I/O.
//!
//! # Peers
//!
//! The peers are the nodes of [`TransportConfig::peers`] plus those given to
//! [`Transport::add_peer`] while running, which is how membership changes reach the
//! transport. A peer is never removed and never moves: node ids are never reused, so an id
//! names one node at one address for good. A node that is not (yet) a peer is a stranger:
//! its dials are refused in the handshake and messages to it are dropped. Adding a peer
//! takes short locks that are never held across an `.await`, so it cannot stall
//! [`Transport::send`] or the connection tasks.
//!
//! # Who dials whom
//!
//! Each node dials every peer for its own outbound messages, and a stream carries messages
//! one way only: dialer to acceptor (the acceptor writes just its handshake answer). So
//! there is exactly one stream per ordered pair of nodes, two per pair. This avoids the
//! dial races of a shared stream (both sides dialling at once, deciding which stream
//! survives), lets the side that has something to send repair its own direction without
//! waiting for the other, and gives the sender task sole ownership of its stream. If a node
//! dials again (it restarted), the acceptor closes the older stream from that node.
//!
//! # Delivery
//!
//! Messages to one peer arrive in the order they were sent, at most once, unless the fault
//! hook says otherwise. Nothing is retransmitted: a message is dropped (and counted) when
//! the peer's queue is full, when it is queued while the peer is unreachable (between
//! failed dials the queue is discarded, so a peer that comes back gets fresh messages
//! rather than a stale backlog), or when the write of its frame fails.
//!
//! # Wire format
//!
//! ```text
//! dialer -> acceptor   "TLYP" | version u16 LE | frame(postcard Hello)
//! acceptor -> dialer   "TLYP" | version u16 LE | frame(postcard Hello)   (or a close)
//! dialer -> acceptor   frame(postcard Vec<M>) ...
//! frame                length u32 LE | CRC32C(payload) u32 LE | payload
//! ```
//!
//! **Architecture Invariant:** [`Transport::send`] never blocks and never fails loudly: a
//! message for a slow, absent or unknown peer is dropped and counted, because Raft
//! tolerates loss and the node loop must not wait on the network.
//!
//! **Architecture Invariant:** bytes from the network never cause a panic or an
//! allocation larger than the configured limits; a bad peer loses its connection.
//!
//! **Architecture Invariant:** no statics, no randomness, no threads: the same code runs on
//! tokio and, unchanged, inside the madsim simulator.

pub mod config;
pub mod faults;
pub mod frame;
pub mod handshake;
pub mod status;

mod inbound;
mod outbound;
mod stream;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard};

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use config::TransportConfig;
pub use faults::{FaultDecision, MessageFaults};
pub use handshake::Hello;
pub use status::{PeerStatus, TransportStatus};
pub use stream::ConnectionError;

use handshake::{check_dialer, HelloRefusal};
use outbound::{Outbound, SharedFaults};
use status::{count, PeerShared};

/// Why a transport could not start.
#[derive(Debug, thiserror::Error)]
pub enum TransportStartError {
    /// The configuration is inconsistent.
    #[error("invalid transport configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// The listening address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The configured address.
        address: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// Why [`Transport::send`] dropped a message. The drop is already counted in the status;
/// the error is for callers that want to log or react.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The destination is not a peer (neither configured nor added).
    #[error("node {to} is not a peer")]
    UnknownPeer {
        /// The destination.
        to: u64,
    },
    /// The peer's queue is full: the peer is slow or unreachable.
    #[error("the queue for node {to} is full")]
    QueueFull {
        /// The destination.
        to: u64,
    },
    /// The peer's sender task has ended, which happens only if it panicked.
    #[error("the sender for node {to} has stopped")]
    Stopped {
        /// The destination.
        to: u64,
    },
}

/// State shared by the transport handle and all its tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The configuration at start. Its `peers` are only the initial ones: `peers` below is
    /// the current set.
    config: TransportConfig,
    /// Every peer, configured or added. Entries are only ever inserted, so a peer's
    /// [`PeerShared`] is the same for the life of the transport.
    peers: RwLock<BTreeMap<u64, Arc<PeerShared>>>,
    messages_dropped_unknown_peer: AtomicU64,
    connections_refused: AtomicU64,
    connections_over_limit: AtomicU64,
    /// The live inbound connection of each peer. Registering a newer one drops the older
    /// one's sender, which tells that connection's task to end.
    inbound_registrations: Mutex<BTreeMap<u64, (u64, oneshot::Sender<()>)>>,
    next_registration: AtomicU64,
}

impl Shared {
    fn new(config: TransportConfig) -> Self {
        let peers = config.peers.iter().map(|(id, address)| (*id, Arc::new(PeerShared::new(*address)))).collect();
        Shared {
            config,
            peers: RwLock::new(peers),
            messages_dropped_unknown_peer: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            connections_over_limit: AtomicU64::new(0),
            inbound_registrations: Mutex::new(BTreeMap::new()),
            next_registration: AtomicU64::new(0),
        }
    }

    /// The hello we send, as dialer and as acceptor.
    fn hello(&self) -> Hello {
        Hello {
            cluster_id: self.config.cluster_id.clone(),
            node_id: self.config.node_id,
            client_address: self.config.client_address.clone(),
        }
    }

    /// The current peers. Hold the guard briefly, and never across an `.await`.
    fn read_peers(&self) -> RwLockReadGuard<'_, BTreeMap<u64, Arc<PeerShared>>> {
        // Each change is one insert, so the map is consistent even if a holder panicked.
        self.peers.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `id` a peer at `address`; if it already is one, returns its address instead.
    fn insert_peer(&self, id: u64, address: SocketAddr) -> Result<Arc<PeerShared>, SocketAddr> {
        let mut peers = self.peers.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = peers.get(&id) {
            return Err(known.address());
        }
        let peer = Arc::new(PeerShared::new(address));
        peers.insert(id, Arc::clone(&peer));
        Ok(peer)
    }

    /// Checks a dialer's hello against the current peers, and returns the dialer's state.
    fn accept_dialer(&self, hello: &Hello) -> Result<Arc<PeerShared>, HelloRefusal> {
        let peers = self.read_peers();
        check_dialer(hello, &self.config.cluster_id, self.config.node_id, &peers)?;
        // The check found the dialer under this same lock, and peers are never removed;
        // the fallback only keeps network input away from a panic path.
        peers.get(&hello.node_id).cloned().ok_or(HelloRefusal::UnknownNode { node_id: hello.node_id })
    }

    fn registrations(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, (u64, oneshot::Sender<()>)>> {
        // The map stays consistent even if a holder panicked: each change is one insert or
        // remove.
        self.inbound_registrations.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes a new connection the peer's current one, ending the previous one. Returns the
    /// registration number and the signal that a later connection replaced this one.
    fn register_inbound(&self, peer_id: u64) -> (u64, oneshot::Receiver<()>) {
        let registration = self.next_registration.fetch_add(1, Ordering::Relaxed);
        let (replace, replaced) = oneshot::channel();
        self.registrations().insert(peer_id, (registration, replace));
        (registration, replaced)
    }

    /// Removes a connection's registration if it is still the current one; returns whether it was.
    fn unregister_inbound(&self, peer_id: u64, registration: u64) -> bool {
        let mut registrations = self.registrations();
        let current = registrations.get(&peer_id).is_some_and(|(number, _)| *number == registration);
        if current {
            registrations.remove(&peer_id);
        }
        current
    }
}

/// A running peer transport: a listener, and one sender task per peer.
///
/// Messages arrive as `(from_node_id, message)` on the channel given to
/// [`Transport::start`]. Dropping the transport aborts its tasks; [`Transport::shutdown`]
/// also waits until they have ended, so the listening port is free when it returns.
pub struct Transport<M> {
    shared: Arc<Shared>,
    /// The fault hook, kept so that peers added later are sent through it too.
    faults: Option<SharedFaults<M>>,
    /// The runtime the transport started on, where sender tasks of added peers are spawned.
    runtime: tokio::runtime::Handle,
    /// The queue of each peer's sender task. Locks on it are never held across an `.await`.
    queues: RwLock<BTreeMap<u64, PeerQueue<M>>>,
    /// The accept loop and every sender task, configured or added.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    local_address: SocketAddr,
}

/// The sending end of one peer's queue, with the peer's counters.
struct PeerQueue<M> {
    sender: mpsc::Sender<M>,
    peer: Arc<PeerShared>,
}

impl<M> fmt::Debug for Transport<M> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Transport")
            .field("node_id", &self.shared.config.node_id)
            .field("local_address", &self.local_address)
            .field("peers", &self.peers())
            .finish()
    }
}

impl<M> Transport<M>
where
    M: Serialize + DeserializeOwned + Send + 'static,
{
    /// Binds the listener and starts the accept loop and one sender task per peer.
    pub async fn start(
        config: TransportConfig,
        inbound: mpsc::Sender<(u64, M)>,
    ) -> Result<Transport<M>, TransportStartError> {
        Self::start_with_faults(config, inbound, None).await
    }

    /// Like [`Transport::start`], with a hook that decides the fate of each outbound
    /// message; the simulator uses it to inject Raft-level faults.
    pub async fn start_with_faults(
        config: TransportConfig,
        inbound: mpsc::Sender<(u64, M)>,
        faults: Option<Box<dyn MessageFaults<M>>>,
    ) -> Result<Transport<M>, TransportStartError> {
        config.validate().map_err(|reason| TransportStartError::InvalidConfig { reason })?;
        let bind_error = |source| TransportStartError::Bind { address: config.listen, source };
        let listener = TcpListener::bind(config.listen).await.map_err(bind_error)?;
        let local_address = listener.local_addr().map_err(bind_error)?;
        let shared = Arc::new(Shared::new(config));
        let runtime = tokio::runtime::Handle::current();
        let accept_task = runtime.spawn(inbound::accept_loop(listener, Arc::clone(&shared), inbound));
        let transport = Transport {
            shared,
            faults: faults.map(|faults| Arc::new(Mutex::new(faults))),
            runtime,
            queues: RwLock::new(BTreeMap::new()),
            tasks: Mutex::new(vec![accept_task]),
            local_address,
        };
        let configured: Vec<(u64, Arc<PeerShared>)> =
            transport.shared.read_peers().iter().map(|(id, peer)| (*id, Arc::clone(peer))).collect();
        for (peer_id, peer) in configured {
            transport.start_outbound(peer_id, peer);
        }
        tracing::info!(node = transport.node_id(), address = %local_address, "peer transport listening");
        Ok(transport)
    }

    /// Adds `id` at `address` as a peer: messages to it are sent from now on, and its dials
    /// are accepted. Returns false (and changes nothing) if `id` is this node, or is already
    /// a peer (at the same or another address: node ids are never reused, so a different
    /// address is logged as a warning and ignored).
    ///
    /// Never blocks on the network. The peer's sender task is spawned on the runtime the
    /// transport started on; under the simulator, which has no such handle, on the node
    /// calling this, so call it from the transport's own node.
    pub fn add_peer(&self, id: u64, address: SocketAddr) -> bool {
        let node_id = self.node_id();
        if id == node_id {
            tracing::debug!(node = node_id, "not adding ourselves as a peer");
            return false;
        }
        match self.shared.insert_peer(id, address) {
            Ok(peer) => {
                self.start_outbound(id, peer);
                tracing::info!(node = node_id, peer = id, %address, "added a peer");
                true
            }
            Err(known) if known == address => false,
            Err(known) => {
                tracing::warn!(
                    node = node_id,
                    peer = id,
                    %known,
                    ignored = %address,
                    "a peer cannot move (node ids are never reused); keeping its known address"
                );
                false
            }
        }
    }

    /// Queues `message` for peer `to` without waiting. A message that cannot be queued is
    /// dropped and counted; see [`SendError`].
    pub fn send(&self, to: u64, message: M) -> Result<(), SendError> {
        let queues = self.queues.read().unwrap_or_else(PoisonError::into_inner);
        let Some(queue) = queues.get(&to) else {
            count(&self.shared.messages_dropped_unknown_peer, 1);
            return Err(SendError::UnknownPeer { to });
        };
        match queue.sender.try_send(message) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_message)) => {
                count(&queue.peer.messages_dropped_queue_full, 1);
                Err(SendError::QueueFull { to })
            }
            Err(mpsc::error::TrySendError::Closed(_message)) => Err(SendError::Stopped { to }),
        }
    }

    /// Spawns the sender task of a peer just inserted into the shared peers, and opens its
    /// queue to [`Transport::send`].
    fn start_outbound(&self, peer_id: u64, peer: Arc<PeerShared>) {
        let (sender, receiver) = mpsc::channel(self.shared.config.queue_messages_max);
        let outbound =
            Outbound::new(peer_id, Arc::clone(&self.shared), Arc::clone(&peer), receiver, self.faults.clone());
        let task = self.runtime.spawn(outbound.run());
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner).push(task);
        let previous =
            self.queues.write().unwrap_or_else(PoisonError::into_inner).insert(peer_id, PeerQueue { sender, peer });
        assert!(previous.is_none(), "peer {peer_id} got a second sender task");
    }
}

impl<M> Transport<M> {
    /// The address actually bound, which differs from the configured one for port 0.
    pub fn local_address(&self) -> SocketAddr {
        self.local_address
    }

    /// Our node id.
    pub fn node_id(&self) -> u64 {
        self.shared.config.node_id
    }

    /// The peers and their addresses now.
    pub fn peers(&self) -> BTreeMap<u64, SocketAddr> {
        self.shared.read_peers().iter().map(|(id, peer)| (*id, peer.address())).collect()
    }

    /// A snapshot of connection states and counters; cheap enough to call per metrics scrape.
    pub fn status(&self) -> TransportStatus {
        let relaxed = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        TransportStatus {
            node_id: self.shared.config.node_id,
            peers: self.shared.read_peers().iter().map(|(id, peer)| (*id, peer.snapshot())).collect(),
            messages_dropped_unknown_peer: relaxed(&self.shared.messages_dropped_unknown_peer),
            connections_refused: relaxed(&self.shared.connections_refused),
            connections_over_limit: relaxed(&self.shared.connections_over_limit),
        }
    }

    /// Stops every task and waits until they have ended: the listener is closed and all
    /// connections are dropped when this returns. Queued messages are discarded.
    pub async fn shutdown(mut self) {
        let tasks = std::mem::take(self.tasks.get_mut().unwrap_or_else(PoisonError::into_inner));
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            // Every task was just aborted, so each ends cancelled, unless it had panicked.
            if let Err(error) = task.await {
                if error.is_panic() {
                    tracing::error!(%error, "a peer transport task had panicked");
                }
            }
        }
    }
}

impl<M> Drop for Transport<M> {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().unwrap_or_else(PoisonError::into_inner).iter() {
            task.abort();
        }
    }
}
