//! What a [`Transport`](super::Transport) needs to know: who we are, who the peers are, and
//! the limits that keep a slow or hostile peer from costing us unbounded memory or time.

use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Default for [`TransportConfig::frame_size_bytes_max`]: large enough for a snapshot chunk.
pub const FRAME_SIZE_BYTES_MAX_DEFAULT: u32 = 64 * 1024 * 1024;

/// The smallest frame limit accepted: below it, ordinary Raft messages would not fit.
pub const FRAME_SIZE_BYTES_MAX_MINIMUM: u32 = 1024;

/// The longest cluster id or client address: both travel in the handshake, whose size is
/// bounded by [`HELLO_SIZE_BYTES_MAX`](super::handshake::HELLO_SIZE_BYTES_MAX).
pub const IDENTITY_SIZE_BYTES_MAX: usize = 1024;

/// Configuration of one node's peer transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    /// Our node id; dialers claiming it are refused.
    pub node_id: u64,
    /// The cluster we belong to; a node of another cluster is refused in the handshake.
    pub cluster_id: String,
    /// Where we accept peer connections.
    pub listen: SocketAddr,
    /// The other nodes of the cluster at start and their peer addresses (never ourselves).
    /// More are added while running with [`Transport::add_peer`](super::Transport::add_peer).
    pub peers: BTreeMap<u64, SocketAddr>,
    /// Our client-facing address, sent in the handshake so peers can redirect clients to us.
    pub client_address: Option<String>,
    /// The largest frame payload (header excluded) we send or accept. A peer announcing a
    /// larger frame is disconnected before anything is allocated.
    pub frame_size_bytes_max: u32,
    /// Messages queued per peer before [`Transport::send`](super::Transport::send) drops
    /// new ones. Also bounds the messages a fault hook may hold back as delayed.
    pub queue_messages_max: usize,
    /// First wait before redialling a peer after a failure.
    pub reconnect_backoff_ms_min: u64,
    /// The wait doubles after each failure up to this bound.
    pub reconnect_backoff_ms_max: u64,
    /// Bound on a TCP connect plus the handshake, on both the dialling and accepting side,
    /// so a silent address or a silent stranger cannot hold a task forever.
    pub connect_timeout_ms: u64,
    /// Bound on writing and flushing one frame. A peer that stops reading (or a host that
    /// vanished without a reset) is disconnected after it, instead of stalling its queue
    /// until the kernel gives up many minutes later.
    pub write_timeout_ms: u64,
    /// Accepted connections alive at once, counting those still in the handshake; more
    /// are closed at once. Bounds what a flood of strangers costs.
    pub inbound_connections_max: usize,
}

impl TransportConfig {
    /// A configuration with the default limits.
    pub fn new(node_id: u64, cluster_id: String, listen: SocketAddr, peers: BTreeMap<u64, SocketAddr>) -> Self {
        TransportConfig {
            node_id,
            cluster_id,
            listen,
            peers,
            client_address: None,
            frame_size_bytes_max: FRAME_SIZE_BYTES_MAX_DEFAULT,
            queue_messages_max: 4096,
            reconnect_backoff_ms_min: 50,
            reconnect_backoff_ms_max: 2000,
            connect_timeout_ms: 5000,
            write_timeout_ms: 10_000,
            inbound_connections_max: 256,
        }
    }

    /// Returns why this configuration cannot work, if it cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.peers.contains_key(&self.node_id) {
            return Err(format!("peers include our own node id {}", self.node_id));
        }
        let client_address_size_bytes = self.client_address.as_ref().map_or(0, String::len);
        if self.cluster_id.len() > IDENTITY_SIZE_BYTES_MAX || client_address_size_bytes > IDENTITY_SIZE_BYTES_MAX {
            return Err(format!("cluster_id and client_address must be at most {IDENTITY_SIZE_BYTES_MAX} bytes"));
        }
        if self.frame_size_bytes_max < FRAME_SIZE_BYTES_MAX_MINIMUM {
            return Err(format!(
                "frame_size_bytes_max {} is below the minimum {FRAME_SIZE_BYTES_MAX_MINIMUM}",
                self.frame_size_bytes_max
            ));
        }
        if self.queue_messages_max == 0 || self.inbound_connections_max == 0 {
            return Err("queue_messages_max and inbound_connections_max must be at least 1".to_string());
        }
        if self.reconnect_backoff_ms_min == 0 || self.reconnect_backoff_ms_min > self.reconnect_backoff_ms_max {
            return Err("reconnect backoff needs 0 < reconnect_backoff_ms_min <= reconnect_backoff_ms_max".to_string());
        }
        if self.connect_timeout_ms == 0 || self.write_timeout_ms == 0 {
            return Err("connect_timeout_ms and write_timeout_ms must be positive".to_string());
        }
        Ok(())
    }
}
