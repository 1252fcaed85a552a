//! The Prometheus exporter behind `--metrics-listen`.
//!
//! Nothing here counts anything. The parts of a process keep their own counters (the
//! server's [`ServerMetrics`], the node's [`NodeStatus`] and [`NodeMetrics`](crate::node::NodeMetrics),
//! the store's [`StorageMetrics`], the transport's [`TransportStatus`]); at each scrape the
//! exporter takes a [`Snapshots`] of all of them and encodes it, so a scrape costs a few
//! atomic loads and some formatting, and nothing is kept between scrapes.
//!
//! Code map:
//! - `collector`: [`registry`] and [`render`]: a `prometheus-client` registry whose one
//!   collector turns [`Snapshots`] into metric families, named `tally_*` with units last.
//! - `endpoint`: [`MetricsEndpoint`], a minimal HTTP/1.1 responder for `GET /metrics`. It is
//!   hand-written rather than built on hyper so that it runs unchanged under the madsim
//!   simulator, like every other socket of the process.

mod collector;
mod endpoint;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::{Arc, Weak};

pub use collector::{registry, render};
pub use endpoint::MetricsEndpoint;

use crate::node::{Backend, NodeHandle, NodeMetricsSnapshot, NodeStatus, PeerMessage};
use crate::raft_store::{StorageMetrics, StorageMetricsSnapshot};
use crate::server::{MetricsSnapshot, ServerMetrics};
use crate::transport::{Transport, TransportStatus};

/// Everything one scrape reports, copied at one moment (each part consistent on its own,
/// not with the others).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshots {
    pub server: MetricsSnapshot,
    pub node_status: NodeStatus,
    pub node_metrics: NodeMetricsSnapshot,
    pub storage: StorageMetricsSnapshot,
    /// `None` once the transport has stopped.
    pub transport: Option<TransportStatus>,
}

/// Where a scrape gets its [`Snapshots`].
pub trait MetricsSource: Send + Sync + fmt::Debug + 'static {
    fn snapshots(&self) -> Snapshots;
}

/// Fixed snapshots report themselves: for tests.
impl MetricsSource for Snapshots {
    fn snapshots(&self) -> Snapshots {
        self.clone()
    }
}

/// The live counters of a running process.
#[derive(Debug)]
pub struct ProcessSources {
    pub server: Arc<ServerMetrics>,
    pub node: NodeHandle,
    pub storage: Arc<StorageMetrics>,
    /// Weak, so that the exporter never holds the transport: a clean shutdown needs the
    /// only reference to it.
    pub transport: Weak<Transport<PeerMessage>>,
}

impl MetricsSource for ProcessSources {
    fn snapshots(&self) -> Snapshots {
        Snapshots {
            server: self.server.snapshot(),
            node_status: self.node.status(),
            node_metrics: self.node.metrics(),
            storage: self.storage.snapshot(),
            transport: self.transport.upgrade().map(|transport| transport.status()),
        }
    }
}
