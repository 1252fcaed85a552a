//! The configuration of one `tally` process: the keys of the optional TOML file, which the
//! command-line flags of the same names override.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use engine::NodeId;
use serde::Deserialize;

/// Every setting, as read from a file or flags. Absent values take the defaults of
/// [`ConfigFile::resolve`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub id: Option<NodeId>,
    pub cluster_id: Option<String>,
    /// Where Redis clients connect.
    pub listen: Option<SocketAddr>,
    /// Where peers connect.
    pub raft_listen: Option<SocketAddr>,
    /// Every voter's peer address, this node's included: `"1=127.0.0.1:7101,2=..."`, the same
    /// in the file as on the command line.
    pub peers: Option<String>,
    pub data: Option<PathBuf>,
    pub metrics_listen: Option<SocketAddr>,
    pub requirepass: Option<String>,
    pub request_size_bytes_max: Option<usize>,
    pub tick_interval_ms: Option<u64>,
    pub heartbeat_interval_ms: Option<u64>,
    pub election_timeout_ms_min: Option<u64>,
    pub election_timeout_ms_max: Option<u64>,
    pub request_timeout_ms: Option<u64>,
    /// `linearizable` (the default), `lease`, `follower` or `stale`: the read mode new
    /// connections start in.
    pub read_mode: Option<String>,
    /// How far two nodes' clocks may drift apart over an election timeout; the leader's lease
    /// is that much shorter than the minimum election timeout. Default: 100.
    pub lease_clock_drift_ms: Option<u64>,
    /// A snapshot is taken (and the log before it dropped) once this many entries were
    /// applied since the last one. Default: 100000.
    pub snapshot_entries: Option<u64>,
    /// ... or once this many bytes of entries were. Default: 134217728 (128 MiB).
    pub snapshot_bytes: Option<u64>,
    /// A snapshot travels to a lagging follower in chunks of this size. Default: 1048576.
    pub snapshot_chunk_bytes: Option<usize>,
    /// Entries kept in the log behind a snapshot, so that a follower slightly behind gets
    /// entries rather than the whole snapshot. Default: 1024.
    pub snapshot_trailing_entries: Option<u64>,
    /// Client addresses of members of a running cluster, `"127.0.0.1:7001,127.0.0.1:7002"`:
    /// this node asks the first that answers to add it as a learner (`RAFT.ADDLEARNER`), and
    /// takes the cluster's peer addresses from the answer. Replaces `peers`; needs
    /// `raft_listen`.
    pub join: Option<String>,
}

/// Between snapshots the log of entries stays in memory and in the WAL: this bounds both,
/// while a snapshot (the whole state machine, encoded and written) stays rare under load.
const DEFAULT_SNAPSHOT_BYTES: u64 = 128 << 20;

/// A tenth of the default minimum election timeout: far more than NTP-disciplined clocks
/// drift in a second, and it still leaves the leader nine tenths of the timeout as lease.
const DEFAULT_LEASE_CLOCK_DRIFT_MS: u64 = 100;

/// A complete, validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessConfig {
    pub id: NodeId,
    pub cluster_id: String,
    pub listen: SocketAddr,
    pub raft_listen: SocketAddr,
    pub peers: BTreeMap<NodeId, SocketAddr>,
    pub data: PathBuf,
    pub metrics_listen: Option<SocketAddr>,
    pub requirepass: Option<String>,
    pub request_size_bytes_max: usize,
    pub tick_interval_ms: u64,
    pub raft: engine::Config,
    pub request_timeout_ms: u64,
    pub read_mode: crate::node::ReadMode,
    /// Members to ask to join through; empty when the cluster is bootstrapped from `peers`.
    pub join: Vec<SocketAddr>,
}

impl ConfigFile {
    /// Parses the TOML file format.
    pub fn parse_toml(text: &str) -> Result<ConfigFile, String> {
        toml::from_str(text).map_err(|error| format!("invalid configuration file: {error}"))
    }

    /// Values set in `overrides` replace ours.
    pub fn overridden_by(self, overrides: ConfigFile) -> ConfigFile {
        ConfigFile {
            id: overrides.id.or(self.id),
            cluster_id: overrides.cluster_id.or(self.cluster_id),
            listen: overrides.listen.or(self.listen),
            raft_listen: overrides.raft_listen.or(self.raft_listen),
            peers: overrides.peers.or(self.peers),
            data: overrides.data.or(self.data),
            metrics_listen: overrides.metrics_listen.or(self.metrics_listen),
            requirepass: overrides.requirepass.or(self.requirepass),
            request_size_bytes_max: overrides.request_size_bytes_max.or(self.request_size_bytes_max),
            tick_interval_ms: overrides.tick_interval_ms.or(self.tick_interval_ms),
            heartbeat_interval_ms: overrides.heartbeat_interval_ms.or(self.heartbeat_interval_ms),
            election_timeout_ms_min: overrides.election_timeout_ms_min.or(self.election_timeout_ms_min),
            election_timeout_ms_max: overrides.election_timeout_ms_max.or(self.election_timeout_ms_max),
            request_timeout_ms: overrides.request_timeout_ms.or(self.request_timeout_ms),
            read_mode: overrides.read_mode.or(self.read_mode),
            lease_clock_drift_ms: overrides.lease_clock_drift_ms.or(self.lease_clock_drift_ms),
            snapshot_entries: overrides.snapshot_entries.or(self.snapshot_entries),
            snapshot_bytes: overrides.snapshot_bytes.or(self.snapshot_bytes),
            snapshot_chunk_bytes: overrides.snapshot_chunk_bytes.or(self.snapshot_chunk_bytes),
            snapshot_trailing_entries: overrides.snapshot_trailing_entries.or(self.snapshot_trailing_entries),
            join: overrides.join.or(self.join),
        }
    }

    /// Fills in defaults and checks that the whole makes sense.
    pub fn resolve(self) -> Result<ProcessConfig, String> {
        let id = self.id.ok_or("--id is required")?;
        let join = match self.join.as_deref() {
            Some(text) => parse_addresses(text)?,
            None => Vec::new(),
        };
        let (peers, raft_listen) = if join.is_empty() {
            let text = self
                .peers
                .as_deref()
                .ok_or("--peers is required (every voter's raft address, this node's included)")?;
            let peers = parse_peers(text)?;
            if !peers.contains_key(&id) {
                return Err(format!("--peers must include this node's own id {id}"));
            }
            let raft_listen = self.raft_listen.unwrap_or(peers[&id]);
            (peers, raft_listen)
        } else {
            if self.peers.is_some() {
                return Err("--join and --peers exclude each other: a joining node learns its peers".to_string());
            }
            let raft_listen = self.raft_listen.ok_or("--join needs --raft-listen (this node's peer address)")?;
            (BTreeMap::from([(id, raft_listen)]), raft_listen)
        };
        let defaults = engine::Config::default();
        let raft = engine::Config {
            heartbeat_interval_ms: self.heartbeat_interval_ms.unwrap_or(defaults.heartbeat_interval_ms),
            election_timeout_ms_min: self.election_timeout_ms_min.unwrap_or(defaults.election_timeout_ms_min),
            election_timeout_ms_max: self.election_timeout_ms_max.unwrap_or(defaults.election_timeout_ms_max),
            // Lease reads are offered to clients (READMODE lease); see engine/src/read.rs.
            lease_reads: true,
            lease_clock_drift_ms: self.lease_clock_drift_ms.unwrap_or(DEFAULT_LEASE_CLOCK_DRIFT_MS),
            snapshot_entries_threshold: self.snapshot_entries.unwrap_or(defaults.snapshot_entries_threshold),
            snapshot_bytes_threshold: self.snapshot_bytes.unwrap_or(DEFAULT_SNAPSHOT_BYTES),
            snapshot_chunk_bytes: self.snapshot_chunk_bytes.unwrap_or(defaults.snapshot_chunk_bytes),
            snapshot_trailing_entries: self.snapshot_trailing_entries.unwrap_or(defaults.snapshot_trailing_entries),
            ..defaults
        };
        raft.validate().map_err(|error| format!("invalid Raft settings: {error}"))?;
        let read_mode = match self.read_mode.as_deref() {
            None => crate::node::ReadMode::Linearizable,
            Some(name) => crate::node::ReadMode::parse(name)
                .ok_or_else(|| format!("read_mode must be linearizable, lease, follower or stale, not {name:?}"))?,
        };
        Ok(ProcessConfig {
            id,
            cluster_id: self.cluster_id.unwrap_or_else(|| "tally".to_string()),
            listen: self.listen.ok_or("--listen is required (the address Redis clients connect to)")?,
            raft_listen,
            peers,
            data: self.data.ok_or("--data is required (this node's data directory)")?,
            metrics_listen: self.metrics_listen,
            requirepass: self.requirepass,
            request_size_bytes_max: self.request_size_bytes_max.unwrap_or(512 << 20),
            tick_interval_ms: self.tick_interval_ms.unwrap_or(10),
            raft,
            request_timeout_ms: self.request_timeout_ms.unwrap_or(10_000),
            read_mode,
            join,
        })
    }
}

/// Parses `127.0.0.1:7001,127.0.0.1:7002`.
fn parse_addresses(text: &str) -> Result<Vec<SocketAddr>, String> {
    let items = text.split(',').map(str::trim).filter(|item| !item.is_empty());
    let addresses = items
        .map(|item| item.parse().map_err(|_| format!("--join address {item:?} is not host:port")))
        .collect::<Result<Vec<SocketAddr>, String>>()?;
    if addresses.is_empty() {
        return Err("--join names no address".to_string());
    }
    Ok(addresses)
}

/// Parses `1=127.0.0.1:7101,2=127.0.0.1:7102`.
pub fn parse_peers(text: &str) -> Result<BTreeMap<NodeId, SocketAddr>, String> {
    let mut peers = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let (id, address) = item.split_once('=').ok_or_else(|| format!("peer {item:?} is not id=address"))?;
        let id: NodeId = id.trim().parse().map_err(|_| format!("peer id {id:?} is not a number"))?;
        if id == 0 {
            return Err("peer id 0 is reserved".to_string());
        }
        let address = address.trim().parse().map_err(|_| format!("peer address {address:?} is not host:port"))?;
        if peers.insert(id, address).is_some() {
            return Err(format!("peer id {id} appears twice"));
        }
    }
    if peers.is_empty() {
        return Err("--peers names no peer".to_string());
    }
    Ok(peers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_defaults_fill_the_rest() {
        let file = ConfigFile::parse_toml(
            "id = 1\nlisten = \"127.0.0.1:7001\"\ndata = \"/tmp/a\"\nheartbeat_interval_ms = 50\npeers = \"1=127.0.0.1:7101,2=127.0.0.1:7102\"\n",
        )
        .expect("valid file");
        let flags = ConfigFile { listen: Some("127.0.0.1:9001".parse().unwrap()), ..ConfigFile::default() };
        let config = file.overridden_by(flags).resolve().expect("valid");
        assert_eq!(config.listen, "127.0.0.1:9001".parse().unwrap());
        assert_eq!(config.raft_listen, "127.0.0.1:7101".parse().unwrap(), "defaults to this node's peer address");
        assert_eq!(config.raft.heartbeat_interval_ms, 50);
        assert_eq!(config.cluster_id, "tally");
    }

    #[test]
    fn nonsense_is_refused_with_the_reason() {
        assert!(ConfigFile::parse_toml("idd = 1").unwrap_err().contains("unknown field"));
        assert_eq!(parse_peers("1=127.0.0.1:1,1=127.0.0.1:2").unwrap_err(), "peer id 1 appears twice");
        assert!(parse_peers("x=127.0.0.1:1").unwrap_err().contains("not a number"));
        let missing_self = ConfigFile {
            id: Some(3),
            peers: Some("1=127.0.0.1:1".to_string()),
            listen: Some("127.0.0.1:7001".parse().unwrap()),
            data: Some("/tmp".into()),
            ..ConfigFile::default()
        };
        assert!(missing_self.resolve().unwrap_err().contains("own id 3"));
    }
}
