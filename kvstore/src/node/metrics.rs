//! [`NodeMetrics`]: what the node loop counts, for a metrics exporter.
//!
//! The loop's state (role, term, indexes) is published as a [`NodeStatus`](super::NodeStatus);
//! these are the counters that a status snapshot cannot carry. Atomics behind an `Arc`
//! shared by the loop and [`NodeHandle`](super::NodeHandle), never statics.

use std::sync::atomic::{AtomicU64, Ordering};

/// The node loop's counters.
#[derive(Debug, Default)]
pub struct NodeMetrics {
    write_proposals: AtomicU64,
    read_index_requests: AtomicU64,
    snapshots_saved: AtomicU64,
    snapshots_installed: AtomicU64,
    last_snapshot_bytes: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeMetricsSnapshot {
    /// Client writes the engine accepted into the leader's log (retries included).
    pub write_proposals: u64,
    /// Read indexes asked of the engine as leader (ReadIndex or lease); one serves every read
    /// of its mode waiting at the time.
    pub read_index_requests: u64,
    /// Snapshots of this node's own state machine written (each compacts the log).
    pub snapshots_saved: u64,
    /// Snapshots received from a leader and installed.
    pub snapshots_installed: u64,
    /// The size of the latest snapshot saved or installed.
    pub last_snapshot_bytes: u64,
}

impl NodeMetrics {
    pub(super) fn record_write_proposal(&self) {
        self.write_proposals.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn record_read_index_request(&self) {
        self.read_index_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn record_snapshot_saved(&self, bytes: usize) {
        self.snapshots_saved.fetch_add(1, Ordering::Relaxed);
        self.last_snapshot_bytes.store(bytes as u64, Ordering::Relaxed);
    }

    pub(super) fn record_snapshot_installed(&self, bytes: usize) {
        self.snapshots_installed.fetch_add(1, Ordering::Relaxed);
        self.last_snapshot_bytes.store(bytes as u64, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> NodeMetricsSnapshot {
        NodeMetricsSnapshot {
            write_proposals: self.write_proposals.load(Ordering::Relaxed),
            read_index_requests: self.read_index_requests.load(Ordering::Relaxed),
            snapshots_saved: self.snapshots_saved.load(Ordering::Relaxed),
            snapshots_installed: self.snapshots_installed.load(Ordering::Relaxed),
            last_snapshot_bytes: self.last_snapshot_bytes.load(Ordering::Relaxed),
        }
    }
}
