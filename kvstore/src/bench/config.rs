//! The options of `tally bench`: [`BenchArgs`] as the command line gives them, and
//! [`BenchConfig`], the same options checked, which is the only form the benchmark runs from.

use std::path::PathBuf;
use std::time::Duration;

/// The most connections one run opens; beyond this the client, not the server, is measured.
pub const CLIENTS_MAX: usize = 10_000;
/// The most requests one connection keeps in flight.
pub const PIPELINE_MAX: usize = 10_000;
/// The largest value, Redis' own limit on one bulk string (`proto-max-bulk-len`).
pub const VALUE_SIZE_BYTES_MAX: usize = 512 * 1024 * 1024;

/// The command-line options of `tally bench`.
#[derive(Clone, Debug, PartialEq, clap::Args)]
pub struct BenchArgs {
    /// A server to load, as host:port. Repeat the flag for several servers; clients are
    /// spread over them round-robin.
    #[arg(long = "address", value_name = "HOST:PORT", default_value = "127.0.0.1:7001")]
    pub addresses: Vec<String>,
    /// Concurrent connections, each a closed loop that waits for its replies before it sends more.
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    /// The size of every value written.
    #[arg(long, default_value_t = 4096)]
    pub value_size_bytes: usize,
    /// The key space: keys are chosen uniformly from this many.
    #[arg(long, default_value_t = 10_000)]
    pub keys: u64,
    /// The fraction of operations that are GETs (0.0 to 1.0); the rest are SETs.
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    pub read_ratio: f64,
    /// Requests each connection keeps in flight: it sends this many at once, then waits for all
    /// their replies before it sends the next batch.
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// The measured time, after the warm-up.
    #[arg(long, default_value_t = 10)]
    pub duration_s: u64,
    /// Load that runs before the measured time and is not recorded.
    #[arg(long, default_value_t = 2)]
    pub warmup_s: u64,
    /// Seeds the choice of keys and operations; the same seed gives each client the same sequence.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Sends `READMODE <mode>` on every connection (a Tally command: linearizable or stale).
    #[arg(long, value_name = "MODE")]
    pub read_mode: Option<String>,
    /// Sends `AUTH <password>` on every connection.
    #[arg(long)]
    pub password: Option<String>,
    /// Also writes the summary as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// SET every key once before the warm-up, so that GETs find values (the default).
    #[arg(long, overrides_with = "no_populate")]
    pub populate: bool,
    /// Skip populating: GETs of keys not yet written return nil.
    #[arg(long, overrides_with = "populate")]
    pub no_populate: bool,
    /// Free text stored in the report, to tell runs apart.
    #[arg(long)]
    pub label: Option<String>,
}

/// The options of one run, checked by [`BenchArgs::validate`].
#[derive(Clone, Debug, PartialEq)]
pub struct BenchConfig {
    /// Each `host:port`; client `i` connects to `addresses[i % addresses.len()]`.
    pub addresses: Vec<String>,
    pub clients: usize,
    pub value_size_bytes: usize,
    pub keys: u64,
    pub read_ratio: f64,
    pub pipeline: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub seed: u64,
    pub read_mode: Option<String>,
    pub password: Option<String>,
    pub json: Option<PathBuf>,
    pub populate: bool,
    pub label: Option<String>,
}

/// An option outside what a run can use.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("--address must name at least one server")]
    NoAddress,
    #[error("--address {address:?} is not host:port")]
    BadAddress { address: String },
    #[error("--read-ratio must be between 0.0 and 1.0, not {read_ratio}")]
    ReadRatioOutOfRange { read_ratio: f64 },
    #[error("--clients must be between 1 and {CLIENTS_MAX}, not {clients}")]
    ClientsOutOfRange { clients: usize },
    #[error("--pipeline must be between 1 and {PIPELINE_MAX}, not {pipeline}")]
    PipelineOutOfRange { pipeline: usize },
    #[error("--keys must be at least 1")]
    NoKeys,
    #[error("--value-size-bytes must be at most {VALUE_SIZE_BYTES_MAX}, not {value_size_bytes}")]
    ValueTooLarge { value_size_bytes: usize },
    #[error("--duration-s must be at least 1: a run with no measured time measures nothing")]
    NoDuration,
}

impl BenchArgs {
    /// Checks every option; the first one out of range is the error.
    pub fn validate(self) -> Result<BenchConfig, ConfigError> {
        if self.addresses.is_empty() {
            return Err(ConfigError::NoAddress);
        }
        if let Some(address) = self.addresses.iter().find(|address| !is_host_and_port(address)) {
            return Err(ConfigError::BadAddress { address: address.clone() });
        }
        // Written so that NaN fails too.
        if !(0.0..=1.0).contains(&self.read_ratio) {
            return Err(ConfigError::ReadRatioOutOfRange { read_ratio: self.read_ratio });
        }
        if !(1..=CLIENTS_MAX).contains(&self.clients) {
            return Err(ConfigError::ClientsOutOfRange { clients: self.clients });
        }
        if !(1..=PIPELINE_MAX).contains(&self.pipeline) {
            return Err(ConfigError::PipelineOutOfRange { pipeline: self.pipeline });
        }
        if self.keys == 0 {
            return Err(ConfigError::NoKeys);
        }
        if self.value_size_bytes > VALUE_SIZE_BYTES_MAX {
            return Err(ConfigError::ValueTooLarge { value_size_bytes: self.value_size_bytes });
        }
        if self.duration_s == 0 {
            return Err(ConfigError::NoDuration);
        }
        Ok(BenchConfig {
            addresses: self.addresses,
            clients: self.clients,
            value_size_bytes: self.value_size_bytes,
            keys: self.keys,
            read_ratio: self.read_ratio,
            pipeline: self.pipeline,
            duration: Duration::from_secs(self.duration_s),
            warmup: Duration::from_secs(self.warmup_s),
            seed: self.seed,
            read_mode: self.read_mode,
            password: self.password,
            json: self.json,
            // `--populate` is the default; it exists so a script can say so.
            populate: !self.no_populate,
            label: self.label,
        })
    }
}

impl BenchConfig {
    /// The server that client `client_index` loads.
    pub fn address_of_client(&self, client_index: usize) -> &str {
        &self.addresses[client_index % self.addresses.len()]
    }
}

/// Whether `address` has the shape `host:port` (`[::1]:7001` for IPv6). Whether the host
/// resolves is found out when connecting, which names the address if it does not.
fn is_host_and_port(address: &str) -> bool {
    match address.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|port| port != 0),
        None => false,
    }
}

/// The options that `tally bench` with these flags would get, for tests.
#[cfg(test)]
pub(super) fn parse_flags(flags: &[&str]) -> BenchArgs {
    use clap::Parser;
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }
    let words = std::iter::once("bench").chain(flags.iter().copied());
    Cli::try_parse_from(words).expect("the flags parse").bench
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validated(flags: &[&str]) -> Result<BenchConfig, ConfigError> {
        parse_flags(flags).validate()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = validated(&[]).unwrap();
        assert_eq!(config.addresses, vec!["127.0.0.1:7001".to_string()]);
        assert_eq!(config.clients, 50);
        assert_eq!(config.value_size_bytes, 4096);
        assert_eq!(config.keys, 10_000);
        assert_eq!(config.read_ratio, 0.5);
        assert_eq!(config.pipeline, 1);
        assert_eq!(config.duration, Duration::from_secs(10));
        assert_eq!(config.warmup, Duration::from_secs(2));
        assert!(config.populate);
        assert_eq!((config.read_mode, config.password, config.json, config.label), (None, None, None, None));
    }

    #[test]
    fn repeated_addresses_replace_the_default_and_are_used_round_robin() {
        let config = validated(&["--address", "127.0.0.1:7002", "--address", "localhost:7003"]).unwrap();
        assert_eq!(config.addresses, vec!["127.0.0.1:7002".to_string(), "localhost:7003".to_string()]);
        assert_eq!(config.address_of_client(0), "127.0.0.1:7002");
        assert_eq!(config.address_of_client(1), "localhost:7003");
        assert_eq!(config.address_of_client(2), "127.0.0.1:7002");
    }

    #[test]
    fn no_populate_turns_populating_off_and_the_last_flag_wins() {
        assert!(!validated(&["--no-populate"]).unwrap().populate);
        assert!(validated(&["--no-populate", "--populate"]).unwrap().populate);
        assert!(!validated(&["--populate", "--no-populate"]).unwrap().populate);
    }

    #[test]
    fn read_ratio_outside_zero_to_one_is_refused() {
        assert!(validated(&["--read-ratio", "0"]).is_ok());
        assert!(validated(&["--read-ratio", "1"]).is_ok());
        for bad in ["-0.1", "1.01", "NaN"] {
            let error = validated(&["--read-ratio", bad]).unwrap_err();
            assert!(matches!(error, ConfigError::ReadRatioOutOfRange { .. }), "{bad}: {error}");
            assert!(error.to_string().contains("--read-ratio must be between 0.0 and 1.0"));
        }
    }

    #[test]
    fn zero_clients_pipeline_keys_or_duration_are_refused() {
        assert_eq!(validated(&["--clients", "0"]), Err(ConfigError::ClientsOutOfRange { clients: 0 }));
        assert_eq!(validated(&["--pipeline", "0"]), Err(ConfigError::PipelineOutOfRange { pipeline: 0 }));
        assert_eq!(validated(&["--keys", "0"]), Err(ConfigError::NoKeys));
        assert_eq!(validated(&["--duration-s", "0"]), Err(ConfigError::NoDuration));
        assert!(validated(&["--warmup-s", "0"]).is_ok(), "no warm-up is a valid choice");
    }

    #[test]
    fn limits_are_enforced_just_past_their_bound() {
        assert!(validated(&["--clients", &CLIENTS_MAX.to_string()]).is_ok());
        let clients = (CLIENTS_MAX + 1).to_string();
        assert!(matches!(validated(&["--clients", &clients]), Err(ConfigError::ClientsOutOfRange { .. })));
        let pipeline = (PIPELINE_MAX + 1).to_string();
        assert!(matches!(validated(&["--pipeline", &pipeline]), Err(ConfigError::PipelineOutOfRange { .. })));
        let size = (VALUE_SIZE_BYTES_MAX + 1).to_string();
        assert!(matches!(validated(&["--value-size-bytes", &size]), Err(ConfigError::ValueTooLarge { .. })));
    }

    #[test]
    fn addresses_must_be_host_and_port() {
        for good in ["127.0.0.1:7001", "localhost:6379", "[::1]:7001"] {
            assert!(validated(&["--address", good]).is_ok(), "{good}");
        }
        for bad in ["127.0.0.1", ":7001", "host:port", "host:0", "host:70000"] {
            let error = validated(&["--address", bad]).unwrap_err();
            assert_eq!(error, ConfigError::BadAddress { address: bad.to_string() });
            assert!(error.to_string().contains(bad), "the message names the address: {error}");
        }
    }
}
