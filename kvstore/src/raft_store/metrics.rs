//! [`StorageMetrics`]: what the store counts about its writes, for a metrics exporter.
//!
//! The store updates the counters as it persists; the exporter reads them through a cheap
//! [`StorageMetrics::snapshot`]. They are atomics behind the `Arc` that
//! [`RaftStore::metrics`](super::RaftStore::metrics) hands out, never statics, so two stores
//! in one simulation keep separate counts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds, in microseconds, of the WAL sync latency histogram's buckets; a last,
/// implicit bucket holds everything slower. A sync on a fast SSD takes tens of
/// microseconds, on a cloud volume milliseconds, on a struggling disk seconds.
pub const SYNC_DURATION_BUCKET_BOUNDS_MICROS: [u64; 14] =
    [25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000];

/// The store's counters, shared with whoever exports them.
#[derive(Debug, Default)]
pub struct StorageMetrics {
    syncs: AtomicU64,
    sync_duration_micros_sum: AtomicU64,
    /// One counter per bucket of [`SYNC_DURATION_BUCKET_BOUNDS_MICROS`], plus one for slower syncs.
    sync_duration_buckets: [AtomicU64; SYNC_DURATION_BUCKET_BOUNDS_MICROS.len() + 1],
    wal_bytes_written: AtomicU64,
}

/// A copy of the counters at one moment. Each counter is read atomically, the set of them
/// is not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageMetricsSnapshot {
    /// WAL syncs: one per persisted batch. Each is one fsync of the active segment, plus one
    /// of the WAL directory when a segment was created since the last sync.
    pub syncs: u64,
    /// Time spent in those syncs, which includes writing the batch's buffered records.
    pub sync_duration_micros_sum: u64,
    /// Syncs per latency bucket (not cumulative), as in [`SYNC_DURATION_BUCKET_BOUNDS_MICROS`];
    /// the last holds the rest.
    pub sync_duration_buckets: Vec<u64>,
    /// Bytes of records appended to the WAL, framing included (segment headers are not).
    pub wal_bytes_written: u64,
}

impl StorageMetrics {
    /// Counts one WAL sync that took `duration`, whether or not it succeeded.
    pub(super) fn record_sync(&self, duration: Duration) {
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        let bucket = SYNC_DURATION_BUCKET_BOUNDS_MICROS.partition_point(|&bound| bound < micros);
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.sync_duration_micros_sum.fetch_add(micros, Ordering::Relaxed);
        self.sync_duration_buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts bytes appended to the WAL.
    pub(super) fn record_wal_bytes(&self, bytes: usize) {
        self.wal_bytes_written.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> StorageMetricsSnapshot {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        StorageMetricsSnapshot {
            syncs: read(&self.syncs),
            sync_duration_micros_sum: read(&self.sync_duration_micros_sum),
            sync_duration_buckets: self.sync_duration_buckets.iter().map(read).collect(),
            wal_bytes_written: read(&self.wal_bytes_written),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_durations_land_in_the_first_bucket_that_holds_them() {
        let metrics = StorageMetrics::default();
        metrics.record_sync(Duration::from_micros(25));
        metrics.record_sync(Duration::from_micros(26));
        metrics.record_sync(Duration::from_secs(3));
        metrics.record_wal_bytes(100);
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.syncs, 3);
        assert_eq!(snapshot.sync_duration_buckets[0], 1);
        assert_eq!(snapshot.sync_duration_buckets[1], 1);
        assert_eq!(snapshot.sync_duration_buckets[SYNC_DURATION_BUCKET_BOUNDS_MICROS.len()], 1);
        assert_eq!(snapshot.sync_duration_micros_sum, 3_000_051);
        assert_eq!(snapshot.wal_bytes_written, 100);
    }
}
