//! The result of a run: [`Summary`], printed as text by its `Display` and written as JSON by
//! [`Summary::write_json`], so the two forms cannot disagree.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::config::BenchConfig;
use super::error::BenchError;
use super::recording::Recording;

/// What a run measured, and the options it ran with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The free text of `--label`.
    pub label: Option<String>,
    pub options: ReportedOptions,
    /// The measured time (the warm-up excluded); the rates are per second of it.
    pub measured_s: f64,
    /// Completed operations: replies that were not errors. `ops == reads + writes`.
    pub ops: u64,
    pub reads: u64,
    pub writes: u64,
    pub ops_per_s: f64,
    pub reads_per_s: f64,
    pub writes_per_s: f64,
    /// GETs that returned nil: none when the keys were populated and nothing deletes them.
    pub read_misses: u64,
    pub latency: Latencies,
    /// Errors by kind: the first word of an error reply (`TRYAGAIN`, `UNKNOWN`, `ERR`, ...),
    /// or `CONNECTION_LOST`, `CONNECT_FAILED`, `UNEXPECTED_REPLY`.
    pub errors: BTreeMap<String, u64>,
}

/// The options of the run, as the report keeps them (the password is left out).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportedOptions {
    pub addresses: Vec<String>,
    pub clients: usize,
    pub value_size_bytes: usize,
    pub keys: u64,
    pub read_ratio: f64,
    pub pipeline: usize,
    pub duration_s: u64,
    pub warmup_s: u64,
    pub seed: u64,
    pub read_mode: Option<String>,
    pub populate: bool,
    /// Whether the connections authenticated.
    pub auth: bool,
}

/// Latency percentiles of all operations, of reads and of writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latencies {
    pub all: Percentiles,
    pub reads: Percentiles,
    pub writes: Percentiles,
}

/// Latency from sending a request's batch to receiving its reply, in milliseconds. All zero
/// when nothing of the kind completed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p99_9_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    /// The percentiles of a histogram of microseconds.
    pub(super) fn of(histogram: &Histogram<u64>) -> Percentiles {
        let at = |quantile: f64| milliseconds(histogram.value_at_quantile(quantile));
        Percentiles {
            p50_ms: at(0.5),
            p90_ms: at(0.9),
            p99_ms: at(0.99),
            p99_9_ms: at(0.999),
            max_ms: milliseconds(histogram.max()),
        }
    }
}

fn milliseconds(microseconds: u64) -> f64 {
    microseconds as f64 / 1000.0
}

impl Summary {
    /// The summary of `recording`, the sum of every client's measurements.
    pub(super) fn new(config: &BenchConfig, recording: &Recording) -> Summary {
        let measured_s = config.duration.as_secs_f64();
        assert!(measured_s > 0.0, "a validated configuration measures for some time");
        let (ops, reads, writes) = (recording.all.len(), recording.reads.len(), recording.writes.len());
        assert_eq!(ops, reads + writes, "every completed operation is a read or a write");
        Summary {
            label: config.label.clone(),
            options: ReportedOptions {
                addresses: config.addresses.clone(),
                clients: config.clients,
                value_size_bytes: config.value_size_bytes,
                keys: config.keys,
                read_ratio: config.read_ratio,
                pipeline: config.pipeline,
                duration_s: config.duration.as_secs(),
                warmup_s: config.warmup.as_secs(),
                seed: config.seed,
                read_mode: config.read_mode.clone(),
                populate: config.populate,
                auth: config.password.is_some(),
            },
            measured_s,
            ops,
            reads,
            writes,
            ops_per_s: ops as f64 / measured_s,
            reads_per_s: reads as f64 / measured_s,
            writes_per_s: writes as f64 / measured_s,
            read_misses: recording.read_misses,
            latency: Latencies {
                all: Percentiles::of(&recording.all),
                reads: Percentiles::of(&recording.reads),
                writes: Percentiles::of(&recording.writes),
            },
            errors: recording.errors.clone(),
        }
    }

    /// Errors of every kind.
    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The summary as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a summary has only strings, numbers and string-keyed maps")
    }

    /// Writes [`Summary::to_json`] to `path`, replacing the file.
    pub fn write_json(&self, path: &Path) -> Result<(), BenchError> {
        let mut text = self.to_json();
        text.push('\n');
        std::fs::write(path, text)
            .map_err(|error| BenchError::WriteReport { path: path.to_path_buf(), reason: error.to_string() })
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options = &self.options;
        writeln!(f, "tally bench: {}", self.label.as_deref().unwrap_or("(no label)"))?;
        let mut connection = format!("{} clients, pipeline {}", options.clients, options.pipeline);
        if let Some(mode) = &options.read_mode {
            connection.push_str(&format!(", read mode {mode}"));
        }
        if options.auth {
            connection.push_str(", AUTH");
        }
        writeln!(f, "  servers     {} ({connection})", options.addresses.join(", "))?;
        writeln!(
            f,
            "  workload    {:.0}% GET / {:.0}% SET, {} keys ({}), {}-byte values, seed {}",
            options.read_ratio * 100.0,
            (1.0 - options.read_ratio) * 100.0,
            options.keys,
            if options.populate { "populated" } else { "not populated" },
            options.value_size_bytes,
            options.seed,
        )?;
        writeln!(f, "  time        {} s measured after {} s of warm-up", self.measured_s, options.warmup_s)?;
        writeln!(f)?;
        writeln!(
            f,
            "  throughput  {:.0} ops/s ({:.0} reads/s, {:.0} writes/s): {} ops completed",
            self.ops_per_s, self.reads_per_s, self.writes_per_s, self.ops
        )?;
        writeln!(f, "  latency ms  {:>9} {:>9} {:>9} {:>9} {:>9}", "p50", "p90", "p99", "p99.9", "max")?;
        for (kind, count, percentiles) in [
            ("all", self.ops, &self.latency.all),
            ("reads", self.reads, &self.latency.reads),
            ("writes", self.writes, &self.latency.writes),
        ] {
            write!(f, "    {kind:<8}")?;
            if count == 0 {
                writeln!(f, "  (none completed)")?;
                continue;
            }
            let Percentiles { p50_ms, p90_ms, p99_ms, p99_9_ms, max_ms } = percentiles;
            writeln!(f, "  {p50_ms:>9.3} {p90_ms:>9.3} {p99_ms:>9.3} {p99_9_ms:>9.3} {max_ms:>9.3}")?;
        }
        if self.read_misses > 0 {
            writeln!(f, "  read misses {} GETs found no value", self.read_misses)?;
        }
        if self.errors.is_empty() {
            writeln!(f, "  errors      none")
        } else {
            let kinds: Vec<String> = self.errors.iter().map(|(kind, count)| format!("{kind} {count}")).collect();
            writeln!(f, "  errors      {} ({})", self.errors_total(), kinds.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bench::config::parse_flags;

    /// Reads of 1, 2, ..., 1000 µs and one write of 2 ms: all exact, since a histogram of
    /// three significant figures records every value below 2048 exactly.
    fn known_recording() -> Recording {
        let mut recording = Recording::new();
        for latency_us in 1..=1000 {
            recording.record_read(Duration::from_micros(latency_us), latency_us % 100 != 0);
        }
        recording.record_write(Duration::from_millis(2));
        recording.record_error("TRYAGAIN");
        recording.record_error("TRYAGAIN");
        recording.record_error("CONNECTION_LOST");
        recording
    }

    fn known_summary() -> Summary {
        let config = parse_flags(&["--duration-s", "10", "--label", "known", "--password", "secret"]).validate();
        Summary::new(&config.unwrap(), &known_recording())
    }

    #[test]
    fn percentiles_of_a_known_histogram_are_exact() {
        let reads = Percentiles::of(&known_recording().reads);
        assert_eq!(reads, Percentiles { p50_ms: 0.5, p90_ms: 0.9, p99_ms: 0.99, p99_9_ms: 0.999, max_ms: 1.0 });
        let empty = Percentiles::of(&Recording::new().reads);
        assert_eq!(empty, Percentiles { p50_ms: 0.0, p90_ms: 0.0, p99_ms: 0.0, p99_9_ms: 0.0, max_ms: 0.0 });
    }

    #[test]
    fn summary_counts_rates_and_errors_follow_the_recording() {
        let summary = known_summary();
        assert_eq!((summary.ops, summary.reads, summary.writes, summary.read_misses), (1001, 1000, 1, 10));
        assert_eq!((summary.ops_per_s, summary.reads_per_s, summary.writes_per_s), (100.1, 100.0, 0.1));
        assert_eq!(summary.latency.writes.max_ms, 2.0);
        assert_eq!(summary.latency.all.max_ms, 2.0, "the overall maximum is the write's");
        assert_eq!(summary.latency.all.p50_ms, 0.501, "the overall median counts the write too");
        assert_eq!(summary.errors_total(), 3);
        assert_eq!(summary.errors.get("TRYAGAIN"), Some(&2));
        assert!(summary.options.auth);
    }

    #[test]
    fn json_round_trips_and_never_holds_the_password() {
        let summary = known_summary();
        let json = summary.to_json();
        assert!(!json.contains("secret"), "{json}");
        let parsed: Summary = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed, summary);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["latency"]["reads"]["p99_ms"], 0.99);
        assert_eq!(value["options"]["read_ratio"], 0.5);
    }

    #[test]
    fn json_is_written_to_the_file_named() {
        let path = std::env::temp_dir().join(format!("tally-bench-report-{}.json", std::process::id()));
        known_summary().write_json(&path).unwrap();
        let parsed: Summary = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(parsed, known_summary());
        let missing_directory = std::env::temp_dir().join("tally-bench-no-such-directory").join("report.json");
        let error = known_summary().write_json(&missing_directory).unwrap_err();
        assert!(error.to_string().contains("tally-bench-no-such-directory"), "{error}");
    }

    #[test]
    fn text_shows_the_label_rates_percentiles_and_errors() {
        let text = known_summary().to_string();
        assert!(text.starts_with("tally bench: known\n"), "{text}");
        assert!(text.contains("100 ops/s (100 reads/s, 0 writes/s): 1001 ops completed"), "{text}");
        assert!(text.contains("    reads         0.500     0.900     0.990     0.999     1.000\n"), "{text}");
        assert!(text.contains("errors      3 (CONNECTION_LOST 1, TRYAGAIN 2)"), "{text}");
        assert!(!text.contains("secret"));
        let mut idle = known_summary();
        idle.writes = 0;
        assert!(idle.to_string().contains("    writes    (none completed)\n"));
    }
}
