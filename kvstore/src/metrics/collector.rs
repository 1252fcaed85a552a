//! Turns [`Snapshots`](super::Snapshots) into OpenMetrics families at scrape time.
//!
//! One [`Collector`] asks its [`MetricsSource`] for snapshots on every scrape and encodes
//! them with `prometheus-client`'s constant metrics, so the registry holds no state of its
//! own. Names follow Prometheus conventions: prefix `tally_`, base units (seconds, bytes),
//! units last, counters ending in `_total`. Histograms are re-encoded from the fixed
//! buckets their owners keep in microseconds.

use std::fmt;
use std::sync::Arc;

use engine::Role;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::MetricsSource;
use crate::node::{NodeMetricsSnapshot, NodeStatus};
use crate::raft_store::{StorageMetricsSnapshot, SYNC_DURATION_BUCKET_BOUNDS_MICROS};
use crate::server::{CommandMetrics, MetricsSnapshot, LATENCY_BUCKET_BOUNDS_MICROS};
use crate::transport::status::PeerStatus;
use crate::transport::TransportStatus;

/// A registry that reports `source` at every scrape.
pub fn registry(source: Arc<dyn MetricsSource>) -> Registry {
    let mut registry = Registry::with_prefix("tally");
    registry.register_collector(Box::new(SourceCollector { source }));
    registry
}

/// The registry in the OpenMetrics text format, `# EOF` included.
pub fn render(registry: &Registry) -> Result<String, fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}

#[derive(Debug)]
struct SourceCollector {
    source: Arc<dyn MetricsSource>,
}

impl Collector for SourceCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let snapshots = self.source.snapshots();
        encode_server(&mut encoder, &snapshots.server)?;
        encode_raft(&mut encoder, &snapshots.node_status, &snapshots.node_metrics)?;
        encode_storage(&mut encoder, &snapshots.storage)?;
        if let Some(transport) = &snapshots.transport {
            encode_transport(&mut encoder, transport)?;
        }
        Ok(())
    }
}

fn encode_server(encoder: &mut DescriptorEncoder, server: &MetricsSnapshot) -> fmt::Result {
    let per_command = |value: fn(&CommandMetrics) -> u64| {
        server.commands.iter().map(move |command| ([("command", command.name)], value(command)))
    };
    counters(encoder, "commands", "Commands served, by command.", per_command(|command| command.calls))?;
    let help = "Commands answered with an error reply, by command.";
    counters(encoder, "command_errors", help, per_command(|command| command.errors))?;
    let help = "Time from dispatching a command to its reply being ready, by command.";
    let mut family =
        encoder.encode_descriptor("command_duration", help, Some(&Unit::Seconds), MetricType::Histogram)?;
    for command in &server.commands {
        let histogram = BucketCounts {
            bounds_micros: &LATENCY_BUCKET_BOUNDS_MICROS,
            counts: &command.latency_buckets,
            sum_micros: command.latency_micros_sum,
        };
        histogram.encode(family.encode_family(&[("command", command.name)])?)?;
    }
    counter(encoder, "unknown_commands", "Requests naming no known command.", server.unknown_commands)?;
    counter(encoder, "client_connections_accepted", "Client connections accepted.", server.connections_accepted)?;
    gauge(encoder, "client_connections", "Client connections open now.", server.connections_open)?;
    let help = "Client connections closed for malformed or oversized input.";
    counter(encoder, "client_protocol_errors", help, server.protocol_errors)
}

fn encode_raft(encoder: &mut DescriptorEncoder, status: &NodeStatus, metrics: &NodeMetricsSnapshot) -> fmt::Result {
    let roles = [
        (Role::Follower, "follower"),
        (Role::PreCandidate, "pre_candidate"),
        (Role::Candidate, "candidate"),
        (Role::Leader, "leader"),
    ];
    let help = "1 for the role this node plays now, 0 for the others.";
    gauges(encoder, "raft_role", help, roles.map(|(role, name)| ([("role", name)], u64::from(status.role == role))))?;
    gauge(encoder, "raft_term", "The current Raft term.", status.term)?;
    let help = "The leader's node id as this node knows it; 0 when it knows none.";
    gauge(encoder, "raft_leader_id", help, status.leader_id.unwrap_or(0))?;
    gauge(encoder, "raft_commit_index", "The highest log index known to be committed.", status.commit_index)?;
    gauge(encoder, "raft_applied_index", "The highest log index applied to the state machine.", status.applied_index)?;
    gauge(encoder, "raft_last_log_index", "The index of the last entry in this node's log.", status.last_log_index)?;
    gauge(encoder, "raft_log_entries", "Entries held in this node's log.", status.log_entries)?;
    gauge(encoder, "raft_voters", "Voting members of the current configuration.", status.voters.len() as u64)?;
    let help = "Client writes this node proposed as leader.";
    counter(encoder, "raft_write_proposals", help, metrics.write_proposals)?;
    let help = "Read indexes this node asked for as leader (one serves every read waiting at the time).";
    counter(encoder, "raft_read_index_requests", help, metrics.read_index_requests)
}

fn encode_storage(encoder: &mut DescriptorEncoder, storage: &StorageMetricsSnapshot) -> fmt::Result {
    let help = "Time to make one batch of the Raft log durable: write the buffered records, then fsync.";
    let family = encoder.encode_descriptor("fsync_duration", help, Some(&Unit::Seconds), MetricType::Histogram)?;
    let histogram = BucketCounts {
        bounds_micros: &SYNC_DURATION_BUCKET_BOUNDS_MICROS,
        counts: &storage.sync_duration_buckets,
        sum_micros: storage.sync_duration_micros_sum,
    };
    histogram.encode(family)?;
    let help = "Bytes of records appended to the write-ahead log, framing included.";
    counter(encoder, "wal_bytes_written", help, storage.wal_bytes_written)
}

fn encode_transport(encoder: &mut DescriptorEncoder, transport: &TransportStatus) -> fmt::Result {
    let peers: Vec<(String, &PeerStatus)> = transport.peers.iter().map(|(id, peer)| (id.to_string(), peer)).collect();
    let per_peer =
        |value: fn(&PeerStatus) -> u64| peers.iter().map(move |(id, peer)| ([("peer", id.as_str())], value(peer)));
    let help = "1 while the connection to or from the peer is up, by direction.";
    let connected = peers.iter().flat_map(|(id, peer)| {
        [
            ([("peer", id.as_str()), ("direction", "outbound")], u64::from(peer.outbound_connected)),
            ([("peer", id.as_str()), ("direction", "inbound")], u64::from(peer.inbound_connected)),
        ]
    });
    gauges(encoder, "peer_connected", help, connected)?;
    let help = "Outbound handshakes completed; more than one means reconnects.";
    counters(encoder, "peer_connections_established", help, per_peer(|peer| peer.connections_established))?;
    counters(encoder, "peer_messages_sent", "Messages written to the peer.", per_peer(|peer| peer.messages_sent))?;
    let help = "Messages received from the peer.";
    counters(encoder, "peer_messages_received", help, per_peer(|peer| peer.messages_received))?;
    let help = "Bytes of frames written to the peer, headers included.";
    counters(encoder, "peer_bytes_sent", help, per_peer(|peer| peer.bytes_sent))?;
    let help = "Bytes of frames received from the peer, headers included.";
    counters(encoder, "peer_bytes_received", help, per_peer(|peer| peer.bytes_received))?;
    let dropped = peers.iter().flat_map(|(id, peer)| {
        [
            ("queue_full", peer.messages_dropped_queue_full),
            ("fault", peer.messages_dropped_by_fault),
            ("unsendable", peer.messages_dropped_unsendable),
            ("lost_on_error", peer.messages_lost_on_error),
            ("unreachable", peer.messages_dropped_unreachable),
        ]
        .map(|(reason, value)| ([("peer", id.as_str()), ("reason", reason)], value))
    });
    let help = "Messages for the peer that did not (or may not have) left, by reason.";
    counters(encoder, "peer_messages_dropped", help, dropped)?;
    let help = "Inbound peer connections refused in the handshake.";
    counter(encoder, "peer_connections_refused", help, transport.connections_refused)?;
    let help = "Inbound peer connections closed at once because too many were open.";
    counter(encoder, "peer_connections_over_limit", help, transport.connections_over_limit)?;
    let help = "Messages addressed to a node that is not a configured peer.";
    counter(encoder, "peer_messages_unknown_peer", help, transport.messages_dropped_unknown_peer)
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    ConstCounter::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

fn counters<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in series {
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauges<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A histogram kept as per-bucket counts (not cumulative) over bounds in microseconds,
/// with one more, unbounded bucket at the end; encoded in seconds.
struct BucketCounts<'a> {
    bounds_micros: &'a [u64],
    counts: &'a [u64],
    sum_micros: u64,
}

impl EncodeMetric for BucketCounts<'_> {
    fn encode(&self, mut encoder: MetricEncoder) -> fmt::Result {
        debug_assert_eq!(self.counts.len(), self.bounds_micros.len() + 1, "one bucket per bound, plus +Inf");
        let bounds_seconds = self.bounds_micros.iter().map(|&bound| seconds(bound));
        // `f64::MAX` is how prometheus-client spells the +Inf bucket.
        let bounds_seconds = bounds_seconds.chain(std::iter::once(f64::MAX));
        let buckets: Vec<(f64, u64)> = bounds_seconds.zip(self.counts.iter().copied()).collect();
        // The count is the buckets' sum, not a separate counter, so that it always equals
        // the +Inf bucket even when the snapshot raced an update.
        let count = buckets.iter().map(|(_, count)| count).sum();
        encoder.encode_histogram::<NoLabelSet>(seconds(self.sum_micros), count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn seconds(micros: u64) -> f64 {
    micros as f64 / 1_000_000.0
}
