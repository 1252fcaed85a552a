//! [`ServerMetrics`]: what the server counts, for INFO and for a metrics exporter.
//!
//! Counters are atomics behind an `Arc` that the server and the exporter share; nothing is
//! global, so two servers in one simulation keep separate counts. Latency is the time from
//! dispatching a command to its reply being ready (it excludes waiting behind earlier
//! pipelined replies), in a fixed-bucket histogram that maps directly onto a Prometheus
//! histogram.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::commands::COMMANDS;
use crate::node::ReadMode;

/// Upper bounds, in microseconds, of the latency histogram's buckets; a last, implicit
/// bucket holds everything slower.
pub const LATENCY_BUCKET_BOUNDS_MICROS: [u64; 12] =
    [100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 500_000, 1_000_000];

/// Counters of one command.
#[derive(Debug, Default)]
struct CommandCounters {
    calls: AtomicU64,
    errors: AtomicU64,
    latency_micros_sum: AtomicU64,
    /// One counter per bucket of [`LATENCY_BUCKET_BOUNDS_MICROS`], plus one for slower calls.
    latency_buckets: [AtomicU64; LATENCY_BUCKET_BOUNDS_MICROS.len() + 1],
}

/// The server's counters, shared with whoever exports them.
#[derive(Debug)]
pub struct ServerMetrics {
    /// One entry per command of the table, in table order.
    commands: Vec<CommandCounters>,
    unknown_commands: AtomicU64,
    connections_accepted: AtomicU64,
    connections_open: AtomicU64,
    protocol_errors: AtomicU64,
    /// Reads per read mode, in [`ReadMode::ALL`] order.
    reads_by_mode: [AtomicU64; 4],
}

/// A copy of the counters at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Every known command, called or not, in table order.
    pub commands: Vec<CommandMetrics>,
    /// Requests naming no known command.
    pub unknown_commands: u64,
    pub connections_accepted: u64,
    pub connections_open: u64,
    /// Connections closed because they sent malformed or oversized input.
    pub protocol_errors: u64,
    /// Reads per read mode.
    pub reads_by_mode: Vec<(ReadMode, u64)>,
}

/// The counters of one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandMetrics {
    /// The lowercase command name.
    pub name: &'static str,
    pub calls: u64,
    /// Calls answered with an error reply.
    pub errors: u64,
    pub latency_micros_sum: u64,
    /// Calls per latency bucket (not cumulative): bucket `i` holds the calls no slower than
    /// [`LATENCY_BUCKET_BOUNDS_MICROS`]`[i]` and slower than the bucket before; the last
    /// holds the rest.
    pub latency_buckets: Vec<u64>,
}

impl Default for ServerMetrics {
    fn default() -> ServerMetrics {
        ServerMetrics {
            commands: COMMANDS.iter().map(|_| CommandCounters::default()).collect(),
            unknown_commands: AtomicU64::new(0),
            connections_accepted: AtomicU64::new(0),
            connections_open: AtomicU64::new(0),
            protocol_errors: AtomicU64::new(0),
            reads_by_mode: Default::default(),
        }
    }
}

impl ServerMetrics {
    /// Counts one call of the command at `command_index` in the table.
    pub(super) fn record_command(&self, command_index: usize, latency: Duration, failed: bool) {
        let Some(counters) = self.commands.get(command_index) else {
            debug_assert!(false, "command index {command_index} is outside the table");
            return;
        };
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BUCKET_BOUNDS_MICROS.partition_point(|&bound| bound < micros);
        counters.calls.fetch_add(1, Ordering::Relaxed);
        counters.errors.fetch_add(u64::from(failed), Ordering::Relaxed);
        counters.latency_micros_sum.fetch_add(micros, Ordering::Relaxed);
        counters.latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one read sent to the node in `mode`.
    pub(super) fn record_read(&self, mode: ReadMode) {
        let position = ReadMode::ALL.iter().position(|&each| each == mode).expect("every mode is listed");
        self.reads_by_mode[position].fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn record_unknown_command(&self) {
        self.unknown_commands.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn record_protocol_error(&self) {
        self.protocol_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn connection_opened(&self) {
        self.connections_accepted.fetch_add(1, Ordering::Relaxed);
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// The counters now. Each counter is read atomically, the set of them is not: a
    /// snapshot taken while commands run may count a call without its latency yet.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let commands = COMMANDS.iter().zip(&self.commands).map(|(spec, counters)| counters.snapshot(spec.name));
        MetricsSnapshot {
            commands: commands.collect(),
            unknown_commands: self.unknown_commands.load(Ordering::Relaxed),
            connections_accepted: self.connections_accepted.load(Ordering::Relaxed),
            connections_open: self.connections_open.load(Ordering::Relaxed),
            protocol_errors: self.protocol_errors.load(Ordering::Relaxed),
            reads_by_mode: ReadMode::ALL
                .iter()
                .zip(&self.reads_by_mode)
                .map(|(&mode, count)| (mode, count.load(Ordering::Relaxed)))
                .collect(),
        }
    }
}

impl CommandCounters {
    fn snapshot(&self, name: &'static str) -> CommandMetrics {
        CommandMetrics {
            name,
            calls: self.calls.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            latency_micros_sum: self.latency_micros_sum.load(Ordering::Relaxed),
            latency_buckets: self.latency_buckets.iter().map(|bucket| bucket.load(Ordering::Relaxed)).collect(),
        }
    }
}

impl MetricsSnapshot {
    /// Calls of all commands together, as INFO's `total_commands_processed`.
    pub fn total_calls(&self) -> u64 {
        self.commands.iter().map(|command| command.calls).sum::<u64>() + self.unknown_commands
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_the_first_bucket_that_holds_them() {
        let metrics = ServerMetrics::default();
        metrics.record_command(0, Duration::from_micros(100), false);
        metrics.record_command(0, Duration::from_micros(101), true);
        metrics.record_command(0, Duration::from_secs(5), false);
        let command = &metrics.snapshot().commands[0];
        assert_eq!((command.calls, command.errors), (3, 1));
        assert_eq!(command.latency_buckets[0], 1);
        assert_eq!(command.latency_buckets[1], 1);
        assert_eq!(command.latency_buckets[LATENCY_BUCKET_BOUNDS_MICROS.len()], 1);
        assert_eq!(command.latency_micros_sum, 5_000_201);
    }
}
