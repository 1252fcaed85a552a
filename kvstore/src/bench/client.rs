//! One client: a closed loop on one connection. It sends `pipeline` requests at once, reads
//! their replies, records each request's latency from the moment its batch was sent to the
//! moment its reply arrived, and repeats until the run ends. A closed loop never has more
//! than `pipeline` requests outstanding, so a slow server gets fewer requests rather than a
//! growing queue: throughput and latency are measured together, at this concurrency.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::time::Instant;

use super::config::BenchConfig;
use super::connection::Connection;
use super::error::{error_kind, CONNECTION_LOST, UNEXPECTED_REPLY};
use super::recording::Recording;
use super::workload::{Operation, Workload};
use crate::resp::Frame;

/// The wait before reconnecting after a lost connection: long enough not to spin against a
/// server that is down, short against a run of seconds.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// The times that divide a run: load from the start, measured from `measured_from`, none
/// after `end`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Window {
    pub measured_from: Instant,
    pub end: Instant,
}

impl Window {
    /// A window that starts now with `warmup`, then measures for `duration`.
    pub fn starting_now(warmup: Duration, duration: Duration) -> Window {
        let measured_from = Instant::now() + warmup;
        Window { measured_from, end: measured_from + duration }
    }

    /// Whether what happens at `instant` is recorded: nothing of the warm-up is.
    pub fn measures(&self, instant: Instant) -> bool {
        instant >= self.measured_from
    }
}

/// Runs one client until the window ends and returns what it measured. Requests in flight
/// when the window ends are abandoned: they are neither completed operations nor errors.
pub(super) async fn run(
    mut connection: Connection,
    mut workload: Workload,
    config: Arc<BenchConfig>,
    window: Window,
) -> Recording {
    let address = connection.address().to_string();
    let mut recording = Recording::new();
    let mut requests = BytesMut::new();
    let mut operations = Vec::with_capacity(config.pipeline);
    loop {
        requests.clear();
        operations.clear();
        for _ in 0..config.pipeline {
            operations.push(workload.next_request(&mut requests));
        }
        let sent_at = Instant::now();
        if sent_at >= window.end {
            break;
        }
        let measured = window.measures(sent_at);
        let exchange = connection.exchange(&requests, operations.len(), |index, reply| {
            if measured {
                record_reply(&mut recording, operations[index], reply, sent_at.elapsed());
            }
        });
        let outcome = tokio::time::timeout(window.end.saturating_duration_since(sent_at), exchange).await;
        match outcome {
            Err(_end_of_run) => break,
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::debug!(address, %error, "lost the connection; reconnecting");
                if window.measures(Instant::now()) {
                    recording.record_error(CONNECTION_LOST);
                }
                match reconnect(&address, &config, window, &mut recording).await {
                    Some(reconnected) => connection = reconnected,
                    None => break,
                }
            }
        }
    }
    recording
}

/// Reconnects after a pause, again and again until it succeeds or the run ends; each failed
/// attempt counts as an error of its kind.
async fn reconnect(
    address: &str,
    config: &BenchConfig,
    window: Window,
    recording: &mut Recording,
) -> Option<Connection> {
    loop {
        tokio::time::sleep(RECONNECT_PAUSE).await;
        let remaining = window.end.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return None;
        }
        match tokio::time::timeout(remaining, Connection::open(address, config)).await {
            Err(_end_of_run) => return None,
            Ok(Ok(connection)) => return Some(connection),
            Ok(Err(error)) => {
                tracing::debug!(%error, "cannot reconnect");
                if window.measures(Instant::now()) {
                    recording.record_error(&error.kind());
                }
            }
        }
    }
}

/// Records one reply to `operation`: a completed GET or SET with its latency, or an error.
fn record_reply(recording: &mut Recording, operation: Operation, reply: Frame, latency: Duration) {
    match (operation, reply) {
        (_, Frame::Error(message)) => recording.record_error(&error_kind(&message)),
        (Operation::Get, Frame::Bulk(_)) => recording.record_read(latency, true),
        (Operation::Get, Frame::NullBulk) => recording.record_read(latency, false),
        (Operation::Set, Frame::Simple(status)) if status == "OK" => recording.record_write(latency),
        (_, _unexpected) => recording.record_error(UNEXPECTED_REPLY),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_recorded_as_reads_writes_misses_or_errors() {
        let mut recording = Recording::new();
        let latency = Duration::from_micros(250);
        record_reply(&mut recording, Operation::Get, Frame::bulk("value"), latency);
        record_reply(&mut recording, Operation::Get, Frame::null(), latency);
        record_reply(&mut recording, Operation::Set, Frame::ok(), latency);
        record_reply(&mut recording, Operation::Set, Frame::error("TRYAGAIN no leader"), latency);
        record_reply(&mut recording, Operation::Get, Frame::error("UNKNOWN lost"), latency);
        record_reply(&mut recording, Operation::Set, Frame::integer(1), latency);
        record_reply(&mut recording, Operation::Get, Frame::ok(), latency);
        assert_eq!((recording.reads.len(), recording.writes.len(), recording.all.len()), (2, 1, 3));
        assert_eq!(recording.read_misses, 1);
        let errors: Vec<(&str, u64)> = recording.errors.iter().map(|(kind, count)| (kind.as_str(), *count)).collect();
        assert_eq!(errors, vec![("TRYAGAIN", 1), ("UNEXPECTED_REPLY", 2), ("UNKNOWN", 1)]);
    }

    #[test]
    fn the_window_measures_nothing_of_the_warmup() {
        let window = Window::starting_now(Duration::from_secs(2), Duration::from_secs(10));
        assert!(!window.measures(window.measured_from - Duration::from_millis(1)));
        assert!(window.measures(window.measured_from));
        assert_eq!(window.end - window.measured_from, Duration::from_secs(10));
    }
}
