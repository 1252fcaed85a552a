//! Connection state and counters, updated by the transport's tasks and read through a cheap
//! snapshot for metrics.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A snapshot of the whole transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportStatus {
    /// Our node id.
    pub node_id: u64,
    /// Each peer, configured or added.
    pub peers: BTreeMap<u64, PeerStatus>,
    /// Messages given to [`Transport::send`](super::Transport::send) for a node that is not
    /// a peer.
    pub messages_dropped_unknown_peer: u64,
    /// Inbound connections closed during the handshake: strangers, other clusters, garbage,
    /// or handshakes that timed out.
    pub connections_refused: u64,
    /// Inbound connections closed at once because too many were open.
    pub connections_over_limit: u64,
}

/// A snapshot of one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// The peer's address, as configured or added.
    pub address: SocketAddr,
    /// Whether our stream to the peer has completed its handshake and is usable.
    pub outbound_connected: bool,
    /// Whether the peer's stream to us is open.
    pub inbound_connected: bool,
    /// The client address the peer advertised in its last handshake.
    pub client_address: Option<String>,
    /// The last connection failure in either direction, prefixed by its direction.
    pub last_error: Option<String>,
    /// Outbound handshakes completed, the first included; more than one means reconnects.
    pub connections_established: u64,
    /// Frames written and flushed to the peer.
    pub frames_sent: u64,
    /// Bytes of those frames, headers included.
    pub bytes_sent: u64,
    /// Messages in those frames.
    pub messages_sent: u64,
    /// Frames received from the peer.
    pub frames_received: u64,
    /// Bytes of those frames, headers included.
    pub bytes_received: u64,
    /// Messages in those frames.
    pub messages_received: u64,
    /// Messages refused because the peer's queue was full.
    pub messages_dropped_queue_full: u64,
    /// Messages dropped by the fault hook.
    pub messages_dropped_by_fault: u64,
    /// Messages too large for any frame, or that failed to encode.
    pub messages_dropped_unsendable: u64,
    /// Messages in a frame whose write failed: they may or may not have arrived.
    pub messages_lost_on_error: u64,
    /// Messages discarded while the peer was unreachable (between failed dials).
    pub messages_dropped_unreachable: u64,
}

impl PeerStatus {
    /// All messages that did not (or may not have) left: the sum of the drop counters.
    pub fn messages_dropped(&self) -> u64 {
        self.messages_dropped_queue_full
            + self.messages_dropped_by_fault
            + self.messages_dropped_unsendable
            + self.messages_lost_on_error
            + self.messages_dropped_unreachable
    }
}

/// Which way a connection carries messages, for state updates and error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Outbound,
    Inbound,
}

#[derive(Debug, Default)]
struct ConnectionState {
    outbound_connected: bool,
    inbound_connected: bool,
    client_address: Option<String>,
    last_error: Option<String>,
}

/// The live, shared counterpart of [`PeerStatus`]. Counters are relaxed atomics: each is
/// exact on its own, and a snapshot need not be consistent across counters.
#[derive(Debug)]
pub(crate) struct PeerShared {
    address: SocketAddr,
    state: Mutex<ConnectionState>,
    pub(crate) connections_established: AtomicU64,
    pub(crate) frames_sent: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) messages_sent: AtomicU64,
    pub(crate) frames_received: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) messages_dropped_queue_full: AtomicU64,
    pub(crate) messages_dropped_by_fault: AtomicU64,
    pub(crate) messages_dropped_unsendable: AtomicU64,
    pub(crate) messages_lost_on_error: AtomicU64,
    pub(crate) messages_dropped_unreachable: AtomicU64,
}

/// Adds to a counter; relaxed because counters order nothing.
pub(crate) fn count(counter: &AtomicU64, amount: u64) {
    counter.fetch_add(amount, Ordering::Relaxed);
}

impl PeerShared {
    pub(crate) fn new(address: SocketAddr) -> Self {
        PeerShared {
            address,
            state: Mutex::new(ConnectionState::default()),
            connections_established: AtomicU64::new(0),
            frames_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            messages_sent: AtomicU64::new(0),
            frames_received: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
            messages_dropped_queue_full: AtomicU64::new(0),
            messages_dropped_by_fault: AtomicU64::new(0),
            messages_dropped_unsendable: AtomicU64::new(0),
            messages_lost_on_error: AtomicU64::new(0),
            messages_dropped_unreachable: AtomicU64::new(0),
        }
    }

    /// The peer's address, as configured or added.
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    fn with_state<T>(&self, change: impl FnOnce(&mut ConnectionState) -> T) -> T {
        // A panic while holding this lock cannot leave the plain fields inconsistent, so a
        // poisoned lock is still usable.
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut state)
    }

    /// Records a completed handshake and what the peer advertised in it.
    pub(crate) fn set_connected(&self, direction: Direction, client_address: Option<String>) {
        self.with_state(|state| {
            match direction {
                Direction::Outbound => state.outbound_connected = true,
                Direction::Inbound => state.inbound_connected = true,
            }
            if client_address.is_some() {
                state.client_address = client_address;
            }
        });
    }

    /// Records that a connection ended, and why if it failed.
    pub(crate) fn set_disconnected(&self, direction: Direction, error: Option<String>) {
        self.with_state(|state| {
            match direction {
                Direction::Outbound => state.outbound_connected = false,
                Direction::Inbound => state.inbound_connected = false,
            }
            if let Some(error) = error {
                state.last_error = Some(format!("{}: {error}", direction_name(direction)));
            }
        });
    }

    /// Records a failure that did not change the connection state (a failed dial).
    pub(crate) fn set_error(&self, direction: Direction, error: String) {
        self.with_state(|state| state.last_error = Some(format!("{}: {error}", direction_name(direction))));
    }

    pub(crate) fn snapshot(&self) -> PeerStatus {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let (outbound_connected, inbound_connected, client_address, last_error) = self.with_state(|state| {
            (state.outbound_connected, state.inbound_connected, state.client_address.clone(), state.last_error.clone())
        });
        PeerStatus {
            address: self.address,
            outbound_connected,
            inbound_connected,
            client_address,
            last_error,
            connections_established: read(&self.connections_established),
            frames_sent: read(&self.frames_sent),
            bytes_sent: read(&self.bytes_sent),
            messages_sent: read(&self.messages_sent),
            frames_received: read(&self.frames_received),
            bytes_received: read(&self.bytes_received),
            messages_received: read(&self.messages_received),
            messages_dropped_queue_full: read(&self.messages_dropped_queue_full),
            messages_dropped_by_fault: read(&self.messages_dropped_by_fault),
            messages_dropped_unsendable: read(&self.messages_dropped_unsendable),
            messages_lost_on_error: read(&self.messages_lost_on_error),
            messages_dropped_unreachable: read(&self.messages_dropped_unreachable),
        }
    }
}

fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Outbound => "outbound",
        Direction::Inbound => "inbound",
    }
}
