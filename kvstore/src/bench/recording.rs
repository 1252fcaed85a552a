//! What the clients measured: latency histograms (all operations, reads, writes), errors by
//! kind, and GETs that found no value. Each client fills its own [`Recording`]; the run adds
//! them up at the end, so clients share nothing while they run.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// The histograms' range in microseconds. A latency beyond a minute is recorded as a minute:
/// it is a stuck server, and its exact value matters less than that it shows in the maximum.
pub(super) const LATENCY_US_MIN: u64 = 1;
pub(super) const LATENCY_US_MAX: u64 = 60_000_000;
/// Every recorded latency is exact to three significant figures (0.1%).
const SIGNIFICANT_FIGURES: u8 = 3;

/// Latencies in microseconds and counts, of one client or of all of them.
#[derive(Clone, Debug)]
pub(super) struct Recording {
    pub all: Histogram<u64>,
    pub reads: Histogram<u64>,
    pub writes: Histogram<u64>,
    /// Error replies by their first word, plus the client's own kinds (`CONNECTION_LOST`, ...).
    pub errors: BTreeMap<String, u64>,
    /// Completed GETs that returned nil.
    pub read_misses: u64,
}

impl Recording {
    pub fn new() -> Recording {
        Recording {
            all: latency_histogram(),
            reads: latency_histogram(),
            writes: latency_histogram(),
            errors: BTreeMap::new(),
            read_misses: 0,
        }
    }

    /// A GET that completed; `hit` when it returned a value.
    pub fn record_read(&mut self, latency: Duration, hit: bool) {
        let latency_us = micros(latency);
        self.all.saturating_record(latency_us);
        self.reads.saturating_record(latency_us);
        if !hit {
            self.read_misses += 1;
        }
    }

    /// A SET that completed.
    pub fn record_write(&mut self, latency: Duration) {
        let latency_us = micros(latency);
        self.all.saturating_record(latency_us);
        self.writes.saturating_record(latency_us);
    }

    /// An error of `kind`; it is not a completed operation, so it has no latency.
    pub fn record_error(&mut self, kind: &str) {
        *self.errors.entry(kind.to_string()).or_default() += 1;
    }

    /// Adds `other`'s measurements to these.
    pub fn add(&mut self, other: &Recording) {
        // Histograms of one shape always add; a failure would be our own bug.
        self.all.add(&other.all).expect("latency histograms share their bounds");
        self.reads.add(&other.reads).expect("latency histograms share their bounds");
        self.writes.add(&other.writes).expect("latency histograms share their bounds");
        for (kind, count) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += count;
        }
        self.read_misses += other.read_misses;
    }
}

fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(LATENCY_US_MIN, LATENCY_US_MAX, SIGNIFICANT_FIGURES)
        .expect("the latency bounds are valid")
}

fn micros(latency: Duration) -> u64 {
    u64::try_from(latency.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_are_kept_apart_and_both_count_in_all() {
        let mut recording = Recording::new();
        recording.record_read(Duration::from_micros(100), true);
        recording.record_read(Duration::from_micros(200), false);
        recording.record_write(Duration::from_millis(5));
        assert_eq!((recording.reads.len(), recording.writes.len(), recording.all.len()), (2, 1, 3));
        assert_eq!(recording.read_misses, 1);
        assert_eq!(recording.writes.max(), recording.writes.highest_equivalent(5_000));
    }

    #[test]
    fn latencies_beyond_the_range_are_recorded_at_its_end() {
        let mut recording = Recording::new();
        recording.record_write(Duration::from_secs(3_600));
        assert_eq!(recording.writes.len(), 1);
        assert_eq!(recording.writes.max(), recording.writes.highest_equivalent(LATENCY_US_MAX));
    }

    #[test]
    fn adding_recordings_adds_counts_and_errors() {
        let mut first = Recording::new();
        first.record_read(Duration::from_micros(10), false);
        first.record_error("TRYAGAIN");
        let mut second = Recording::new();
        second.record_write(Duration::from_micros(20));
        second.record_error("TRYAGAIN");
        second.record_error("CONNECTION_LOST");
        first.add(&second);
        assert_eq!((first.all.len(), first.reads.len(), first.writes.len(), first.read_misses), (2, 1, 1, 1));
        let errors: Vec<(&str, u64)> = first.errors.iter().map(|(kind, count)| (kind.as_str(), *count)).collect();
        assert_eq!(errors, vec![("CONNECTION_LOST", 1), ("TRYAGAIN", 2)]);
    }
}
